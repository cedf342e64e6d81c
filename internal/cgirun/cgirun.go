// Package cgirun runs a CGI program (php-cgi) for one HTTP request: the
// request body on its stdin, its response streamed to the client through
// a cgiresp.Writer, its stderr to a function, and the program killed with
// what started it.
//
// Unlike net/http/cgi, every process it starts ends with the request or
// with the process that started it:
//
//   - the program runs in a process group of its own, and the whole group
//     (what the script started too) is killed with SIGKILL when the
//     request's context ends (the request expired, the client left, the
//     server stopped) before the program has;
//   - the program gets a parent-death signal (SIGKILL), set from a thread
//     locked for the start: if the server process dies, even by SIGKILL,
//     the program dies with it;
//   - a [Group] kills every group still running when the server stops.
//
// The environment is the caller's whole (see package cgienv): nothing of
// the server's own is inherited, and no descriptor but stdin, stdout and
// stderr.
package cgirun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gompm/mpm/internal/cgiresp"
	"github.com/gompm/mpm/internal/procgroup"
)

// MaxStderrLine bounds one line of the program's stderr handed to
// Runner.Stderr; a longer one comes in pieces.
const MaxStderrLine = 4096

// Runner runs one CGI program. The zero value needs Path.
type Runner struct {
	Path string   // the program
	Args []string // its arguments after its name
	Dir  string   // its working directory; "" means "/"
	// Stderr gets each line the program writes to stderr. Nil discards
	// them.
	Stderr func(line []byte)
	// Group, when set, tracks the running programs, for KillAll.
	Group *Group
}

// Group tracks running programs' process groups. The zero value is
// ready to use.
type Group struct {
	mu    sync.Mutex
	procs map[*procgroup.Group]struct{}
}

func (g *Group) add(p *procgroup.Group) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.procs == nil {
		g.procs = map[*procgroup.Group]struct{}{}
	}
	g.procs[p] = struct{}{}
	g.mu.Unlock()
}

func (g *Group) remove(p *procgroup.Group) {
	if g == nil {
		return
	}
	g.mu.Lock()
	delete(g.procs, p)
	g.mu.Unlock()
}

// KillAll kills the process group of every program still running.
func (g *Group) KillAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p := range g.procs {
		p.Kill()
	}
}

// Running reports how many programs are running.
func (g *Group) Running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.procs)
}

// Serve runs the program for r with env (its whole environment) and
// writes its response to w. The body it reads is r.Body, r.ContentLength
// bytes of it (a body of unknown length is the caller's to refuse: a CGI
// program reads CONTENT_LENGTH bytes). It returns when the program has
// ended, and the error that ended the response, if any.
func (c *Runner) Serve(w http.ResponseWriter, r *http.Request, env []string) error {
	cmd := &exec.Cmd{Path: c.Path, Args: append([]string{c.Path}, c.Args...), Env: env, Dir: c.Dir}
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if r.ContentLength > 0 && r.Body != nil {
		cmd.Stdin = io.LimitReader(r.Body, r.ContentLength)
	}
	stdout, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("cgirun: %s: %w", c.Path, err)
	}
	defer stdout.Close()
	cmd.Stdout = pw
	var stderrDone chan struct{}
	var ew *os.File
	if c.Stderr != nil {
		var er *os.File
		if er, ew, err = os.Pipe(); err != nil {
			pw.Close()
			return fmt.Errorf("cgirun: %s: %w", c.Path, err)
		}
		cmd.Stderr = ew
		stderrDone = make(chan struct{})
		go func() {
			defer close(stderrDone)
			defer er.Close()
			lines(er, c.Stderr)
		}()
	}
	// The parent-death signal belongs to the thread that forks: keep the
	// goroutine on it while starting. The runtime does not end an
	// unlocked thread, so the program dies with the process only.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	pw.Close()
	if ew != nil {
		ew.Close()
	}
	if err != nil {
		http.Error(w, "PHP could not be started", http.StatusInternalServerError)
		return fmt.Errorf("cgirun: start %s: %w", c.Path, err)
	}
	p := procgroup.Watch(cmd.Process.Pid)
	c.Group.add(p)
	defer c.Group.remove(p)
	// The request's end kills the whole group, whatever it is doing.
	stop := context.AfterFunc(r.Context(), p.Kill)
	defer stop()
	exited := p.Exited()
	go func() {
		// Once the program has ended, what it wrote is read, and
		// processes it left holding its output (started in the
		// background) are not waited for.
		<-exited
		stdout.SetReadDeadline(time.Now().Add(time.Second))
	}()

	out := cgiresp.NewWriter(w)
	buf := make([]byte, 32<<10)
	var copyErr error
	for {
		n, err := stdout.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil && copyErr == nil {
				copyErr = werr
			}
			// Nothing more at hand: what came goes to the client now.
			out.Flush()
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				p.Kill()
			}
			break
		}
	}
	<-exited
	p.Release()
	waitErr := cmd.Wait()
	if stderrDone != nil {
		select {
		case <-stderrDone:
		case <-time.After(time.Second): // a grandchild holds the pipe
		}
	}
	if ctxErr := r.Context().Err(); ctxErr != nil {
		if !out.Started() {
			http.Error(w, "PHP did not answer in time", http.StatusGatewayTimeout)
		}
		return fmt.Errorf("cgirun: %s ended with the request: %w", c.Path, ctxErr)
	}
	closeErr := out.Close()
	switch {
	case copyErr != nil:
		return copyErr
	case closeErr != nil:
		return closeErr
	case waitErr != nil:
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			return nil // an error page is PHP's own; its output was sent
		}
		return waitErr
	}
	return nil
}

// lines hands each line of r, cut at MaxStderrLine, to fn.
func lines(r io.Reader, fn func([]byte)) {
	br := bufio.NewReaderSize(r, MaxStderrLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			fn(line)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}
