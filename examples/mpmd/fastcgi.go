package main

// FastCGI mode for PHP: a worker keeps a persistent php-cgi child per
// PHP vhost, running as the worker's own identity, and speaks FastCGI to
// it over one kept-open connection.
//
// The child's stdin is a listening unix socket (php-cgi's FastCGI mode).
// The worker binds it in a fresh 0700 directory, connects to it, then
// removes the path and the directory before php-cgi even starts: the
// only connection that socket will ever have is the worker's, and no
// other process, of this user or any other, can reach it. (An abstract
// socket would be listed in /proc/net/unix and reachable by anyone.)
// Requests carry FCGI_KEEP_CONN, so php-cgi serves them all on that one
// connection.
//
// The client is in-house (about 300 lines): the standard library only
// has the server side (net/http/fcgi), and the Go FastCGI clients around
// are either unmaintained or whole proxy frameworks that dial a network
// address per request, which is the thing this design avoids.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FastCGI record types and constants (FastCGI 1.0 specification).
const (
	fcgiVersion      = 1
	fcgiBeginRequest = 1
	fcgiAbortRequest = 2
	fcgiEndRequest   = 3
	fcgiParams       = 4
	fcgiStdin        = 5
	fcgiStdout       = 6
	fcgiStderr       = 7
	fcgiResponder    = 1
	fcgiKeepConn     = 1
	fcgiMaxContent   = 65535
	fcgiRequestID    = 1 // one request at a time per connection
)

const (
	phpModeCGI     = "cgi"
	phpModeFastCGI = "fastcgi"

	// defaultPHPMaxRequests matches php-cgi's own default for
	// PHP_FCGI_MAX_REQUESTS.
	defaultPHPMaxRequests = 500
)

// phpChild is the persistent php-cgi of one vhost in one worker. The
// worker serves one connection at a time, so one child is enough; the
// mutex keeps it correct if requests ever overlap.
type phpChild struct {
	path    string
	args    []string // -d key=value
	maxReqs int
	log     *slog.Logger
	vhost   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	conn *net.UnixConn
	br   *bufio.Reader
	// bw and content are the child's, reused from request to request:
	// allocating 80 KiB for every request showed up in profiles. A new
	// child gets a new bw, so that a body writer left behind by a failed
	// request never shares one with the next.
	bw      *bufio.Writer
	content []byte
	out     []byte // cgiResponse.pending
	exited  chan struct{}
	served  int
}

func newPHPChild(path string, args []string, maxReqs int, vhost string, log *slog.Logger) *phpChild {
	if maxReqs <= 0 {
		maxReqs = defaultPHPMaxRequests
	}
	return &phpChild{path: path, args: args, maxReqs: maxReqs, vhost: vhost, log: log}
}

// start launches php-cgi on a listening socket only this worker can reach.
func (p *phpChild) start() error {
	dir, err := os.MkdirTemp("", "mpmd-php-")
	if err != nil {
		return fmt.Errorf("php socket directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	sock := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("php socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	lf, err := ln.File()
	ln.Close()
	if err != nil {
		return err
	}
	defer lf.Close()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("php socket: %w", err)
	}
	// The path goes now, before php-cgi runs: the connection above is
	// the only one the socket will ever accept.
	os.Remove(sock)

	cmd := exec.Command(p.path, p.args...)
	cmd.Stdin = lf
	cmd.Stderr = &logWriter{log: p.log, vhost: p.vhost}
	cmd.Dir = "/"
	cmd.Env = []string{
		"PHP_FCGI_CHILDREN=0", // no php-side process manager: this is the child
		"PHP_FCGI_MAX_REQUESTS=" + strconv.Itoa(p.maxReqs),
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
	// The child dies with the worker. Pdeathsig is tied to the spawning
	// thread, so keep the goroutine on it while starting.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		conn.Close()
		return fmt.Errorf("start php-cgi: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.cmd, p.conn, p.exited, p.served = cmd, conn, exited, 0
	p.br = bufio.NewReaderSize(conn, 32<<10)
	p.bw = bufio.NewWriterSize(conn, 16<<10)
	if p.content == nil {
		p.content = make([]byte, fcgiMaxContent+255)
	}
	p.log.Debug("php-cgi started", "vhost", p.vhost, "pid", cmd.Process.Pid)
	return nil
}

// stop ends the child: closing the connection sends it back to accept on
// a socket nobody can reach, so it is killed, and reaped.
func (p *phpChild) stop() {
	if p.cmd == nil {
		return
	}
	p.conn.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd, p.conn, p.br = nil, nil, nil
}

func (p *phpChild) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stop()
}

func (p *phpChild) alive() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// errBeforeResponse marks a failure before any byte of the response
// came back: a request without a body can then be retried on a new child.
type errBeforeResponse struct{ error }

// serve runs one request through the child: env is the CGI environment.
func (p *phpChild) serve(w http.ResponseWriter, r *http.Request, env []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	retriable := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	for attempt := 0; ; attempt++ {
		if !p.alive() {
			p.stop()
			if err := p.start(); err != nil {
				p.log.Error("php-cgi", "vhost", p.vhost, "err", err)
				http.Error(w, "php unavailable", http.StatusBadGateway)
				return
			}
		}
		err := p.roundTrip(w, r, env)
		if err == nil {
			p.served++
			if p.served >= p.maxReqs {
				p.stop() // recycled: a fresh child starts on the next request
			}
			return
		}
		p.stop()
		var early errBeforeResponse
		if errors.As(err, &early) && retriable && attempt == 0 && r.Context().Err() == nil {
			// The child had died (killed, crashed, or retired) while idle.
			p.log.Info("php-cgi gone, retrying on a new child", "vhost", p.vhost, "err", err)
			continue
		}
		if r.Context().Err() == nil {
			p.log.Warn("php-cgi request failed", "vhost", p.vhost, "err", err)
		}
		if errors.As(err, &early) {
			http.Error(w, "php failed", http.StatusBadGateway)
		}
		return
	}
}

// roundTrip sends one request and copies the response to w. Any error
// leaves the connection in an unknown state: the caller drops the child.
func (p *phpChild) roundTrip(w http.ResponseWriter, r *http.Request, env []string) error {
	// A client that goes away, or a server shutdown, ends the request.
	stopWatch := context.AfterFunc(r.Context(), func() { p.conn.SetDeadline(time.Now()) })
	defer stopWatch()

	bw := p.bw
	var begin [8]byte
	begin[1] = fcgiResponder
	begin[2] = fcgiKeepConn
	writeRecord(bw, fcgiBeginRequest, begin[:])
	writeStream(bw, fcgiParams, encodeParams(env))
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if !hasBody {
		writeRecord(bw, fcgiStdin, nil)
	}
	if err := bw.Flush(); err != nil {
		return errBeforeResponse{err}
	}
	bodyDone := make(chan error, 1)
	if hasBody {
		// The body goes in its own goroutine: a script may write before
		// it reads its input.
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := r.Body.Read(buf)
				if n > 0 {
					writeRecord(bw, fcgiStdin, buf[:n])
				}
				if err == io.EOF {
					writeRecord(bw, fcgiStdin, nil)
					bodyDone <- bw.Flush()
					return
				}
				if err != nil {
					bodyDone <- err
					return
				}
			}
		}()
	} else {
		bodyDone <- nil
	}

	resp := &cgiResponse{w: w, pending: p.out[:0]}
	defer func() { p.out = resp.pending[:0] }()
	var hdr [8]byte
	content := p.content
	for {
		if _, err := io.ReadFull(p.br, hdr[:]); err != nil {
			if !resp.started {
				return errBeforeResponse{fmt.Errorf("read record: %w", err)}
			}
			return fmt.Errorf("read record: %w", err)
		}
		typ := hdr[1]
		n := int(binary.BigEndian.Uint16(hdr[4:6])) + int(hdr[6])
		if hdr[0] != fcgiVersion || binary.BigEndian.Uint16(hdr[2:4]) != fcgiRequestID {
			return fmt.Errorf("bad record header % x", hdr)
		}
		if _, err := io.ReadFull(p.br, content[:n]); err != nil {
			return fmt.Errorf("read record: %w", err)
		}
		body := content[:binary.BigEndian.Uint16(hdr[4:6])]
		switch typ {
		case fcgiStdout:
			resp.started = true
			if err := resp.write(body); err != nil {
				return err
			}
			// What php-cgi has sent so far goes to the client when
			// nothing more is at hand: a burst of small records
			// becomes one write (PHP writes its output in 4 KiB
			// pieces), and a script that flushes and then works still
			// reaches the client at once.
			if p.br.Buffered() == 0 || len(resp.pending) >= maxPending {
				if err := resp.flush(); err != nil {
					return err
				}
			}
		case fcgiStderr:
			if len(body) > 0 {
				p.log.Warn("php", "vhost", p.vhost, "stderr", strings.TrimRight(string(body), "\n"))
			}
		case fcgiEndRequest:
			if err := <-bodyDone; err != nil {
				return fmt.Errorf("request body: %w", err)
			}
			return resp.finish()
		default:
			return fmt.Errorf("unexpected record type %d", typ)
		}
	}
}

func writeRecord(w *bufio.Writer, typ byte, b []byte) {
	var h [8]byte
	h[0] = fcgiVersion
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:4], fcgiRequestID)
	binary.BigEndian.PutUint16(h[4:6], uint16(len(b)))
	w.Write(h[:])
	w.Write(b)
}

// writeStream writes b as a stream of records and its empty terminator.
func writeStream(w *bufio.Writer, typ byte, b []byte) {
	for len(b) > 0 {
		n := min(len(b), fcgiMaxContent)
		writeRecord(w, typ, b[:n])
		b = b[n:]
	}
	writeRecord(w, typ, nil)
}

// encodeParams encodes KEY=value pairs as FastCGI name-value pairs.
func encodeParams(env []string) []byte {
	var b bytes.Buffer
	putLen := func(n int) {
		if n < 128 {
			b.WriteByte(byte(n))
			return
		}
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(n)|1<<31)
		b.Write(l[:])
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		putLen(len(k))
		putLen(len(v))
		b.WriteString(k)
		b.WriteString(v)
	}
	return b.Bytes()
}

// cgiResponse turns a CGI response (headers, blank line, body) into an
// HTTP response, as net/http/cgi does: a Status header sets the code, a
// Location without one is a 302.
type cgiResponse struct {
	w       http.ResponseWriter
	started bool // a byte of the response arrived
	head    []byte
	sent    bool   // headers written to w
	pending []byte // body bytes not yet written to w; see flush
}

// maxPending bounds the body bytes held back to make one write of many
// records.
const maxPending = 64 << 10

func (c *cgiResponse) write(b []byte) error {
	if c.sent {
		c.pending = append(c.pending, b...)
		return nil
	}
	c.head = append(c.head, b...)
	end, skip := bytes.Index(c.head, []byte("\r\n\r\n")), 4
	if i := bytes.Index(c.head, []byte("\n\n")); i >= 0 && (end < 0 || i < end) {
		end, skip = i, 2
	}
	if end < 0 {
		if len(c.head) > 1<<20 {
			return errors.New("php response headers too large")
		}
		return nil
	}
	rest := c.head[end+skip:]
	if err := c.sendHeader(c.head[:end]); err != nil {
		return err
	}
	c.pending = append(c.pending, rest...)
	return nil
}

// flush writes the body bytes held back.
func (c *cgiResponse) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.w.Write(c.pending)
	c.pending = c.pending[:0]
	return err
}

func (c *cgiResponse) sendHeader(b []byte) error {
	c.sent = true
	tp := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(b), strings.NewReader("\r\n\r\n"))))
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		http.Error(c.w, "bad php response", http.StatusBadGateway)
		return fmt.Errorf("php response headers: %w", err)
	}
	code := http.StatusOK
	if s := mh.Get("Status"); s != "" {
		f, _, _ := strings.Cut(s, " ")
		n, err := strconv.Atoi(f)
		if err != nil || n < 100 || n > 999 {
			http.Error(c.w, "bad php response", http.StatusBadGateway)
			return fmt.Errorf("php response status %q", s)
		}
		code = n
		mh.Del("Status")
	} else if mh.Get("Location") != "" {
		code = http.StatusFound
	}
	h := c.w.Header()
	for k, vs := range mh {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	c.w.WriteHeader(code)
	return nil
}

func (c *cgiResponse) finish() error {
	if c.sent {
		return c.flush()
	}
	if len(c.head) == 0 {
		http.Error(c.w, "empty php response", http.StatusBadGateway)
		return nil
	}
	// Headers with no blank line after them: take them as all there is.
	return c.sendHeader(bytes.TrimRight(c.head, "\r\n"))
}

// cgiEnv is the CGI environment net/http/cgi would give php-cgi for r,
// with extra appended (later entries win, as in net/http/cgi).
func cgiEnv(r *http.Request, scriptName string, extra []string) []string {
	env := []string{
		"SERVER_SOFTWARE=go",
		"SERVER_PROTOCOL=HTTP/1.1",
		"HTTP_HOST=" + r.Host,
		"GATEWAY_INTERFACE=CGI/1.1",
		"REQUEST_METHOD=" + r.Method,
		"QUERY_STRING=" + r.URL.RawQuery,
		"REQUEST_URI=" + r.URL.RequestURI(),
		"PATH_INFO=" + strings.TrimPrefix(r.URL.Path, scriptName),
		"SCRIPT_NAME=" + scriptName,
		"SERVER_PORT=80",
	}
	if r.TLS != nil {
		env[len(env)-1] = "SERVER_PORT=443"
	}
	if host, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		env = append(env, "REMOTE_ADDR="+host, "REMOTE_HOST="+host, "REMOTE_PORT="+port)
	} else {
		env = append(env, "REMOTE_ADDR="+r.RemoteAddr, "REMOTE_HOST="+r.RemoteAddr)
	}
	for k, v := range r.Header {
		k = strings.Map(upperCaseAndUnderscore, k)
		if k == "PROXY" {
			continue // httpoxy
		}
		joiner := ", "
		if k == "COOKIE" {
			joiner = "; "
		}
		env = append(env, "HTTP_"+k+"="+strings.Join(v, joiner))
	}
	if r.ContentLength > 0 {
		env = append(env, "CONTENT_LENGTH="+strconv.FormatInt(r.ContentLength, 10))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		env = append(env, "CONTENT_TYPE="+ct)
	}
	env = append(env, extra...)
	// Later entries win; php-cgi would see duplicates in order, so
	// remove the earlier ones.
	seen := map[string]bool{}
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		k, _, _ := strings.Cut(env[i], "=")
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, env[i])
	}
	return out
}

func upperCaseAndUnderscore(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z':
		return r - ('a' - 'A')
	case r == '-':
		return '_'
	case r == '=':
		// Someone could inject env vars with a header name containing '='.
		return '_'
	}
	return r
}
