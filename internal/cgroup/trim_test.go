//go:build !cgo

package cgroup_test

// The master's capability trim is built only without cgo, like privdrop's
// own privilege tests: with cgo, Go cannot change every thread's
// capabilities (syscall.AllThreadsSyscall returns ENOTSUP).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/gompm/mpm/internal/cgroup"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/privdrop"
)

func init() { helpers["trimmed"] = helperTrimmed }

// masterCaps is what DESIGN.md says the master keeps after binding.
var masterCaps = []cap.Value{cap.SETUID, cap.SETGID, cap.SETPCAP, cap.KILL, cap.SYS_CHROOT, cap.CHOWN}

// trimmedResult holds, for each step a trimmed master takes, its error
// ("" for success) and where the processes ended up.
type trimmedResult struct {
	CapEff       string
	MkdirAtRoot  string // a new directory in the cgroup2 root
	OpenParent   string // the parent made before the trim
	Create       string
	Add          string // move a process of another uid into the group
	AddedIn      string
	CloneInto    string // start a process of another uid with CgroupFD
	ClonedIn     string
	Stats        string
	Kill         string
	Remove       string
	RemoveParent string
}

// helperTrimmed trims its capabilities to the master's, then manages an
// identity group under the parent args[0] (made before the trim) for
// processes running as uid args[1].
func helperTrimmed(args []string) (any, error) {
	if err := privdrop.Trim(masterCaps...); err != nil {
		return nil, err
	}
	var r trimmedResult
	st, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			r.CapEff = strings.TrimSpace(v)
		}
	}
	uid, err := strconv.Atoi(args[1])
	if err != nil {
		return nil, err
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	probe := filepath.Join(filepath.Dir(args[0]), fmt.Sprintf("mpm-test-%d-trimmed-mkdir", os.Getpid()))
	err = os.Mkdir(probe, 0o755)
	r.MkdirAtRoot = errText(err)
	if err == nil {
		os.Remove(probe)
	}

	p, err := cgroup.OpenParent(args[0])
	if r.OpenParent = errText(err); err != nil {
		return r, nil
	}
	g, err := p.Create("trimmed", cgroup.Limits{})
	if r.Create = errText(err); err != nil {
		return r, nil
	}
	added := exec.Command("sleep", "60")
	added.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := added.Start(); err != nil {
		return nil, err
	}
	defer added.Wait()
	r.Add = errText(g.Add(added.Process.Pid))
	r.AddedIn, _ = cgroupOf(strconv.Itoa(added.Process.Pid))

	f, err := g.Open()
	if err != nil {
		return nil, err
	}
	cloned := exec.Command("sleep", "60")
	cloned.SysProcAttr = &syscall.SysProcAttr{Credential: cred, UseCgroupFD: true, CgroupFD: int(f.Fd())}
	err = cloned.Start()
	f.Close()
	if r.CloneInto = errText(err); err == nil {
		defer cloned.Wait()
		r.ClonedIn, _ = cgroupOf(strconv.Itoa(cloned.Process.Pid))
	}
	_, err = g.Stats()
	r.Stats = errText(err)
	r.Kill = errText(g.Kill())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Wait(ctx); err != nil {
		return nil, err
	}
	r.Remove = errText(g.Remove())
	r.RemoveParent = errText(p.Remove())
	return r, nil
}

// TestTrimmedMaster: a master that kept uid 0 but trimmed its
// capabilities to SETUID SETGID SETPCAP KILL SYS_CHROOT CHOWN (no
// DAC_OVERRIDE, no SYS_ADMIN) manages identity groups under a parent made
// before the trim: it owns every file there. It cannot make a directory in
// the cgroup2 root (mode 0555 even for its owner), nor remove one there.
func TestTrimmedMaster(t *testing.T) {
	p, s := testParent(t)
	uid := testenv.FreeID(t, 29872)
	h := testenv.Command(t, "trimmed", p.Dir(), strconv.Itoa(int(uid)))
	var r trimmedResult
	if err := h.Run(&r); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if want := fmt.Sprintf("%016x", privdrop.CapMask(masterCaps...)); r.CapEff != want {
		t.Fatalf("helper CapEff %s, want %s", r.CapEff, want)
	}
	if !strings.Contains(r.MkdirAtRoot, "permission denied") {
		t.Errorf("mkdir in the cgroup2 root after the trim: %q, want permission denied", r.MkdirAtRoot)
	}
	want := pathOf(s, filepath.Join(p.Dir(), "trimmed"))
	for step, got := range map[string]string{
		"OpenParent": r.OpenParent, "Create": r.Create, "Add": r.Add, "CloneInto": r.CloneInto,
		"Stats": r.Stats, "Kill": r.Kill, "Remove": r.Remove,
	} {
		if got != "" {
			t.Errorf("%s after the trim: %s", step, got)
		}
	}
	if r.AddedIn != want || r.ClonedIn != want {
		t.Errorf("processes of uid %d in %q (Add) and %q (CgroupFD), want %q", uid, r.AddedIn, r.ClonedIn, want)
	}
	if !strings.Contains(r.RemoveParent, "permission denied") {
		t.Errorf("removing the parent from the cgroup2 root after the trim: %q, want permission denied", r.RemoveParent)
	}
}
