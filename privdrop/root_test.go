//go:build !cgo

package privdrop

// Privilege tests. They are built only without cgo, the supported build:
// with cgo, Go cannot run a system call on every thread
// (syscall.AllThreadsSyscall returns ENOTSUP) and libcap switches to its C
// implementation, so a cgo build (such as the race detector's) would test
// a configuration we do not ship. make test runs them with CGO_ENABLED=0.
// Each drop happens in a child copy of the test binary
// (the helper-process pattern), so that no drop leaks into other tests;
// while the child holds its new identity the test reads the child's
// /proc files from outside, which is what any other process would see.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

var helpers = map[string]testenv.Helper{
	"drop":            helperDrop,
	"trim":            helperTrim,
	"complete":        helperComplete,
	"before-complete": helperBeforeComplete,
	"probe":           helperProbe,
	"prepare-trimmed": helperPrepareTrimmed,
	"exit":            helperExit,
}

// regainResult records, for each way back to root a compromised process
// might try, the error it got ("" if it succeeded).
type regainResult map[string]string

type dropResult struct {
	ThreadsBefore int          // threads alive when Drop was called
	Regain        regainResult // attempts to get root back, after the drop
	Root          []string     // entries of "/" as the process sees it
	EscapedRoot   []string     // entries of "/" after chdir("..") x 8 and chroot(".")
	PasswdErr     string       // error opening /etc/passwd
	Cwd           string
	NewFileMode   uint32 // permissions of a file created with mode 0666
}

// errText is err's text, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// tryRegain tries every way back to root we know of that needs no
// outside help.
func tryRegain() regainResult {
	res := regainResult{}
	res["setuid(0)"] = errText(syscall.Setuid(0))
	res["setresuid(0,0,0)"] = errText(syscall.Setresuid(0, 0, 0))
	res["setgid(0)"] = errText(syscall.Setgid(0))
	res["setgroups(0)"] = errText(syscall.Setgroups([]int{0}))
	// A raw per-thread syscall, bypassing Go's all-threads wrapper.
	ch := make(chan string)
	go func() {
		runtime.LockOSThread() // a thread that became root must not be reused
		_, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
		if e != 0 {
			ch <- e.Error()
			return
		}
		ch <- ""
	}()
	res["raw setresuid on one thread"] = <-ch
	c := cap.GetProc()
	err := c.SetFlag(cap.Effective, true, cap.SETUID)
	if err == nil {
		err = c.SetFlag(cap.Permitted, true, cap.SETUID)
	}
	if err == nil {
		err = c.SetProc()
	}
	res["raise CAP_SETUID"] = errText(err)
	_, err = unix.PrctlRetInt(unix.PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err == nil {
		if v, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); v == 1 {
			err = errors.New("no_new_privs still set")
		}
	}
	res["clear no_new_privs"] = errText(err)
	return res
}

// inspectJail reports what a dropped (possibly chrooted) process sees.
func inspectJail(r *dropResult) error {
	r.Root = readNames("/")
	if _, err := os.Open("/etc/passwd"); err != nil {
		r.PasswdErr = err.Error()
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	r.Cwd = wd
	name := filepath.Join(wd, "umask-probe")
	if err := os.WriteFile(name, nil, 0o666); err != nil {
		return fmt.Errorf("create a file in the working directory: %w", err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	r.NewFileMode = uint32(fi.Mode().Perm())
	os.Remove(name)
	// The classic escape: chdir up past the root, chroot there.
	for range 8 {
		syscall.Chdir("..")
	}
	if err := syscall.Chroot("."); err == nil {
		r.Regain["chroot(.) after chdir(..)"] = ""
	} else {
		r.Regain["chroot(.) after chdir(..)"] = err.Error()
	}
	r.EscapedRoot = readNames(".")
	return os.Chdir(wd)
}

func readNames(dir string) []string {
	es, err := os.ReadDir(dir)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// helperDrop: args = identity (JSON), number of locked threads.
func helperDrop(args []string) (any, error) {
	var id Identity
	if err := json.Unmarshal([]byte(args[0]), &id); err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(args[1])
	stop := testenv.StartThreads(n, 2)
	defer stop()
	ts, err := procstatus.Threads(0)
	if err != nil {
		return nil, err
	}
	res := dropResult{ThreadsBefore: len(ts), Regain: regainResult{}}
	if err := Drop(id); err != nil {
		return nil, err
	}
	// Threads created after the drop must be the identity too.
	stop2 := testenv.StartThreads(n, 2)
	defer stop2()
	if id.Chroot == "" {
		if err := Verify(id); err != nil {
			return nil, fmt.Errorf("Verify after Drop and new threads: %w", err)
		}
	}
	res.Regain = tryRegain()
	if err := inspectJail(&res); err != nil {
		return nil, err
	}
	testenv.Ready()
	return res, nil
}

// helperComplete runs in a child started by a command set up with Prepare.
func helperComplete(args []string) (any, error) {
	id, err := Complete()
	if err != nil {
		return nil, err
	}
	stop := testenv.StartThreads(4, 2)
	defer stop()
	res := dropResult{Regain: tryRegain()}
	if err := inspectJail(&res); err != nil {
		return nil, fmt.Errorf("as %v: %w", id, err)
	}
	if _, ok := os.LookupEnv(EnvIdentity); ok {
		return nil, fmt.Errorf("%s is still in the environment after Complete", EnvIdentity)
	}
	testenv.Ready()
	return res, nil
}

// helperBeforeComplete is a child started through Prepare that waits,
// before it calls Complete, for the test to look at it.
func helperBeforeComplete(args []string) (any, error) {
	testenv.Ready()
	_, err := Complete()
	return nil, err
}

// helperProbe runs as a tenant (the test gives it a uid) and tries to
// reach process args[0]: its descriptors, its environment, and ptrace.
// It returns the error of each attempt ("" when it succeeded).
func helperProbe(args []string) (any, error) {
	pid, err := strconv.Atoi(args[0])
	if err != nil {
		return nil, err
	}
	res := map[string]string{}
	_, err = os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	res["list fds"] = errText(err)
	_, err = os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	res["read environ"] = errText(err)
	runtime.LockOSThread()
	err = unix.PtraceAttach(pid)
	if err == nil {
		unix.PtraceDetach(pid)
	}
	res["ptrace attach"] = errText(err)
	return res, nil
}

type trimResult struct {
	Securebits uint64
	// The capability sets of a program this trimmed root process runs.
	ExecPrm, ExecEff, ExecBnd uint64
}

var trimKeep = []cap.Value{cap.SETUID, cap.SETGID, cap.SETPCAP, cap.KILL}

func helperTrim(args []string) (any, error) {
	stop := testenv.StartThreads(8, 2)
	defer stop()
	if err := Trim(trimKeep...); err != nil {
		return nil, err
	}
	stop2 := testenv.StartThreads(4, 2)
	defer stop2()
	bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
	if err != nil {
		return nil, err
	}
	// Still uid 0: without SECBIT_NOROOT an execve would hand the new
	// program every capability in the bounding set.
	out, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		return nil, fmt.Errorf("run cat: %w", err)
	}
	st, err := procstatus.Parse(strings.NewReader(string(out)))
	if err != nil {
		return nil, err
	}
	testenv.Ready()
	return trimResult{Securebits: uint64(bits), ExecPrm: st.CapPrm, ExecEff: st.CapEff, ExecBnd: st.CapBnd}, nil
}

func helperPrepareTrimmed(args []string) (any, error) {
	if err := Trim(); err != nil {
		return nil, err
	}
	err := Prepare(exec.Command("true"), Identity{UID: 2001, GID: 2001})
	if !errors.Is(err, ErrNotAllowed) {
		return nil, fmt.Errorf("Prepare after Trim() = %v, want ErrNotAllowed", err)
	}
	return err.Error(), nil
}

// checkFromOutside reads every thread of pid from /proc and fails t for
// any that does not hold id, as the kernel reports it to other processes.
func checkFromOutside(t *testing.T, pid int, id Identity, minThreads int) {
	t.Helper()
	threads, err := procstatus.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) < minThreads {
		t.Errorf("child has %d threads, want at least %d", len(threads), minThreads)
	}
	if err := checkThreads(threads, id); err != nil {
		t.Errorf("seen from outside: %v", err)
	}
	// The essentials again, without checkThreads: it is the code under
	// test (Drop verifies itself with it), and a mistake there must not
	// hide a thread left behind.
	wantUID := [4]uint32{id.UID, id.UID, id.UID, id.UID}
	for _, s := range threads {
		if s.UID != wantUID || s.CapInh|s.CapPrm|s.CapEff|s.CapBnd|s.CapAmb != 0 || !s.NoNewPrivs {
			t.Errorf("thread %d seen from outside: uids %v, caps inh %x prm %x eff %x bnd %x amb %x, no_new_privs %v; want uids %v, no capabilities, no_new_privs",
				s.TID, s.UID, s.CapInh, s.CapPrm, s.CapEff, s.CapBnd, s.CapAmb, s.NoNewPrivs, wantUID)
		}
	}
	for _, s := range threads {
		if s.Umask != uint32(id.Umask) {
			t.Errorf("thread %d: umask %#o, want %#o", s.TID, s.Umask, id.Umask)
		}
		if nice := threadNice(t, pid, s.TID); nice != id.Nice {
			t.Errorf("thread %d: nice %d, want %d", s.TID, nice, id.Nice)
		}
	}
	// A process that is not dumpable has its /proc files owned by root,
	// so that its own (now unprivileged) uid cannot ptrace it or read
	// its memory.
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if owner := fi.Sys().(*syscall.Stat_t).Uid; owner != 0 {
		t.Errorf("/proc/%d is owned by uid %d: the process is still dumpable", pid, owner)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range id.Rlimits {
		if r.Resource != unix.RLIMIT_NOFILE {
			continue
		}
		want := fmt.Sprintf("Max open files            %-20d %-20d files", r.Cur, r.Max)
		if !strings.Contains(string(limits), want) {
			t.Errorf("/proc/%d/limits lacks %q:\n%s", pid, want, limits)
		}
	}
}

// threadNice reads field 19 (nice) of /proc/<pid>/task/<tid>/stat.
func threadNice(t *testing.T, pid, tid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces; count from after it.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	n, err := strconv.Atoi(f[19-3])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func checkRegain(t *testing.T, r regainResult) {
	t.Helper()
	if len(r) < 7 {
		t.Errorf("only %d regain attempts recorded: %v", len(r), r)
	}
	for what, err := range r {
		if err == "" {
			t.Errorf("%s succeeded after the drop", what)
		}
	}
}

func encode(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// workDir makes a directory owned by uid/gid, mode 0700, under a
// root-owned parent that only root and that uid can traverse.
func workDir(t *testing.T, uid, gid uint32) string {
	dir := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent is 0700 root; let the identity through.
	os.Chmod(filepath.Dir(dir), 0o711)
	os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o711)
	return dir
}

func TestDropAllThreads(t *testing.T) {
	testenv.RequireRoot(t)
	uid, gid, extra := testenv.FreeID(t, 2011), testenv.FreeID(t, 2012), testenv.FreeID(t, 2013)
	id := Identity{
		UID: uid, GID: gid, Groups: []uint32{gid, extra},
		Dir:     workDir(t, uid, gid),
		Nice:    5,
		Umask:   0o027,
		Rlimits: []Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 256, Max: 512}},
	}
	const locked = 12
	p := testenv.Command(t, "drop", encode(t, id), strconv.Itoa(locked))
	pid, release, err := p.Hold()
	if err != nil {
		t.Fatal(err)
	}
	// locked threads before the drop, locked after, and the main one.
	checkFromOutside(t, pid, id, 2*locked+1)
	release()
	var res dropResult
	if err := p.Wait(&res); err != nil {
		t.Fatal(err)
	}
	if res.ThreadsBefore < locked+1 {
		t.Errorf("only %d threads were alive at the drop, want at least %d", res.ThreadsBefore, locked+1)
	}
	checkRegain(t, res.Regain)
	if res.Cwd != id.Dir {
		t.Errorf("working directory %q, want %q", res.Cwd, id.Dir)
	}
	if res.NewFileMode != 0o640 {
		t.Errorf("a file created 0666 under umask 027 has mode %#o, want 0640", res.NewFileMode)
	}
}

// TestDropChroot: a chrooted drop sees only the jail, and cannot climb out
// of it.
func TestDropChroot(t *testing.T) {
	testenv.RequireRoot(t)
	uid := testenv.FreeID(t, 2021)
	jail := makeJail(t, uid)
	id := Identity{UID: uid, GID: uid, Chroot: jail, Dir: "/home", Umask: 0o077}
	p := testenv.Command(t, "drop", encode(t, id), "4")
	pid, release, err := p.Hold()
	if err != nil {
		t.Fatal(err)
	}
	checkFromOutside(t, pid, id, 9)
	if root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err != nil || root != jail {
		t.Errorf("root of the child is %q (%v), want %q", root, err, jail)
	}
	release()
	var res dropResult
	if err := p.Wait(&res); err != nil {
		t.Fatal(err)
	}
	checkJailView(t, res)
	if res.NewFileMode != 0o600 {
		t.Errorf("a file created 0666 under umask 077 has mode %#o, want 0600", res.NewFileMode)
	}
}

func makeJail(t *testing.T, uid uint32) string {
	// The jail's parents must be searchable by the identity, which
	// chroots itself when started by Prepare.
	jail := filepath.Join(testenv.PublicDir(t, 0o755), "jail")
	for _, d := range []string{jail, filepath.Join(jail, "home")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(jail, "inside.txt"), []byte("in the jail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(jail, "home"), int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
	return jail
}

func checkJailView(t *testing.T, res dropResult) {
	t.Helper()
	want := []string{"home", "inside.txt"}
	if diff := cmp.Diff(want, res.Root); diff != "" {
		t.Errorf("\"/\" inside the jail (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, res.EscapedRoot); diff != "" {
		t.Errorf("\"/\" after trying to climb out (-want +got):\n%s", diff)
	}
	if !strings.Contains(res.PasswdErr, "no such file") {
		t.Errorf("opening /etc/passwd in the jail: %q, want no such file", res.PasswdErr)
	}
	if res.Cwd != "/home" {
		t.Errorf("working directory %q, want /home", res.Cwd)
	}
	checkRegain(t, res.Regain)
}

// TestPrepareComplete: a child started through Prepare and finished by
// Complete ends exactly as a Drop would leave it, chroot included.
func TestPrepareComplete(t *testing.T) {
	testenv.RequireRoot(t)
	uid, gid := testenv.FreeID(t, 2031), testenv.FreeID(t, 2032)
	jail := makeJail(t, uid)
	if err := os.Chown(filepath.Join(jail, "home"), int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	id := Identity{UID: uid, GID: gid, Groups: []uint32{gid}, Chroot: jail, Dir: "/home", Nice: 3, Umask: 0o022}
	p := testenv.Command(t, "complete")
	p.Cmd.Path = testenv.PublicExecutable(t)
	p.Cmd.Dir = "/"
	if err := Prepare(p.Cmd, id); err != nil {
		t.Fatal(err)
	}
	pid, release, err := p.Hold()
	if err != nil {
		t.Fatal(err)
	}
	checkFromOutside(t, pid, id, 5)
	release()
	var res dropResult
	if err := p.Wait(&res); err != nil {
		t.Fatal(err)
	}
	checkJailView(t, res)
}

// TestPreparedChildOutOfReach: between its start and Complete, a child
// started through Prepare is out of reach of the identity's own processes
// (the tenant): it holds capabilities and has no no_new_privs yet. When it
// started as the identity, it was dumpable after execve until it cleared
// that itself, and a tenant process could attach to it or open its
// descriptors through /proc in that window.
func TestPreparedChildOutOfReach(t *testing.T) {
	testenv.RequireRoot(t)
	uid := testenv.FreeID(t, 2041)
	id := Identity{UID: uid, GID: uid}
	p := testenv.Command(t, "before-complete")
	p.Cmd.Path = testenv.PublicExecutable(t)
	p.Cmd.Dir = "/"
	if err := Prepare(p.Cmd, id); err != nil {
		t.Fatal(err)
	}
	pid, release, err := p.Hold()
	if err != nil {
		t.Fatal(err)
	}
	probe := testenv.Command(t, "probe", strconv.Itoa(pid))
	probe.Cmd.Path = testenv.PublicExecutable(t)
	probe.Cmd.Dir = "/"
	probe.Cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	var got map[string]string
	perr := probe.Run(&got)
	st, serr := procstatus.Process(pid)
	release()
	if err := p.Wait(nil); err != nil {
		t.Fatalf("the child's Complete: %v", err)
	}
	if perr != nil || serr != nil {
		t.Fatalf("probe: %v; status: %v", perr, serr)
	}
	for what, e := range got {
		if !strings.Contains(e, "permission denied") && !strings.Contains(e, "operation not permitted") {
			t.Errorf("a process of uid %d could %s of the prepared child before Complete (%q)", uid, what, e)
		}
	}
	if len(got) != 3 {
		t.Errorf("probe results %v, want 3", got)
	}
	if st.UID != [4]uint32{} || st.CapAmb == 0 {
		t.Errorf("prepared child before Complete: uids %v, ambient %s; want uid 0 with the ambient capabilities Complete needs", st.UID, capHex(st.CapAmb))
	}
}

// TestTrim: after Trim every thread holds exactly the kept set in
// permitted, effective and bounding, nothing inheritable or ambient, the
// securebits are locked, and a program the still-root process runs gains
// no capability.
func TestTrim(t *testing.T) {
	testenv.RequireRoot(t)
	p := testenv.Command(t, "trim")
	pid, release, err := p.Hold()
	if err != nil {
		t.Fatal(err)
	}
	mask := CapMask(trimKeep...)
	threads, err := procstatus.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) < 13 {
		t.Errorf("child has %d threads, want at least 13", len(threads))
	}
	for _, s := range threads {
		got := [5]string{capHex(s.CapPrm), capHex(s.CapEff), capHex(s.CapBnd), capHex(s.CapInh), capHex(s.CapAmb)}
		want := [5]string{capHex(mask), capHex(mask), capHex(mask), capHex(0), capHex(0)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("thread %d: capability sets Prm,Eff,Bnd,Inh,Amb (-want +got):\n%s", s.TID, diff)
		}
		if s.UID != [4]uint32{} {
			t.Errorf("thread %d: Trim changed the uids to %v", s.TID, s.UID)
		}
	}
	release()
	var res trimResult
	if err := p.Wait(&res); err != nil {
		t.Fatal(err)
	}
	if cap.Secbits(res.Securebits) != TrimSecurebits {
		t.Errorf("securebits %#x, want %#x", res.Securebits, uint(TrimSecurebits))
	}
	if res.ExecPrm != 0 || res.ExecEff != 0 {
		t.Errorf("a program run by the trimmed root process has CapPrm %s CapEff %s, want none", capHex(res.ExecPrm), capHex(res.ExecEff))
	}
	if res.ExecBnd != mask {
		t.Errorf("a program run by the trimmed process has CapBnd %s, want %s", capHex(res.ExecBnd), capHex(mask))
	}
}

// TestPrepareTrimmed: a root process trimmed to no capabilities is told,
// by name, which ones it lacks to start a child as another identity.
func TestPrepareTrimmed(t *testing.T) {
	testenv.RequireRoot(t)
	var msg string
	if err := testenv.Command(t, "prepare-trimmed").Run(&msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "cap_setuid") || !strings.Contains(msg, "operation not permitted") {
		t.Fatalf("Prepare in a trimmed root process = %q, want ErrNotAllowed naming cap_setuid", msg)
	}
}

// helperExit is the smallest helper: it completes the drop when started
// by Prepare and returns.
func helperExit(args []string) (any, error) {
	if len(args) > 0 && args[0] == "complete" {
		if _, err := Complete(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// BenchmarkSpawn measures what starting a worker as an identity costs
// (Prepare, exec, Complete with its verification, exit) against starting
// the same child as root with no drop, the baseline in the same run:
//
//	sudo CGO_ENABLED=0 go test -run '^$' -bench Spawn ./privdrop
func BenchmarkSpawn(b *testing.B) {
	testenv.RequireRoot(b)
	exe := testenv.PublicExecutable(b)
	id := Identity{UID: testenv.FreeID(b, 2051), GID: testenv.FreeID(b, 2051), Nice: 1}
	run := func(b *testing.B, prepare bool) {
		for b.Loop() {
			arg := "plain"
			if prepare {
				arg = "complete"
			}
			p := testenv.Command(b, "exit", arg)
			p.Cmd.Path = exe
			p.Cmd.Dir = "/"
			if prepare {
				if err := Prepare(p.Cmd, id); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Run(nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("plain", func(b *testing.B) { run(b, false) })
	b.Run("prepared", func(b *testing.B) { run(b, true) })
}

// The supported build (CGO_ENABLED=0) can drop on every thread.
func TestSupported(t *testing.T) {
	if err := Supported(); err != nil {
		t.Fatalf("Supported() in a CGO_ENABLED=0 build: %v", err)
	}
}
