package prefork

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gompm/mpm/privdrop"
)

// Spec describes a child to start.
type Spec struct {
	// Role is the registered role the child runs.
	Role string
	// Args are extra command-line words, shown by ps after the role; the
	// child's role code does not need them.
	Args []string
	// Identity, when set, is what the child becomes before its role runs
	// (via privdrop.Prepare and Complete). Nil keeps the parent's.
	Identity *privdrop.Identity
	// Files are handed to the child under their names; nothing else but
	// stdin (/dev/null), stdout and stderr is inherited.
	Files []File
	// Env is the child's whole environment besides prefork's own
	// variables; the parent's environment is not inherited. Nil means
	// PATH=/usr/local/bin:/usr/bin:/bin.
	Env []string
	// Dir is the working directory to start in; empty means "/".
	Dir string
	// Path is the executable; empty means this program (os.Executable).
	Path string
	// Exe, when set, is the executable opened for reading, and the child
	// runs that file, not whatever Path names when it starts (fexecve):
	// a master that opened its own binary at start keeps starting
	// children from that binary after the file at its path is replaced
	// (a package upgrade), so one generation never mixes two builds.
	// Path then only names the program in errors. The child does not keep
	// the descriptor.
	Exe *os.File
	// DeathSignal is the signal the child gets when this process dies,
	// even by SIGKILL. 0 means SIGKILL. A child that must clean up after
	// itself (kill what it started, which no parent-death signal
	// reaches) asks for SIGTERM, which ends its role's context.
	DeathSignal syscall.Signal
	// Cgroup, when set, is an open cgroup v2 directory the child is born
	// in: clone3 with CLONE_INTO_CGROUP (Linux 5.7), through
	// SysProcAttr.UseCgroupFD, so that it runs, allocates and forks in
	// that group from its first instruction, and everything it starts
	// inherits the group. Nil leaves the child in this process's cgroup.
	// The caller keeps the file open while children may start, and
	// closes it. A cgroup the kernel refuses (missing, not v2, no write
	// permission on its cgroup.procs) makes Start fail.
	Cgroup *os.File
}

// File is an inherited file and the name the child finds it by.
type File struct {
	Name string
	File *os.File
}

// Exit describes how a child ended.
type Exit struct {
	Code   int            // exit status, or -1 when killed by a signal
	Signal syscall.Signal // the signal that killed it, or 0
	Err    error          // a failure to wait, if any
}

func (e Exit) String() string {
	switch {
	case e.Err != nil:
		return "wait failed: " + e.Err.Error()
	case e.Signal != 0:
		return fmt.Sprintf("killed by signal %d (%v)", int(e.Signal), e.Signal)
	default:
		return "exit status " + strconv.Itoa(e.Code)
	}
}

// Child is a started child process.
type Child struct {
	Role    string
	Pid     int
	Started time.Time

	proc *os.Process
	done chan struct{}
	exit Exit
}

// Done is closed when the child has ended and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Exit reports how the child ended; it is valid once Done is closed.
func (c *Child) Exit() Exit { <-c.done; return c.exit }

// Signal sends sig to the child unless it has already been reaped.
func (c *Child) Signal(sig syscall.Signal) error {
	select {
	case <-c.done:
		return os.ErrProcessDone
	default:
	}
	return c.proc.Signal(sig)
}

// Retire asks the child to retire with SIGHUP: to finish its work and
// end when it is done (see [Env.Retiring]). Wait for it with Done, and Stop
// it if that takes too long.
func (c *Child) Retire() error { return c.Signal(syscall.SIGHUP) }

// Stop asks the child to stop with SIGTERM and waits for it until ctx
// ends, then kills it with SIGKILL and waits for that. It returns how the
// child ended.
func (c *Child) Stop(ctx context.Context) Exit {
	c.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-ctx.Done():
		c.Signal(syscall.SIGKILL)
		<-c.done
	}
	return c.exit
}

// Group starts and supervises children. The zero value is ready to use.
type Group struct {
	// Logger receives the children's output, a line per record with the
	// child's role and pid, and the group's own events. Nil discards.
	Logger *slog.Logger
	// OnExit, when set, is called after each child ends and has been
	// reaped, before its Done channel closes. It must not wait for that
	// child's Done (or Exit).
	OnExit func(*Child, Exit)

	mu       sync.Mutex
	children map[int]*Child
	spawner  chan spawnReq
	once     sync.Once
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func (g *Group) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// start runs cmd.Start on one OS thread reserved for it for the life of
// the process. The kernel sends a child its parent-death signal when the
// thread that forked it exits, not the process; a Go thread exits when a
// goroutine locked to it returns, which other code may do at any time on
// any thread. The reserved thread never runs anything else, so children
// die with the master and only then.
func (g *Group) start(cmd *exec.Cmd) error {
	g.once.Do(func() {
		g.spawner = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked; the goroutine never returns
			for r := range g.spawner {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	g.spawner <- spawnReq{cmd, errc}
	return <-errc
}

// Start starts a child as spec says. The child dies with SIGKILL if this
// process dies.
func (g *Group) Start(spec Spec) (*Child, error) {
	if spec.Role == "" {
		return nil, errors.New("prefork: start: empty role")
	}
	path := spec.Path
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("prefork: start %s: find this program: %w", spec.Role, err)
		}
		path = exe
	}
	cmd := &exec.Cmd{
		Path: path,
		Args: append([]string{"mpm-" + spec.Role}, spec.Args...),
		Dir:  spec.Dir,
		Env:  slices.Clone(spec.Env),
	}
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	var fileSpec []string
	for i, f := range spec.Files {
		if f.Name == "" || strings.ContainsAny(f.Name, ",=") || f.File == nil {
			return nil, fmt.Errorf("prefork: start %s: bad inherited file %d %q (names must be non-empty without ',' or '=')", spec.Role, i, f.Name)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, f.File)
		fileSpec = append(fileSpec, fmt.Sprintf("%s=%d", f.Name, 3+i))
	}
	if spec.Exe != nil {
		// The kernel resolves the program's path in the forked child
		// after os/exec has placed ExtraFiles at 3, 4, ... and before
		// the new image replaces the old: passed last, the executable
		// is at a number nothing else is moved onto, and
		// /proc/self/fd/N opens that very file (as glibc's fexecve
		// does without execveat). The child's adoptFiles closes the
		// descriptor, which it was not told about.
		cmd.ExtraFiles = append(cmd.ExtraFiles, spec.Exe)
		cmd.Path = "/proc/self/fd/" + strconv.Itoa(3+len(spec.Files))
	}
	cmd.Env = append(cmd.Env, EnvRole+"="+spec.Role, EnvFiles+"="+strings.Join(fileSpec, ","))
	death := spec.DeathSignal
	if death == 0 {
		death = syscall.SIGKILL
	}
	cmd.Env = append(cmd.Env, EnvDeathSignal+"="+strconv.Itoa(int(death)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: death}
	if spec.Cgroup != nil {
		// Fd on a directory changes nothing: it is not pollable.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(spec.Cgroup.Fd())
	}
	if spec.Identity != nil {
		if err := privdrop.Prepare(cmd, *spec.Identity); err != nil {
			return nil, fmt.Errorf("prefork: start %s: %w", spec.Role, err)
		}
	}

	// stdout and stderr go through a pipe we read, not through os/exec's
	// copying goroutines, so that a grandchild holding the pipe (php-cgi)
	// cannot delay reaping the child.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("prefork: start %s: %w", spec.Role, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = g.start(cmd)
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("prefork: start %s (%s): %w", spec.Role, path, err)
	}
	c := &Child{Role: spec.Role, Pid: cmd.Process.Pid, Started: time.Now(), proc: cmd.Process, done: make(chan struct{})}
	log := g.logger().With("role", spec.Role, "pid", c.Pid)
	go logLines(r, log)

	g.mu.Lock()
	if g.children == nil {
		g.children = make(map[int]*Child)
	}
	g.children[c.Pid] = c
	g.mu.Unlock()

	go func() {
		err := cmd.Wait()
		c.exit = exitOf(cmd.ProcessState, err)
		g.mu.Lock()
		delete(g.children, c.Pid)
		g.mu.Unlock()
		log.Debug("child ended", "exit", c.exit.String())
		// Before Done closes, so that whoever waits for a child (Stop)
		// knows its OnExit has run too.
		if g.OnExit != nil {
			g.OnExit(c, c.exit)
		}
		close(c.done)
	}()
	return c, nil
}

func exitOf(ps *os.ProcessState, err error) Exit {
	if ps == nil {
		return Exit{Code: -1, Err: err}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return Exit{Code: -1, Signal: ws.Signal()}
	}
	return Exit{Code: ps.ExitCode()}
}

// maxLogLine bounds one logged line of child output.
const maxLogLine = 16 << 10

// logLines logs each line r yields until EOF, cutting lines longer than
// maxLogLine.
func logLines(r *os.File, log *slog.Logger) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			log.Info(strings.TrimRight(string(line), "\r\n"), "stream", "output")
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue // the rest of the long line comes as another record
		case err != nil: // io.EOF once every writer has exited
			return
		}
	}
}

// Children returns the children that have not ended yet.
func (g *Group) Children() []*Child {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Child, 0, len(g.children))
	for _, c := range g.children {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Child) int { return a.Pid - b.Pid })
	return out
}

// Stop stops every child as [Child.Stop] does, all at once, and returns
// when all have ended: gracefully until ctx ends, then with SIGKILL.
func (g *Group) Stop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range g.Children() {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop(ctx) }()
	}
	wg.Wait()
}

// Kill kills every child with SIGKILL and waits for them.
func (g *Group) Kill() {
	for _, c := range g.Children() {
		c.Signal(syscall.SIGKILL)
		<-c.done
	}
}
