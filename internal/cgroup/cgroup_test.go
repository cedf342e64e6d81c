package cgroup_test

// Root tests. Each makes a parent cgroup of its own directly under the
// cgroup2 mount (mpm-test-<pid>-<test>), and removes it with everything
// left in it when it ends. Processes that must not leak into the test
// binary (a privilege trim, a memory hog) run as helper children.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/cgroup"
	"github.com/gompm/mpm/internal/testenv"
)

var helpers = map[string]testenv.Helper{
	"whereami":  helperWhereAmI,
	"tree":      helperTree,
	"alloc":     helperAlloc,
	"spin":      helperSpin,
	"unpriv":    helperUnpriv,
	"delegated": helperDelegated,
}

func TestMain(m *testing.M) { testenv.Main(m, helpers) }

// support skips (or, with MPM_REQUIRE_ROOT=1, fails) the test unless
// root, and detects the hierarchy.
func support(t *testing.T) cgroup.Support {
	t.Helper()
	testenv.RequireRoot(t)
	s, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testParent makes a parent for t alone.
func testParent(t *testing.T) (*cgroup.Parent, cgroup.Support) {
	t.Helper()
	s := support(t)
	name := fmt.Sprintf("mpm-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	dir := filepath.Join(s.Mount, name)
	t.Cleanup(func() { removeTree(t, dir) })
	p, err := cgroup.OpenParent(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

// removeTree kills whatever is left under dir and removes its cgroups,
// deepest first.
func removeTree(t testing.TB, dir string) {
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if f, err := os.OpenFile(filepath.Join(dir, "cgroup.kill"), os.O_WRONLY, 0); err == nil {
		f.WriteString("1")
		f.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if !strings.Contains(string(b), "populated 1") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range slices.Backward(dirs) {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// cgroupOf returns the v2 cgroup of process pid ("self" for this one).
func cgroupOf(pid string) (string, error) {
	f, err := os.Open("/proc/" + pid + "/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("/proc/%s/cgroup: no v2 line", pid)
}

// pathOf is how /proc/<pid>/cgroup names the cgroup in directory dir.
func pathOf(s cgroup.Support, dir string) string {
	return filepath.Join(s.MountRoot, strings.TrimPrefix(dir, s.Mount))
}

// startIn starts cmd in g: by CLONE_INTO_CGROUP when viaFD, else by
// writing its pid to cgroup.procs after it started.
func startIn(t *testing.T, g *cgroup.Group, cmd *exec.Cmd, viaFD bool) {
	t.Helper()
	if !viaFD {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := g.Add(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(f.Fd())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s with CLONE_INTO_CGROUP: %v", cmd.Path, g.Dir(), err)
	}
}

var ways = []struct {
	name  string
	viaFD bool
}{{"cgroup.procs", false}, {"CgroupFD", true}}

func wait(t *testing.T, g *cgroup.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func helperWhereAmI([]string) (any, error) { return cgroupOf("self") }

// TestDetect: what Detect reports agrees with the files, and on a hybrid
// host the controllers bound to v1 are absent from the v2 tree.
func TestDetect(t *testing.T) {
	s := support(t)
	t.Logf("this host: %s", s)
	self, err := cgroupOf("self")
	if err != nil {
		t.Fatal(err)
	}
	if s.Self != self || s.SelfDir != filepath.Join(s.Mount, strings.TrimPrefix(self, s.MountRoot)) {
		t.Errorf("Self %q SelfDir %q, want %q under %s", s.Self, s.SelfDir, self, s.Mount)
	}
	b, err := os.ReadFile(filepath.Join(s.SelfDir, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(s.Controllers, " "), strings.TrimSpace(string(b)); got != want {
		t.Errorf("Controllers %q, file says %q", got, want)
	}
	for c, m := range s.V1Mounts {
		if slices.Contains(s.Controllers, c) {
			t.Errorf("%s is bound to v1 at %s and listed in the v2 tree", c, m)
		}
	}
	parent, leaf := s.Layout()
	if s.Root() && (parent != filepath.Join(s.Mount, "mpmd") || leaf != "") {
		t.Errorf("Layout in the root cgroup = %q, %q", parent, leaf)
	}
}

// TestAddAndCgroupFD: a process enters its group by cgroup.procs, or is
// born there with CLONE_INTO_CGROUP: then the child itself reads its
// group from its first look at /proc/self/cgroup.
func TestAddAndCgroupFD(t *testing.T) {
	p, s := testParent(t)
	g, err := p.Create("alice", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := pathOf(s, g.Dir())

	sleeper := exec.Command("sleep", "60")
	startIn(t, g, sleeper, false)
	defer sleeper.Wait()
	if got, err := cgroupOf(strconv.Itoa(sleeper.Process.Pid)); err != nil || got != want {
		t.Errorf("after Add: process in %q (%v), want %q", got, err, want)
	}
	if pids, err := g.Procs(); err != nil || !slices.Contains(pids, sleeper.Process.Pid) {
		t.Errorf("Procs = %v, %v; want it to hold %d", pids, err, sleeper.Process.Pid)
	}

	h := testenv.Command(t, "whereami")
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	h.Cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	var seen string
	err = h.Run(&seen)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if seen != want {
		t.Errorf("a child started with CgroupFD saw itself in %q, want %q", seen, want)
	}

	if err := g.Remove(); !errors.Is(err, cgroup.ErrPopulated) {
		t.Errorf("Remove of a populated group: %v, want ErrPopulated", err)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wait(t, g)
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("group directory still there after Remove: %v", err)
	}
	if err := g.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// helperTree starts a child and an orphan (its parent, a shell in a
// session of its own, exits at once), writes the pids of all three
// processes to args[0], and waits to be killed.
func helperTree(args []string) (any, error) {
	child := exec.Command("sleep", "300")
	if err := child.Start(); err != nil {
		return nil, err
	}
	sh := exec.Command("sh", "-c", "sleep 300 </dev/null >/dev/null 2>&1 & echo $!")
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := sh.Output()
	if err != nil {
		return nil, err
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, fmt.Errorf("orphan pid %q", out)
	}
	b, _ := json.Marshal([]int{os.Getpid(), child.Process.Pid, orphan})
	if err := os.WriteFile(args[0], b, 0o644); err != nil {
		return nil, err
	}
	testenv.Ready()
	return nil, nil
}

// TestKill: Kill reaches every process in the group, a grandchild that
// left its parent included, with cgroup.kill and with the signal loop of
// older kernels; and neither misses a process forked while it runs.
func TestKill(t *testing.T) {
	for _, mode := range []struct {
		name     string
		killFile bool
	}{{"cgroup.kill", true}, {"signals", false}} {
		t.Run(mode.name, func(t *testing.T) {
			defer cgroup.SetKillFile(mode.killFile)()
			for _, way := range ways {
				t.Run("tree-"+way.name, func(t *testing.T) { testKillTree(t, way.viaFD) })
			}
			t.Run("fork-storm", testKillForkStorm)
		})
	}
}

func testKillTree(t *testing.T, viaFD bool) {
	p, s := testParent(t)
	g, err := p.Create("tree", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	h := testenv.Command(t, "tree", pidFile)
	if viaFD {
		f, err := g.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h.Cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	}
	pid, release, err := h.Hold()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if !viaFD {
		// The helper's children are started already: they stay where
		// they are. Move them all, as a master would never have to.
		b, _ := os.ReadFile(pidFile)
		var all []int
		json.Unmarshal(b, &all)
		for _, q := range all {
			if err := g.Add(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	if err := json.Unmarshal(b, &pids); err != nil || len(pids) != 3 || pids[0] != pid {
		t.Fatalf("helper pids %s (%v), want 3 starting with %d", b, err, pid)
	}
	for _, q := range pids {
		if got, _ := cgroupOf(strconv.Itoa(q)); got != pathOf(s, g.Dir()) {
			t.Fatalf("pid %d in %q, want the group", q, got)
		}
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wait(t, g)
	for _, q := range pids {
		if testenv.Running(q) {
			t.Errorf("pid %d survived Kill", q)
		}
	}
	release()
	if err := h.Wait(nil); err == nil {
		t.Error("the helper ended normally; want it killed")
	}
	if err := g.Remove(); err != nil {
		t.Error(err)
	}
}

func testKillForkStorm(t *testing.T) {
	p, _ := testParent(t)
	g, err := p.Create("storm", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// A bounded storm: a shell starting sleeps as fast as it can.
	sh := exec.Command("sh", "-c", `i=0; while [ $i -lt 3000 ]; do sleep 300 & i=$((i+1)); done; wait`)
	startIn(t, g, sh, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := g.Procs()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the storm has %d processes after 10s", len(pids))
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wait(t, g)
	if pids, _ := g.Procs(); len(pids) != 0 {
		t.Errorf("after Kill and Wait: %d processes left", len(pids))
	}
	if err := sh.Wait(); err == nil {
		t.Error("the storm's shell ended normally; want it killed")
	}
}

// TestStats: CPU time is counted without the cpu controller; memory and
// pids are Unknown exactly when their controller is missing.
func TestStats(t *testing.T) {
	p, _ := testParent(t)
	g, err := p.Create("stats", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h := testenv.Command(t, "spin", "200ms")
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	h.Cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	pid, release, err := h.Hold()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.Stats()
	release()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("while running (pid %d): %+v", pid, st)
	if !st.Populated {
		t.Error("Populated false with the helper in the group")
	}
	if err := h.Wait(nil); err != nil {
		t.Fatal(err)
	}
	wait(t, g)
	st, err = g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after: %+v", st)
	if st.CPU < 150*time.Millisecond || st.CPU < st.CPUUser || st.Populated {
		t.Errorf("after spinning 200ms: %+v; want CPU >= 150ms, >= CPUUser, not populated", st)
	}
	has := p.Controllers()
	if (st.Memory == cgroup.Unknown) == slices.Contains(has, "memory") {
		t.Errorf("Memory = %d with controllers %v", st.Memory, has)
	}
	if (st.Pids == cgroup.Unknown) == slices.Contains(has, "pids") {
		t.Errorf("Pids = %d with controllers %v", st.Pids, has)
	}
}

// helperSpin holds until released, then burns CPU for args[0] of CPU
// time.
func helperSpin(args []string) (any, error) {
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return nil, err
	}
	testenv.Ready()
	var ru syscall.Rusage
	for n := 0; ; n++ {
		if n%100000 == 0 {
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= d {
				return n, nil
			}
		}
	}
}

var allLimits = cgroup.Limits{MemoryMax: 64 << 20, CPUWeight: 50, CPUMax: "50000 100000", PidsMax: 100}

var limitFiles = map[string]string{"memory.max": "memory", "cpu.weight": "cpu", "cpu.max": "cpu", "pids.max": "pids"}

// TestNotEnforced: every limit is either in its file or reported, with a
// reason; Strict refuses to make a group that would not be limited; a
// reused group gets exactly its new limits.
func TestNotEnforced(t *testing.T) {
	p, s := testParent(t)
	has := p.Controllers()
	t.Logf("controllers for the groups: %v; unavailable: %v", has, p.Unavailable())
	g, err := p.Create("limits", allLimits)
	if err != nil {
		t.Fatal(err)
	}
	reported := map[string]bool{}
	for _, n := range g.NotEnforced {
		t.Logf("%s", n)
		reported[n.File] = true
		if n.Reason == "" {
			t.Errorf("%s reported without a reason", n.File)
		}
		if _, v1 := s.V1Mounts[limitFiles[n.File]]; v1 && !strings.Contains(n.Reason, "cgroup v1") {
			t.Errorf("%s: reason %q does not say the controller is bound to cgroup v1", n.File, n.Reason)
		}
	}
	want := map[string]string{"memory.max": "67108864", "cpu.weight": "50", "cpu.max": "50000 100000", "pids.max": "100"}
	for file, ctl := range limitFiles {
		enforced := slices.Contains(has, ctl)
		if enforced == reported[file] {
			t.Errorf("%s: controller %s enabled %v, reported not enforced %v", file, ctl, enforced, reported[file])
		}
		if enforced {
			b, _ := os.ReadFile(filepath.Join(g.Dir(), file))
			if got := strings.TrimSpace(string(b)); got != want[file] {
				t.Errorf("%s = %q, want %q", file, got, want[file])
			}
		}
	}

	// Reused with no limits: every enforced file back to its default.
	if _, err := p.Create("limits", cgroup.Limits{}); err != nil {
		t.Fatal(err)
	}
	def := map[string]string{"memory.max": "max", "cpu.weight": "100", "cpu.max": "max 100000", "pids.max": "max"}
	for file, ctl := range limitFiles {
		if slices.Contains(has, ctl) {
			b, _ := os.ReadFile(filepath.Join(g.Dir(), file))
			if got := strings.TrimSpace(string(b)); got != def[file] {
				t.Errorf("reused: %s = %q, want %q", file, got, def[file])
			}
		}
	}

	strict := allLimits
	strict.Strict = true
	_, err = p.Create("strict", strict)
	if len(g.NotEnforced) == 0 {
		if err != nil {
			t.Errorf("Strict with every controller present: %v", err)
		}
		return
	}
	if !errors.Is(err, cgroup.ErrNotEnforced) {
		t.Fatalf("Strict Create: %v, want ErrNotEnforced", err)
	}
	t.Logf("strict: %v", err)
	if _, err := os.Stat(filepath.Join(p.Dir(), "strict")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused strict group was left behind: %v", err)
	}
}

// need skips t when the parent's groups lack controller c: the limit
// cannot be enforced on this host, and TestNotEnforced checks that it is
// reported.
func need(t *testing.T, p *cgroup.Parent, c string) {
	t.Helper()
	if !slices.Contains(p.Controllers(), c) {
		t.Skipf("skipped: the %s controller is not available to cgroup v2 groups here (%s); TestNotEnforced checks that its limits are reported", c, p.Unavailable()[c])
	}
}

// TestPidsMax: pids.max stops a fork loop inside the group.
func TestPidsMax(t *testing.T) {
	p, _ := testParent(t)
	need(t, p, "pids")
	g, err := p.Create("forks", cgroup.Limits{PidsMax: 10})
	if err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh", "-c", `for i in $(seq 50); do sleep 60 & done; wait`)
	startIn(t, g, sh, true)
	defer sh.Wait()
	deadline := time.Now().Add(10 * time.Second)
	var st cgroup.Stats
	for {
		if st, err = g.Stats(); err != nil {
			t.Fatal(err)
		}
		if st.PidsLimit > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%+v", st)
	if st.PidsLimit == 0 || st.Pids > 10 {
		t.Errorf("fork loop under pids.max=10: %d refused forks, %d tasks", st.PidsLimit, st.Pids)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wait(t, g)
}

// helperAlloc allocates and touches args[0] MiB.
func helperAlloc(args []string) (any, error) {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return nil, err
	}
	var keep [][]byte
	for range n {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	return len(keep), nil
}

// TestMemoryMax: a process that outgrows memory.max is OOM-killed; a
// process in a sibling group lives on.
func TestMemoryMax(t *testing.T) {
	p, _ := testParent(t)
	need(t, p, "memory")
	g, err := p.Create("hog", cgroup.Limits{MemoryMax: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Without swap.max 0 the hog may swap instead of being killed.
	if f, err := os.OpenFile(filepath.Join(g.Dir(), "memory.swap.max"), os.O_WRONLY, 0); err == nil {
		f.WriteString("0")
		f.Close()
	}
	other, err := p.Create("bystander", cgroup.Limits{MemoryMax: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	bystander := exec.Command("sleep", "60")
	startIn(t, other, bystander, true)
	defer func() { other.Kill(); bystander.Wait() }()

	h := testenv.Command(t, "alloc", "256")
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	h.Cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	err = h.Run(nil)
	f.Close()
	ws, _ := h.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("a 256 MiB allocation under memory.max=64MiB: %v (status %v), want SIGKILL", err, h.Cmd.ProcessState)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.OOMKills < 1 {
		t.Errorf("memory.events oom_kill = %d, want >= 1", st.OOMKills)
	}
	if !testenv.Running(bystander.Process.Pid) {
		t.Error("the process in the sibling group died too")
	}
}

// TestCPULimits: cpu.weight and cpu.max are written, and cpu.max holds a
// spinning process to its quota.
func TestCPULimits(t *testing.T) {
	p, _ := testParent(t)
	need(t, p, "cpu")
	g, err := p.Create("cpu", cgroup.Limits{CPUWeight: 50, CPUMax: "20000 100000"})
	if err != nil {
		t.Fatal(err)
	}
	h := testenv.Command(t, "spin", "100ms")
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	h.Cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	start := time.Now()
	err = h.Run(nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 100ms of CPU at 20% of one CPU takes about 500ms.
	if wall := time.Since(start); wall < 350*time.Millisecond {
		t.Errorf("100ms of CPU under cpu.max 20000/100000 took %v, want about 500ms", wall)
	}
}

// unprivResult is what a process without root's uid could do.
type unprivResult struct {
	Path         string // write to a group's cgroup.procs it does not own
	Chowned      string // write to a group's cgroup.procs it owns
	OpenedByRoot string // write through a cgroup.procs root opened
	After        string // its cgroup in the end
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// helperUnpriv runs as a non-root uid with no capabilities.
func helperUnpriv(args []string) (any, error) {
	var r unprivResult
	me := strconv.Itoa(os.Getpid())
	write := func(name string) error {
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString(me)
		return err
	}
	r.Path = errText(write(filepath.Join(args[1], "cgroup.procs")))
	r.Chowned = errText(write(filepath.Join(args[0], "cgroup.procs")))
	f := os.NewFile(3, "cgroup.procs")
	_, err := f.WriteString(me)
	r.OpenedByRoot = errText(err)
	r.After, _ = cgroupOf("self")
	return r, nil
}

// TestUnprivilegedWriter pins the rule for a writer that is not root:
// owning the target group's cgroup.procs is not enough, the common
// ancestor's must be writable too; but the check uses the credentials of
// whoever opened the file (Linux 5.16), so a descriptor root opened
// works in anybody's hands.
func TestUnprivilegedWriter(t *testing.T) {
	p, s := testParent(t)
	uid := testenv.FreeID(t, 29871)
	a, err := p.Create("a", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Create("b", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(a.Dir(), "cgroup.procs"), int(uid), -1); err != nil {
		t.Fatal(err)
	}
	fd, err := os.OpenFile(filepath.Join(b.Dir(), "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	h := testenv.Command(t, "unpriv", a.Dir(), b.Dir())
	h.Cmd.Path = testenv.PublicExecutable(t)
	h.Cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	h.Cmd.ExtraFiles = []*os.File{fd}
	var r unprivResult
	if err := h.Run(&r); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if !strings.Contains(r.Path, "permission denied") {
		t.Errorf("write to a cgroup.procs owned by root: %q, want permission denied", r.Path)
	}
	if !strings.Contains(r.Chowned, "permission denied") {
		t.Errorf("write to its own cgroup.procs with the ancestor's root-owned: %q, want permission denied", r.Chowned)
	}
	if r.OpenedByRoot != "" || r.After != pathOf(s, b.Dir()) {
		t.Errorf("write through root's descriptor: %q, then in %q; want it to move to %q", r.OpenedByRoot, r.After, pathOf(s, b.Dir()))
	}
}

// delegatedResult is what a daemon started in a cgroup of its own (as a
// systemd service with Delegate=yes) saw.
type delegatedResult struct {
	Self, Parent, Leaf string
	Root               bool
	Before             []string          // controllers the parent got before the move
	BeforeWhy          map[string]string // and why not the others
	After              []string          // after it moved into the leaf
	GroupControllers   string            // a group's cgroup.controllers
	SelfAfter          string            // the daemon's cgroup after the move
	Child              string            // where a child started in the group ran
}

func helperDelegated(args []string) (any, error) {
	if args[0] != "" {
		defer cgroup.SetLimitControllers([]string{"cpu", "memory", "pids", args[0]})()
	}
	var r delegatedResult
	s, err := cgroup.Detect()
	if err != nil {
		return nil, err
	}
	r.Self, r.Root = s.Self, s.Root()
	r.Parent, r.Leaf = s.Layout()
	p, err := cgroup.OpenParent(r.Parent)
	if err != nil {
		return nil, err
	}
	r.Before, r.BeforeWhy = p.Controllers(), p.Unavailable()
	if err := cgroup.MoveAll(s.SelfDir, r.Leaf); err != nil {
		return nil, err
	}
	r.SelfAfter, _ = cgroupOf("self")
	if p, err = cgroup.OpenParent(r.Parent); err != nil {
		return nil, err
	}
	r.After = p.Controllers()
	g, err := p.Create("alice", cgroup.Limits{})
	if err != nil {
		return nil, err
	}
	b, _ := os.ReadFile(filepath.Join(g.Dir(), "cgroup.controllers"))
	r.GroupControllers = strings.TrimSpace(string(b))
	f, err := g.Open()
	if err != nil {
		return nil, err
	}
	c := exec.Command("cat", "/proc/self/cgroup")
	c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	out, err := c.Output()
	f.Close()
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "0::"); ok {
			r.Child = v
		}
	}
	if err := g.Remove(); err != nil {
		return nil, err
	}
	return r, p.Remove()
}

// TestDelegatedLayout plays a systemd service with Delegate=yes: the
// daemon starts in a cgroup of its own, which holds it, so controllers
// cannot be enabled for its children until it moves into a leaf; then
// they can, and the identity groups get them.
//
// On a host whose v2 tree has none of cpu, memory and pids (hybrid), the
// test uses hugetlb, which is enough to exercise the enabling: it turns
// it on in the root's subtree_control for the duration (as systemd does
// for a delegated service) and turns it off again.
func TestDelegatedLayout(t *testing.T) {
	s := support(t)
	rootCtl, err := os.ReadFile(filepath.Join(s.Mount, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	extra := ""
	var want []string
	for _, c := range []string{"cpu", "memory", "pids"} {
		if slices.Contains(strings.Fields(string(rootCtl)), c) {
			want = append(want, c)
		}
	}
	if len(want) == 0 && slices.Contains(strings.Fields(string(rootCtl)), "hugetlb") {
		extra, want = "hugetlb", []string{"hugetlb"}
	}
	subtree := filepath.Join(s.Mount, "cgroup.subtree_control")
	on, _ := os.ReadFile(subtree)
	for _, c := range want {
		if slices.Contains(strings.Fields(string(on)), c) {
			continue
		}
		if err := os.WriteFile(subtree, []byte("+"+c), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := os.WriteFile(subtree, []byte("-"+c), 0); err != nil {
				t.Errorf("turn %s off again in %s: %v", c, subtree, err)
			}
		})
	}
	svc := filepath.Join(s.Mount, fmt.Sprintf("mpm-test-%d-mpmd.service", os.Getpid()))
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(t, svc) })
	dir, err := os.Open(svc)
	if err != nil {
		t.Fatal(err)
	}
	h := testenv.Command(t, "delegated", extra)
	h.Cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	var r delegatedResult
	err = h.Run(&r)
	dir.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	self := pathOf(s, svc)
	if r.Self != self || r.Root || r.Parent != filepath.Join(svc, "identities") || r.Leaf != filepath.Join(svc, "supervisor") {
		t.Errorf("in %q: Self %q root %v, Layout %q %q", self, r.Self, r.Root, r.Parent, r.Leaf)
	}
	if r.SelfAfter != self+"/supervisor" || r.Child != self+"/identities/alice" {
		t.Errorf("daemon moved to %q, child ran in %q", r.SelfAfter, r.Child)
	}
	if len(want) == 0 {
		t.Logf("no controller to enable on this host; the layout alone was checked")
		return
	}
	if len(r.Before) != 0 {
		t.Errorf("controllers enabled while the service cgroup held the daemon: %v", r.Before)
	}
	for _, c := range want {
		if !strings.Contains(r.BeforeWhy[c], "holds processes") {
			t.Errorf("before the move, %s: %q, want the no-internal-processes reason", c, r.BeforeWhy[c])
		}
		if !slices.Contains(r.After, c) || !slices.Contains(strings.Fields(r.GroupControllers), c) {
			t.Errorf("after the move: parent has %v, group has %q; want %s", r.After, r.GroupControllers, c)
		}
	}
}
