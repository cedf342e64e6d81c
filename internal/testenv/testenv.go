// Package testenv holds what the project's tests share: the root-test rule
// and the helper-process pattern (the test binary re-runs itself to do
// something that must not leak into other tests, such as a privilege drop).
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireRootEnv names the variable that turns a skipped root test into a
// failure. CI sets it: it runs as root, so a skip there would hide a
// privilege test that silently stopped running.
const RequireRootEnv = "MPM_REQUIRE_ROOT"

// RequireRoot skips t unless the process runs as root. With
// MPM_REQUIRE_ROOT=1 it fails t instead of skipping.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireRootEnv) == "1" {
		t.Fatalf("this test needs root and %s=1 forbids skipping it (euid %d)", RequireRootEnv, os.Geteuid())
	}
	t.Skipf("skipped: needs root (euid is %d); CI runs it as root with %s=1", os.Geteuid(), RequireRootEnv)
}

// FreeID returns id after checking that no account or group in the system
// databases uses it: tests create processes with such ids and must never
// act as an account they did not create.
func FreeID(t testing.TB, id int) uint32 {
	t.Helper()
	s := strconv.Itoa(id)
	if u, err := user.LookupId(s); err == nil {
		t.Fatalf("test id %d belongs to user %q; pick another", id, u.Username)
	}
	if g, err := user.LookupGroupId(s); err == nil {
		t.Fatalf("test id %d belongs to group %q; pick another", id, g.Name)
	}
	return uint32(id)
}

const (
	helperEnv    = "MPM_TEST_HELPER"
	helperOutEnv = "MPM_TEST_HELPER_OUT"
	holdEnv      = "MPM_TEST_HELPER_HOLD"
)

// Helper is a function that runs in a child copy of the test binary. It
// gets the arguments given to [Command] and returns a value that is sent
// back as JSON, or an error.
type Helper func(args []string) (any, error)

// Main is called from TestMain. In a helper child it runs the named helper
// and exits; otherwise it runs the tests.
func Main(m *testing.M, helpers map[string]Helper) {
	name := os.Getenv(helperEnv)
	if name == "" {
		os.Exit(m.Run())
	}
	os.Exit(runHelper(name, helpers))
}

// IsHelper reports whether this process is a helper child.
func IsHelper() bool { return os.Getenv(helperEnv) != "" }

func runHelper(name string, helpers map[string]Helper) int {
	// The result file is opened before the helper runs: a helper may
	// chroot or drop privileges and then be unable to reach it.
	out := os.Getenv(helperOutEnv)
	if out == "" {
		fmt.Fprintf(os.Stderr, "helper %s: no %s set\n", name, helperOutEnv)
		return 3
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: open result file: %v\n", name, err)
		return 3
	}
	defer f.Close()
	h, ok := helpers[name]
	var res helperResult
	if !ok {
		res.Error = fmt.Sprintf("no helper named %q", name)
	} else {
		var args []string
		if a := os.Getenv(helperEnv + "_ARGS"); a != "" {
			if err := json.Unmarshal([]byte(a), &args); err != nil {
				res.Error = "bad helper args: " + err.Error()
			}
		}
		if res.Error == "" {
			v, err := h(args)
			if err != nil {
				res.Error = err.Error()
			} else if res.Value, err = json.Marshal(v); err != nil {
				res.Error = "encode result: " + err.Error()
			}
		}
	}
	b, _ := json.Marshal(res)
	if _, err := f.Write(b); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: write result: %v\n", name, err)
		return 3
	}
	return 0
}

type helperResult struct {
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
}

// Proc is a helper child about to run.
type Proc struct {
	Cmd     *exec.Cmd
	outPath string
	stderr  bytes.Buffer
	cancel  context.CancelFunc
}

// Command prepares a child copy of the test binary that runs helper name
// with args. The caller may adjust Cmd (SysProcAttr, Env, ExtraFiles)
// before calling Run. The child is killed after two minutes.
func Command(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The helper may run as another user: let it reach and write its
	// result (t.TempDir's parent is private to us).
	dir := PublicDir(t, 0o777)
	a, _ := json.Marshal(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	p := &Proc{outPath: filepath.Join(dir, "result.json"), cancel: cancel}
	p.Cmd = exec.CommandContext(ctx, exe, "-test.run=^$")
	p.Cmd.Env = append(os.Environ(),
		helperEnv+"="+name,
		helperEnv+"_ARGS="+string(a),
		helperOutEnv+"="+p.outPath,
	)
	p.Cmd.Stderr = &p.stderr
	return p
}

// Run runs the child and decodes its result into out (which may be nil).
// An error the helper returned comes back as an error with its text.
func (p *Proc) Run(out any) error {
	if err := p.Cmd.Start(); err != nil {
		p.cancel()
		return fmt.Errorf("start helper: %v", err)
	}
	return p.Wait(out)
}

// Wait waits for a child started with Cmd.Start or [Proc.Hold] and
// decodes its result as Run does.
func (p *Proc) Wait(out any) error {
	defer p.cancel()
	runErr := p.Cmd.Wait()
	b, err := os.ReadFile(p.outPath)
	if err != nil {
		return fmt.Errorf("helper produced no result (%v); stderr:\n%s", runErr, p.stderr.String())
	}
	var res helperResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("helper result %q: %v", b, err)
	}
	if res.Error != "" {
		return &HelperError{Msg: res.Error, Stderr: p.stderr.String()}
	}
	if runErr != nil {
		return fmt.Errorf("helper: %v; stderr:\n%s", runErr, p.stderr.String())
	}
	if out != nil && res.Value != nil {
		return json.Unmarshal(res.Value, out)
	}
	return nil
}

// HelperError is an error returned by the helper function itself.
type HelperError struct {
	Msg    string
	Stderr string
}

func (e *HelperError) Error() string { return e.Msg }

// IsHelperError reports whether err came from the helper function (as
// opposed to the child failing to run).
func IsHelperError(err error) bool {
	var h *HelperError
	return errors.As(err, &h)
}

// Hold starts the child and returns once the helper has called [Ready]:
// the child is then alive, in the state the helper reached, for the test
// to inspect from outside (its /proc files). The child continues when
// release is called; then call [Proc.Wait].
func (p *Proc) Hold() (pid int, release func(), err error) {
	ready, readyW, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	cont, contW, err := os.Pipe()
	if err != nil {
		ready.Close()
		readyW.Close()
		return 0, nil, err
	}
	// fds 3 and 4 in the child.
	p.Cmd.ExtraFiles = append([]*os.File{readyW, cont}, p.Cmd.ExtraFiles...)
	p.Cmd.Env = append(p.Cmd.Env, holdEnv+"=1")
	err = p.Cmd.Start()
	readyW.Close()
	cont.Close()
	if err != nil {
		ready.Close()
		contW.Close()
		p.cancel()
		return 0, nil, fmt.Errorf("start helper: %v", err)
	}
	defer ready.Close()
	var b [1]byte
	if n, _ := ready.Read(b[:]); n != 1 {
		contW.Close()
		werr := p.Wait(nil)
		return 0, nil, fmt.Errorf("helper ended before it was ready: %v", werr)
	}
	return p.Cmd.Process.Pid, func() { contW.Close() }, nil
}

// Ready is called by a helper at the point where the test that started it
// with [Proc.Hold] should inspect it; it blocks until the test releases
// it. Without Hold it returns at once.
func Ready() {
	if os.Getenv(holdEnv) != "1" {
		return
	}
	ready := os.NewFile(3, "ready")
	cont := os.NewFile(4, "continue")
	ready.Write([]byte{1})
	ready.Close()
	var b [1]byte
	cont.Read(b[:]) // EOF when released
	cont.Close()
}

// PublicDir makes a temporary directory directly in the system temporary
// directory, with mode perm, removed when t ends.
func PublicDir(t testing.TB, perm os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mpm-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

// PublicExecutable returns a copy of the test binary that any user can
// execute, for helpers that start as another identity: go test keeps the
// binary in a directory only its owner can enter.
func PublicExecutable(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(PublicDir(t, 0o755), filepath.Base(exe))
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// StartThreads starts locked goroutines, each holding an OS thread of its
// own, and busy goroutines that spin, and returns once every locked one
// runs (n goroutines blocked while locked are n distinct threads). stop
// ends them all; the locked threads exit with their goroutines. Privilege
// tests use it to have many threads alive across a drop.
func StartThreads(locked, busy int) (stop func()) {
	done := make(chan struct{})
	var running sync.WaitGroup
	running.Add(locked)
	for range locked {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with us
			running.Done()
			<-done
		}()
	}
	for range busy {
		go func() {
			for {
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	running.Wait()
	return func() { close(done) }
}

// SyncBuffer is an io.Writer that tests can read while other goroutines
// (a child's output, a logger) write to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Running reports whether process pid exists and is not a zombie.
func Running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+1:], " Z")
}
