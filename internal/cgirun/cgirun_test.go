package cgirun

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, map[string]testenv.Helper{"serve-loop": helperServeLoop})
}

// script writes a shell script that serves as the CGI program.
func script(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cgi.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// alive reports whether pid runs (a zombie, dead but not reaped, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func TestServe(t *testing.T) {
	p := script(t, `printf 'Status: 201 Created\r\nX-Who: %s\r\n\r\n' "$WHO"; echo "method $REQUEST_METHOD"; cat`)
	var stderr []string
	c := &Runner{Path: p, Stderr: func(l []byte) { stderr = append(stderr, string(l)) }}
	r := httptest.NewRequest("POST", "/x", strings.NewReader("the body"))
	r.ContentLength = 8
	rec := httptest.NewRecorder()
	if err := c.Serve(rec, r, []string{"WHO=alice", "REQUEST_METHOD=POST", "PATH=/usr/bin:/bin"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 201 || rec.Header().Get("X-Who") != "alice" || rec.Body.String() != "method POST\nthe body" {
		t.Errorf("got %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
}

// The request's end kills the program and what it started.
func TestExpiryKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	p := script(t, fmt.Sprintf(`sleep 100 > /dev/null 2>&1 &
echo $! > %s/child
while :; do :; done`, dir))
	var g Group
	c := &Runner{Path: p, Group: &g}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	start := time.Now()
	err := c.Serve(rec, r, []string{"PATH=/usr/bin:/bin"})
	if err == nil || time.Since(start) > 5*time.Second || rec.Code != http.StatusGatewayTimeout {
		t.Errorf("Serve of a looping program past its deadline: %v after %v, status %d", err, time.Since(start), rec.Code)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "child"))
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	time.Sleep(100 * time.Millisecond)
	if child == 0 || alive(child) {
		t.Errorf("the program's background child %d outlived the request", child)
	}
	if g.Running() != 0 {
		t.Errorf("Group: %d still running", g.Running())
	}
}

// A process the program left holding its output does not hold the
// response: it is killed once the program has ended.
func TestBackgroundHolderKilled(t *testing.T) {
	dir := t.TempDir()
	p := script(t, fmt.Sprintf(`sleep 100 &
echo $! > %s/child
printf 'Content-Type: text/plain\r\n\r\ndone'`, dir))
	c := &Runner{Path: p}
	rec := httptest.NewRecorder()
	start := time.Now()
	c.Serve(rec, httptest.NewRequest("GET", "/", nil), []string{"PATH=/usr/bin:/bin"})
	if took := time.Since(start); took > 5*time.Second || rec.Body.String() != "done" {
		t.Errorf("%v, %q", took, rec.Body.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "child"))
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	time.Sleep(100 * time.Millisecond)
	if child == 0 || alive(child) {
		t.Errorf("the background child %d holding the output is still alive", child)
	}
}

// helperServeLoop serves one request with a program that loops, and
// writes the program's pid to args[0].
func helperServeLoop(args []string) (any, error) {
	f, err := os.CreateTemp("", "cgirun-loop-*.sh")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "#!/bin/sh\necho $$ > %s\nwhile :; do :; done\n", args[0])
	f.Close()
	os.Chmod(f.Name(), 0o755)
	defer os.Remove(f.Name())
	c := &Runner{Path: f.Name()}
	c.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), []string{"PATH=/usr/bin:/bin"})
	return nil, nil
}

// A program dies with the process that started it, even by SIGKILL.
func TestProgramDiesWithServer(t *testing.T) {
	pidFile := filepath.Join(testenv.PublicDir(t, 0o777), "pid")
	p := testenv.Command(t, "serve-loop", pidFile)
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid == 0 {
		t.Fatal("the looping program did not start")
	}
	p.Cmd.Process.Kill()
	p.Cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("program %d outlived the server killed with SIGKILL", pid)
	}
}
