package prefork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/privdrop"
)

var roles Roles

func TestMain(m *testing.M) {
	roles.Add("report", roleReport)
	roles.Add("fail", func(context.Context, *Env) error { return errors.New("boom") })
	roles.Add("graceful", roleGraceful)
	roles.Add("retiring", roleRetiring)
	roles.Add("stubborn", roleStubborn)
	roles.Add("master", roleMaster)
	roles.Main() // in a child: runs the role and exits
	testenv.Main(m, nil)
}

type report struct {
	Status        procstatus.Status
	FDs           map[int]string
	CloseOnExec   map[int]bool
	Env           []string
	Files         []string
	Identity      *privdrop.Identity
	GrandchildFDs []string // what a program the role runs holds
	Cgroup        string   // the v2 line of /proc/self/cgroup, "0::/path"
	GrandchildCg  string   // the same, of a program the role runs
}

// roleReport writes what the child holds to its inherited file "out".
func roleReport(ctx context.Context, env *Env) error {
	out, err := env.File("out")
	if err != nil {
		return err
	}
	fmt.Println("hello from the report role")
	var r report
	if r.Status, err = procstatus.Process(os.Getpid()); err != nil {
		return err
	}
	if r.FDs, err = procstatus.FDs(0); err != nil {
		return err
	}
	r.CloseOnExec = map[int]bool{}
	for fd := range r.FDs {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		r.CloseOnExec[fd] = err == nil && flags&unix.FD_CLOEXEC != 0
	}
	r.Env = os.Environ()
	for name := range env.Files {
		r.Files = append(r.Files, name)
	}
	slices.Sort(r.Files)
	r.Identity = env.Identity
	// ls holds stdin, stdout, stderr and the directory it reads; any
	// other entry is a descriptor it inherited from us.
	ls, err := exec.Command("/bin/ls", "-1", "/proc/self/fd").Output()
	if err != nil {
		return fmt.Errorf("run ls: %w", err)
	}
	r.GrandchildFDs = strings.Fields(string(ls))
	r.Cgroup = v2Cgroup("/proc/self/cgroup")
	cg, err := exec.Command("/bin/cat", "/proc/self/cgroup").Output()
	if err != nil {
		return fmt.Errorf("run cat: %w", err)
	}
	for _, l := range strings.Split(string(cg), "\n") {
		if strings.HasPrefix(l, "0::") {
			r.GrandchildCg = l
		}
	}
	return json.NewEncoder(out).Encode(r)
}

// v2Cgroup returns the "0::/path" line of a /proc/<pid>/cgroup file.
func v2Cgroup(name string) string {
	b, _ := os.ReadFile(name)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "0::") {
			return l
		}
	}
	return ""
}

func roleGraceful(ctx context.Context, env *Env) error {
	out, err := env.File("out")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "started")
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond) // a request in flight
	fmt.Fprintln(out, "finished")
	return nil
}

// roleRetiring tells a retirement (SIGHUP) from a stop (SIGTERM).
func roleRetiring(ctx context.Context, env *Env) error {
	out, err := env.File("out")
	if err != nil {
		return err
	}
	retiring := env.Retiring()
	fmt.Fprintln(out, "started")
	select {
	case <-retiring:
		fmt.Fprintln(out, "retiring")
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping")
	}
	return nil
}

func roleStubborn(ctx context.Context, env *Env) error {
	if out, err := env.File("out"); err == nil {
		fmt.Fprintln(out, "started")
	}
	time.Sleep(time.Hour) // ignores ctx: only SIGKILL ends it
	return nil
}

// roleMaster starts a stubborn child from a goroutine whose OS thread then
// exits, writes the child's pid to "out" and waits to be killed.
func roleMaster(ctx context.Context, env *Env) error {
	out, err := env.File("out")
	if err != nil {
		return err
	}
	var g Group
	exe, _ := os.Executable()
	res := make(chan error, 1)
	var c *Child
	go func() {
		runtime.LockOSThread() // exits with the goroutine: the thread dies
		var err error
		spec := Spec{Role: "stubborn", Path: exe}
		if uid, err := strconv.Atoi(os.Getenv("CHILD_UID")); err == nil {
			// The child drops to uid in prefork's Main (privdrop's
			// Complete), which changes its credentials.
			spec.Identity = &privdrop.Identity{UID: uint32(uid), GID: uint32(uid)}
			spec.Path = os.Getenv("CHILD_EXE")
		}
		c, err = g.Start(spec)
		res <- err
	}()
	if err := <-res; err != nil {
		return err
	}
	fmt.Fprintln(out, c.Pid)
	<-ctx.Done()
	return nil
}

func startReport(t *testing.T, g *Group, spec Spec) report {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	spec.Role = "report"
	spec.Files = append(spec.Files, File{Name: "out", File: w})
	c, err := g.Start(spec)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	r.SetReadDeadline(time.Now().Add(time.Minute))
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		t.Fatalf("read the child's report: %v (child: %v); log:\n%s", err, c.Exit(), logsOf(g))
	}
	if e := c.Exit(); e.Code != 0 || e.Signal != 0 {
		t.Fatalf("report child ended with %v", e)
	}
	return rep
}

// TestStartInheritsOnlyWhatItIsGiven: a child holds stdio and the named
// files, all close-on-exec; a program it runs holds only stdio; its
// environment is what the spec says, not the parent's; its output is
// logged with its role.
func TestStartInheritsOnlyWhatItIsGiven(t *testing.T) {
	t.Setenv("MPM_PARENT_SECRET", "must-not-leak")
	extra, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	// A descriptor the parent holds without close-on-exec must not reach
	// the child either.
	stray, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(stray)

	g := &Group{}
	logs := testLogger(g)
	rep := startReport(t, g, Spec{Files: []File{{Name: "extra", File: extra}}, Env: []string{"SITE=alice"}})

	if !slices.Equal(rep.Files, []string{"extra", "out"}) {
		t.Errorf("child's named files %v, want [extra out]", rep.Files)
	}
	var fds []int
	for fd := range rep.FDs {
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	// 0-2 stdio, 3 extra, 4 out; the Go runtime's own (epoll, wakeup
	// pipe, cgroup files) are close-on-exec and come after.
	for _, fd := range fds {
		if fd >= 3 && !rep.CloseOnExec[fd] {
			t.Errorf("child fd %d (%s) is not close-on-exec", fd, rep.FDs[fd])
		}
		// The stray descriptor, inherited by exec because it lacked
		// close-on-exec, must have been closed.
		if fd >= 5 && rep.FDs[fd] == "/dev/null" {
			t.Errorf("child holds fd %d (%s) it was not given", fd, rep.FDs[fd])
		}
	}
	if rep.FDs[3] != "/dev/null" {
		t.Errorf("child fd 3 is %q, want /dev/null (extra)", rep.FDs[3])
	}
	if len(rep.GrandchildFDs) != 4 {
		t.Errorf("a program run by the child holds fds %v, want only 0 1 2 and its own directory fd", rep.GrandchildFDs)
	}
	for _, kv := range rep.Env {
		if strings.Contains(kv, "must-not-leak") || strings.HasPrefix(kv, EnvRole) || strings.HasPrefix(kv, EnvFiles) {
			t.Errorf("child environment holds %q", kv)
		}
	}
	if !slices.Contains(rep.Env, "SITE=alice") {
		t.Errorf("child environment %v lacks SITE=alice", rep.Env)
	}
	waitFor(t, "the child's output in the log", func() bool {
		return strings.Contains(logs.String(), `"msg":"hello from the report role","role":"report"`)
	})
}

func TestExitReported(t *testing.T) {
	var g Group
	c, err := g.Start(Spec{Role: "fail"})
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Exit(); e.Code != 1 || e.Signal != 0 {
		t.Errorf("failing role: %v, want exit status 1", e)
	}
	c, err = g.Start(Spec{Role: "no-such-role"})
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Exit(); e.Code != 1 {
		t.Errorf("unknown role: %v, want exit status 1", e)
	}
	c, err = g.Start(Spec{Role: "stubborn"})
	if err != nil {
		t.Fatal(err)
	}
	c.Signal(syscall.SIGKILL)
	if e := c.Exit(); e.Signal != syscall.SIGKILL || e.String() != "killed by signal 9 (killed)" {
		t.Errorf("killed child: %v, want killed by SIGKILL", e)
	}
	if len(g.Children()) != 0 {
		t.Errorf("ended children still listed: %v", g.Children())
	}
}

func startWithOut(t *testing.T, g *Group, role string) (*Child, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c, err := g.Start(Spec{Role: role, Files: []File{{Name: "out", File: w}}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Signal(syscall.SIGKILL) })
	r.SetReadDeadline(time.Now().Add(time.Minute))
	line := make([]byte, 8)
	if n, err := r.Read(line); err != nil || string(line[:n]) != "started\n" {
		t.Fatalf("%s child did not start: %q %v (%v)", role, line[:n], err, c.Exit())
	}
	return c, r
}

// TestStopGraceful: SIGTERM lets a role finish what it is doing; a role
// that ignores it is killed when the deadline passes, not before.
func TestStopGraceful(t *testing.T) {
	var g Group
	graceful, out := startWithOut(t, &g, "graceful")
	// A generous deadline: the child needs 200ms, however loaded the
	// machine; it must end by itself, well before.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e := graceful.Stop(ctx); e.Code != 0 || e.Signal != 0 {
		t.Errorf("graceful child: %v, want exit status 0", e)
	}
	rest := make([]byte, 64)
	n, _ := out.Read(rest)
	if string(rest[:n]) != "finished\n" {
		t.Errorf("graceful child wrote %q after SIGTERM, want it to finish its work", rest[:n])
	}

	stubborn, _ := startWithOut(t, &g, "stubborn")
	ctx, cancel = context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	g.Stop(ctx)
	took := time.Since(t0)
	if e := stubborn.Exit(); e.Signal != syscall.SIGKILL {
		t.Errorf("stubborn child: %v, want killed by SIGKILL at the deadline", e)
	}
	if took < 650*time.Millisecond || took > 10*time.Second {
		t.Errorf("Stop took %v, want about the 700ms deadline", took)
	}
}

// TestNoOrphans: when the master dies by SIGKILL its children die too,
// even though the thread that started them exited long before.
func TestNoOrphans(t *testing.T) {
	master, pid := startMasterWithChild(t, Spec{Role: "master"})
	// The spawning thread has exited; the child must still be alive.
	time.Sleep(300 * time.Millisecond)
	if !testenv.Running(pid) {
		t.Fatalf("child %d died when the thread that started it exited", pid)
	}
	master.Signal(syscall.SIGKILL)
	master.Exit()
	waitFor(t, fmt.Sprintf("child %d to die with its master", pid), func() bool { return !testenv.Running(pid) })
}

func TestWaitSignals(t *testing.T) {
	reloads := make(chan struct{}, 4)
	for _, tt := range []struct {
		sigs []syscall.Signal
		want StopKind
	}{
		{[]syscall.Signal{syscall.SIGHUP, syscall.SIGTERM}, StopGraceful},
		{[]syscall.Signal{syscall.SIGINT}, StopGraceful},
		{[]syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT}, StopImmediate},
	} {
		ready := make(chan struct{})
		got := make(chan StopKind, 1)
		go func() {
			got <- WaitSignals(context.Background(), func() { reloads <- struct{}{} }, func() { close(ready) })
		}()
		<-ready
		for _, s := range tt.sigs {
			syscall.Kill(os.Getpid(), s)
			if s == syscall.SIGHUP {
				select {
				case <-reloads:
				case <-time.After(10 * time.Second):
					t.Fatal("SIGHUP did not call reload")
				}
			}
		}
		select {
		case k := <-got:
			if k != tt.want {
				t.Errorf("signals %v: %v, want %v", tt.sigs, k, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("signals %v: WaitSignals did not return", tt.sigs)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if k := WaitSignals(ctx, nil, nil); k != StopContext {
		t.Errorf("ended context: %v, want context", k)
	}
}

func TestStartErrors(t *testing.T) {
	var g Group
	if _, err := g.Start(Spec{}); err == nil {
		t.Error("empty role accepted")
	}
	if _, err := g.Start(Spec{Role: "report", Files: []File{{Name: "a,b", File: os.Stdin}}}); err == nil || !strings.Contains(err.Error(), `"a,b"`) {
		t.Errorf("bad file name: %v, want an error naming it", err)
	}
	if _, err := g.Start(Spec{Role: "report", Path: "/nonexistent/mpmd"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/mpmd") {
		t.Errorf("missing program: %v, want an error naming it", err)
	}
}

// logsOf returns what g logged, when its logger writes to a syncBuffer
// made by testLogger.
func logsOf(g *Group) string {
	if b, ok := logBuffers.Load(g); ok {
		return b.(*testenv.SyncBuffer).String()
	}
	return "(not recorded)"
}

var logBuffers sync.Map

// testLogger gives g a JSON logger whose output logsOf returns.
func testLogger(g *Group) *testenv.SyncBuffer {
	b := &testenv.SyncBuffer{}
	logBuffers.Store(g, b)
	g.Logger = slog.New(slog.NewJSONHandler(b, nil))
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// BenchmarkStartToReady is the time from Start to a child role running
// (it writes "started" to an inherited pipe), the floor under a pool's
// cold start. It reports the median and 90th percentile:
//
//	CGO_ENABLED=0 go test -run '^$' -bench StartToReady ./prefork
func BenchmarkStartToReady(b *testing.B) {
	var g Group
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		c, err := g.Start(Spec{Role: "stubborn", Files: []File{{Name: "out", File: w}}})
		w.Close()
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 8)
		if _, err := r.Read(buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		c.Signal(syscall.SIGKILL)
		c.Exit()
		r.Close()
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}

// TestRetire: a role that watches Env.Retiring is told of a retirement
// apart from a stop; one that does not is stopped by it.
func TestRetire(t *testing.T) {
	var g Group
	for _, c := range []struct{ role, want string }{{"retiring", "retiring\n"}, {"graceful", "finished\n"}} {
		child, out := startWithOut(t, &g, c.role)
		if err := child.Retire(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 16)
		n, err := out.Read(line)
		if err != nil || string(line[:n]) != c.want {
			t.Errorf("%s child, retired: %q %v, want %q", c.role, line[:n], err, c.want)
		}
		if e := child.Exit(); e.Code != 0 {
			t.Errorf("%s child: %v", c.role, e)
		}
	}
}

// TestStartFromExe: a child started from Spec.Exe runs the file that was
// opened, even after another file has replaced it at its path (a package
// upgrade renames the new binary over the old), keeps no descriptor of
// it, and is named after the program, not after the descriptor.
func TestStartFromExe(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prog := filepath.Join(dir, "mpm-prog")
	copyFile(t, self, prog)
	exe, err := os.Open(prog)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	// What is at the path now would not write a report: the test fails
	// unless the child ran the opened file.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, prog); err != nil {
		t.Fatal(err)
	}
	extra, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	g := &Group{}
	testLogger(g)
	rep := startReport(t, g, Spec{Path: prog, Exe: exe, Files: []File{{Name: "a", File: extra}, {Name: "b", File: extra}}})
	if rep.Status.Name != "mpm-prog" {
		t.Errorf("child's name is %q, want mpm-prog (the program's file name)", rep.Status.Name)
	}
	// 3 a, 4 b, 5 out; the executable was at 6.
	for fd, target := range rep.FDs {
		if fd >= 3 && strings.HasPrefix(target, prog) {
			t.Errorf("child holds fd %d -> %s, its own executable", fd, target)
		}
	}
	if !slices.Equal(rep.Files, []string{"a", "b", "out"}) {
		t.Errorf("child's named files %v, want [a b out]", rep.Files)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// startMasterWithChild starts spec, a "master" role that starts a child
// and writes its pid to the file "out", and returns the master and that
// pid. Both are killed when the test ends.
func startMasterWithChild(t *testing.T, spec Spec) (*Child, int) {
	t.Helper()
	var g Group
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	spec.Files = append(spec.Files, File{Name: "out", File: w})
	master, err := g.Start(spec)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Signal(syscall.SIGKILL) })
	r.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 32)
	n, err := r.Read(buf)
	if err != nil {
		t.Fatalf("master did not report its child: %v (%v)", err, master.Exit())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return master, pid
}
