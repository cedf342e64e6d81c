package seccomp

// Tests that install a filter. A filter cannot be removed, so each one
// is installed in a child copy of the test binary (the helper-process
// pattern of internal/testenv), never in the test process. While the
// child holds, the test reads its /proc files from outside, as any other
// process would see them.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, map[string]testenv.Helper{
		"filtered": helperFiltered,
		"cost":     helperCost,
	})
}

// filteredResult is what the "filtered" helper reports.
type filteredResult struct {
	UID, GID int
	// Start is the helper's own state before it did anything: a
	// filter already there (a container's) or missing capabilities
	// make the errnos before ours someone else's.
	Start procstatus.Status
	// NoNewPrivsErr is Install's error before no_new_privs was set.
	NoNewPrivsErr string
	// Before and After hold each probe's errno (0: it succeeded)
	// without and with the filter.
	Before, After map[string]int
	// Checks holds, for each thing that must hold under the filter, ""
	// when it did, "skip: why" when it could not be tried here, or what
	// went wrong.
	Checks map[string]string
	// Threads is every thread of the helper after the filter, with
	// threads started before and after it.
	Threads []taskState
	// Exec is a program the helper ran, as that program saw itself.
	Exec taskState
}

type taskState struct {
	TID        int
	Seccomp    int
	NoNewPrivs bool
}

func state(s procstatus.Status) taskState {
	return taskState{TID: s.TID, Seccomp: s.Seccomp, NoNewPrivs: s.NoNewPrivs}
}

const lockedThreads = 6 // started before the filter, and as many after

// helperFiltered: args = mode ("root": stay root; "drop": become
// uid:gid first, as a worker is), uid, gid, a directory it may write.
func helperFiltered(args []string) (any, error) {
	// The probes act on the calling thread (personality, set*id). Never
	// unlocked: the thread ends with the helper.
	runtime.LockOSThread()
	mode, dir := args[0], args[3]
	uid, _ := strconv.Atoi(args[1])
	gid, _ := strconv.Atoi(args[2])
	start, err := procstatus.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	stop := testenv.StartThreads(lockedThreads, 1)
	defer stop()
	if mode == "drop" {
		// On every thread (the syscall package does that), as
		// privdrop.Drop does, without what Drop adds: the filter is
		// under test, not the drop.
		if err := syscall.Setgroups([]int{}); err != nil {
			return nil, fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setresgid(gid, gid, gid); err != nil {
			return nil, fmt.Errorf("setresgid: %w", err)
		}
		if err := syscall.Setresuid(uid, uid, uid); err != nil {
			return nil, fmt.Errorf("setresuid: %w", err)
		}
	}
	res := filteredResult{UID: unix.Getuid(), GID: unix.Getgid(), Start: start, Before: runProbes()}

	err = Default().Install()
	if !errors.Is(err, ErrNoNewPrivs) {
		return nil, fmt.Errorf("Install without no_new_privs: %v, want an error wrapping ErrNoNewPrivs", err)
	}
	res.NoNewPrivsErr = err.Error()
	// On this thread only: the kernel sets it on every thread it puts
	// the filter on, and the test checks that it did.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("set no_new_privs: %w", err)
	}
	if err := Default().Install(); err != nil {
		return nil, err
	}
	stop2 := testenv.StartThreads(lockedThreads, 1)
	defer stop2()

	res.After = runProbes()
	res.Checks = checkAllowed(dir, uid, gid)
	ts, err := procstatus.Threads(0)
	if err != nil {
		return nil, err
	}
	for _, s := range ts {
		res.Threads = append(res.Threads, state(s))
	}
	out, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		return nil, fmt.Errorf("run cat /proc/self/status: %w", err)
	}
	s, err := procstatus.Parse(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	res.Exec = state(s)

	// A child alive while the test looks from outside.
	sleep := exec.Command("sleep", "120")
	if err := sleep.Start(); err != nil {
		return nil, fmt.Errorf("start sleep: %w", err)
	}
	defer func() {
		sleep.Process.Kill()
		sleep.Wait()
	}()
	testenv.Ready()
	return res, nil
}

func runProbes() map[string]int {
	m := map[string]int{}
	for _, p := range probes() {
		m[p.name] = int(p.call())
	}
	return m
}

// checkAllowed tries what a worker and its PHP need, and what must be
// refused through other paths than a raw system call.
func checkAllowed(dir string, uid, gid int) map[string]string {
	res := map[string]string{}
	try := func(name string, f func() error) {
		if err := f(); err != nil {
			res[name] = err.Error()
		} else {
			res[name] = ""
		}
	}
	try("getuid and getgid", func() error {
		if u, g := unix.Getuid(), unix.Getgid(); u != uid || g != gid {
			return fmt.Errorf("getuid, getgid = %d, %d; want %d, %d", u, g, uid, gid)
		}
		return nil
	})
	try("create, write, read a file", func() error {
		name := filepath.Join(dir, "probe")
		if err := os.WriteFile(name, []byte("hello"), 0o600); err != nil {
			return err
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if string(b) != "hello" {
			return fmt.Errorf("read %q back, want %q", b, "hello")
		}
		return os.Remove(name)
	})
	try("socket and connect to a loopback listener", func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(c, c)
			c.Close()
		}()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if string(b) != "ping" {
			return fmt.Errorf("echo %q, want %q", b, "ping")
		}
		return nil
	})
	try("fork and exec /bin/true", func() error { return exec.Command("/bin/true").Run() })
	try("personality query", func() error { return errnoErr(sys(unix.SYS_PERSONALITY, PersonaQuery)) })
	try("personality(PER_LINUX)", func() error { return errnoErr(sys(unix.SYS_PERSONALITY, PersonaLinux)) })
	try("clone without namespace flags reaches the kernel", func() error {
		// CLONE_THREAD without CLONE_SIGHAND: the kernel's EINVAL,
		// not the filter's EPERM, and nothing created.
		if e := sys(unix.SYS_CLONE, unix.CLONE_THREAD, 0, 0, 0, 0); e != unix.EINVAL {
			return fmt.Errorf("clone(CLONE_THREAD): %v, want EINVAL from the kernel", errName(e))
		}
		return nil
	})
	try("os/exec into a new user namespace fails with EPERM", func() error {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		if err := cmd.Run(); !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("got %v, want EPERM", err)
		}
		return nil
	})
	res["a shell's unshare --user fails with EPERM"] = shellUnshare()
	res["a glibc program starts a thread (clone3 falls back to clone)"] = glibcThread()
	return res
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func errName(e syscall.Errno) string {
	if e == 0 {
		return "success"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// shellUnshare runs util-linux's unshare from a shell the filtered
// process started: the filter passes to the shell and on to unshare.
func shellUnshare() string {
	if _, err := exec.LookPath("unshare"); err != nil {
		return "skip: no unshare command (util-linux)"
	}
	out, err := exec.Command("/bin/sh", "-c", "unshare --user true").CombinedOutput()
	if err == nil {
		return "unshare --user succeeded"
	}
	if !strings.Contains(string(out), "Operation not permitted") {
		return fmt.Sprintf("%v, output %q; want Operation not permitted", err, out)
	}
	return ""
}

// glibcThread runs a glibc program that starts a thread: glibc tries
// clone3 first and must fall back to clone on ENOSYS.
func glibcThread() string {
	for _, c := range [][]string{
		{"python3", "-c", "import threading; t = threading.Thread(target=lambda: None); t.start(); t.join(); print('ok')"},
		{"perl", "-Mthreads", "-e", "threads->create(sub { 1 })->join; print qq(ok\n)"},
	} {
		path, err := exec.LookPath(c[0])
		if err != nil {
			continue
		}
		out, err := exec.Command(path, c[1:]...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			return fmt.Sprintf("%s: %v, output %q", c[0], err, out)
		}
		return ""
	}
	return "skip: neither python3 nor perl is installed"
}

// checkFromOutside reads the held helper's threads and its child from
// /proc.
func checkFromOutside(t *testing.T, pid int) {
	t.Helper()
	threads, err := procstatus.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) < 2*lockedThreads+1 {
		t.Errorf("helper has %d threads, want at least %d", len(threads), 2*lockedThreads+1)
	}
	for _, s := range threads {
		if s.Seccomp != 2 || !s.NoNewPrivs {
			t.Errorf("thread %d seen from outside: Seccomp %d, NoNewPrivs %v; want 2 and true", s.TID, s.Seccomp, s.NoNewPrivs)
		}
	}
	kids := procstatus.Descendants(pid)
	if len(kids) == 0 {
		t.Errorf("the helper's child (sleep) is not running")
	}
	for _, k := range kids {
		s, err := procstatus.Process(k)
		if err != nil {
			t.Errorf("child %d: %v", k, err)
			continue
		}
		if s.Seccomp != 2 || !s.NoNewPrivs {
			t.Errorf("child %d (%s) seen from outside: Seccomp %d, NoNewPrivs %v; want 2 and true", k, s.Name, s.Seccomp, s.NoNewPrivs)
		}
	}
}

func runFiltered(t *testing.T, mode string, uid, gid uint32) filteredResult {
	t.Helper()
	dir := testenv.PublicDir(t, 0o777)
	p := testenv.Command(t, "filtered", mode, fmt.Sprint(uid), fmt.Sprint(gid), dir)
	// A session of its own: no controlling terminal for vhangup to hang
	// up, should the filter let it through.
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	p.Cmd.Dir = dir
	pid, release, err := p.Hold()
	if err != nil {
		t.Fatal(err)
	}
	checkFromOutside(t, pid)
	release()
	var res filteredResult
	if err := p.Wait(&res); err != nil {
		t.Fatal(err)
	}
	if res.UID != int(uid) || res.GID != int(gid) {
		t.Fatalf("helper ran as %d:%d, want %d:%d", res.UID, res.GID, uid, gid)
	}
	if !strings.Contains(res.NoNewPrivsErr, ErrNoNewPrivs.Error()) {
		t.Errorf("Install without no_new_privs: %q, want it to say %q", res.NoNewPrivsErr, ErrNoNewPrivs)
	}
	for _, p := range probes() {
		got, ok := res.After[p.name]
		if !ok {
			t.Errorf("%s: not probed", p.name)
			continue
		}
		if syscall.Errno(got) != p.want {
			t.Errorf("%s under the filter: %s, want %s (without it: %s)",
				p.name, errName(syscall.Errno(got)), errName(p.want), errName(syscall.Errno(res.Before[p.name])))
		}
	}
	for name, v := range res.Checks {
		switch {
		case strings.HasPrefix(v, "skip: "):
			t.Logf("%s: %s", name, v)
		case v != "":
			t.Errorf("%s: %s", name, v)
		}
	}
	if len(res.Threads) < 2*lockedThreads+1 {
		t.Errorf("helper saw %d threads of its own, want at least %d", len(res.Threads), 2*lockedThreads+1)
	}
	for _, s := range res.Threads {
		if s.Seccomp != 2 || !s.NoNewPrivs {
			t.Errorf("thread %d: Seccomp %d, NoNewPrivs %v; want 2 and true (TSYNC)", s.TID, s.Seccomp, s.NoNewPrivs)
		}
	}
	if res.Exec.Seccomp != 2 || !res.Exec.NoNewPrivs {
		t.Errorf("a program run under the filter: Seccomp %d, NoNewPrivs %v; want 2 and true", res.Exec.Seccomp, res.Exec.NoNewPrivs)
	}
	return res
}

// TestFilterAsRoot installs Default in a root process with every
// capability, where nothing but the filter refuses the probes: their
// errnos before the filter are the kernel's own, and a probe that gets
// the same errno before and after proves nothing about the filter.
func TestFilterAsRoot(t *testing.T) {
	testenv.RequireRoot(t)
	res := runFiltered(t, "root", 0, 0)
	strict := true
	if res.Start.Seccomp != 0 {
		strict = false
		t.Logf("the test runs under a seccomp filter already (Seccomp: %d; a container?): the errnos without ours are not the kernel's alone, so only the errnos with it are checked", res.Start.Seccomp)
	}
	if missing := rootCaps &^ res.Start.CapEff; missing != 0 {
		strict = false
		t.Logf("the test runs as root without capabilities %#x (a container?): only the errnos with the filter are checked", missing)
	}
	for _, p := range probes() {
		before := syscall.Errno(res.Before[p.name])
		t.Logf("%-32s without the filter: %-10s with it: %s", p.name, errName(before), errName(syscall.Errno(res.After[p.name])))
		if before != p.want || !strict {
			continue
		}
		if why, ok := kernelMayRefuse[p.name]; ok {
			t.Logf("%s: %s without the filter too (%s); TestVerdicts checks the filter's answer", p.name, errName(before), why)
			continue
		}
		t.Errorf("%s: %s without the filter too: the probe cannot tell the filter's answer from the kernel's", p.name, errName(before))
	}
}

// rootCaps are the capabilities whose absence would make the kernel
// refuse a probe with EPERM by itself.
const rootCaps = 1<<unix.CAP_DAC_READ_SEARCH | 1<<unix.CAP_SETGID | 1<<unix.CAP_SETUID |
	1<<unix.CAP_SYS_MODULE | 1<<unix.CAP_SYS_RAWIO | 1<<unix.CAP_SYS_PTRACE | 1<<unix.CAP_SYS_PACCT |
	1<<unix.CAP_SYS_ADMIN | 1<<unix.CAP_SYS_BOOT | 1<<unix.CAP_SYS_TIME | 1<<unix.CAP_SYS_TTY_CONFIG |
	1<<unix.CAP_SYSLOG | 1<<unix.CAP_PERFMON | 1<<unix.CAP_BPF

// kernelMayRefuse names the probes that a kernel may refuse to root with
// the filter's own errno, and why.
var kernelMayRefuse = map[string]string{
	"x32 getpid":        "a kernel without x32 answers ENOSYS, as the filter does",
	"kexec_load":        "kernel.kexec_load_disabled, or lockdown",
	"kexec_file_load":   "kernel.kexec_load_disabled, or lockdown",
	"init_module":       "kernel.modules_disabled",
	"finit_module":      "kernel.modules_disabled",
	"delete_module":     "kernel.modules_disabled",
	"iopl":              "lockdown",
	"ioperm":            "lockdown",
	"io_uring_setup":    "kernel.io_uring_disabled=2",
	"bpf":               "lockdown",
	"perf_event_open":   "lockdown",
	"io_uring_enter":    "kernel.io_uring_disabled=2",
	"io_uring_register": "kernel.io_uring_disabled=2",
}

// TestFilterAsWorker installs Default in a process that has become an
// unprivileged identity first, as an mpmd worker does.
func TestFilterAsWorker(t *testing.T) {
	testenv.RequireRoot(t)
	uid, gid := testenv.FreeID(t, 2071), testenv.FreeID(t, 2072)
	runFiltered(t, "drop", uid, gid)
}

// TestEveryRuleProbed: every call Default refuses has a probe that the
// tests above run.
func TestEveryRuleProbed(t *testing.T) {
	probed := map[string]bool{}
	for _, p := range probes() {
		name, _, _ := strings.Cut(p.name, "(")
		probed[name] = true
	}
	for _, r := range Default().Rules {
		if numbers[r.Syscall] == absent {
			continue
		}
		if !probed[r.Syscall] {
			t.Errorf("%s is refused but never probed", r.Syscall)
		}
	}
}

// costResult holds nanoseconds per call without and with a filter.
type costResult struct {
	Getpid, Personality [2]float64
}

// helperCost: args = calls per round, and the filter to install
// ("default", or "zero": the architecture check alone). It times getpid,
// which the kernel's cache of allowed calls lets skip the filter
// program, and a personality query, which runs the whole program: it is
// the last rule, and decided by its argument.
func helperCost(args []string) (any, error) {
	runtime.LockOSThread()
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return nil, err
	}
	f := Default()
	if args[1] == "zero" {
		f = &Filter{}
	}
	measure := func(trap, a1 uintptr) float64 {
		best := math.Inf(1)
		for range 5 {
			start := time.Now()
			for range n {
				unix.RawSyscall(trap, a1, 0, 0)
			}
			best = min(best, float64(time.Since(start).Nanoseconds())/float64(n))
		}
		return best
	}
	var res costResult
	res.Getpid[0] = measure(unix.SYS_GETPID, 0)
	res.Personality[0] = measure(unix.SYS_PERSONALITY, PersonaQuery)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	if err := f.Install(); err != nil {
		return nil, err
	}
	res.Getpid[1] = measure(unix.SYS_GETPID, 0)
	res.Personality[1] = measure(unix.SYS_PERSONALITY, PersonaQuery)
	return res, nil
}

// TestSyscallCost reports what a filter adds to a system call (run with
// -v to see it): the zero Filter shows the cost of the seccomp path in
// the kernel, Default what its rules add. A filter needs no privilege,
// only no_new_privs, so this runs as any user. It asserts nothing about
// speed.
func TestSyscallCost(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: it times system calls")
	}
	if archErr != nil {
		t.Skipf("no table on this architecture: %v", archErr)
	}
	for _, which := range []string{"zero", "default"} {
		var res costResult
		if err := testenv.Command(t, "cost", "100000", which).Run(&res); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-7s filter: getpid %6.1f -> %6.1f ns (%+5.1f); personality(query) %6.1f -> %6.1f ns (%+5.1f)", which,
			res.Getpid[0], res.Getpid[1], res.Getpid[1]-res.Getpid[0],
			res.Personality[0], res.Personality[1], res.Personality[1]-res.Personality[0])
	}
}
