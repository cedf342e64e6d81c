package cgroup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBadName matches an error for a group name that cannot be a cgroup
// directory of its own.
var ErrBadName = errors.New("cgroup: bad group name")

// ErrPopulated matches the error of [Group.Remove] on a group that still
// has processes.
var ErrPopulated = errors.New("cgroup: group still has processes")

// Group is one identity's cgroup.
type Group struct {
	name string
	dir  string
	// NotEnforced lists the limits given to [Parent.Create] that the
	// hierarchy cannot enforce (on a hybrid host: all of them).
	NotEnforced []NotEnforced
}

// Create makes the group name under p (or reuses it, when an earlier run
// left it) and writes its limits. Limits that need a controller p lacks
// are listed in Group.NotEnforced, or make Create fail when l.Strict is
// set. A name is one path element: not empty, no "/", no leading ".",
// and not a controller's interface-file prefix such as "memory.x".
func (p *Parent) Create(name string, l Limits) (*Group, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	set, err := l.settings()
	if err != nil {
		return nil, fmt.Errorf("cgroup: group %s: %w", name, err)
	}
	dir := filepath.Join(p.dir, name)
	created := true
	if err := os.Mkdir(dir, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cgroup: create group: %w", err)
		}
		created = false
	}
	undo := func() {
		if created {
			os.Remove(dir)
		}
	}
	g := &Group{name: name, dir: dir}
	for _, s := range set {
		if !slices.Contains(p.enabled, s.controller) {
			if s.set {
				g.NotEnforced = append(g.NotEnforced, NotEnforced{File: s.file, Value: s.value, Reason: p.unavailable[s.controller]})
			}
			continue
		}
		if err := writeFile(filepath.Join(dir, s.file), s.value); err != nil {
			undo()
			return nil, fmt.Errorf("cgroup: group %s: set %s to %q: %w", name, s.file, s.value, err)
		}
	}
	if l.Strict && len(g.NotEnforced) > 0 {
		undo()
		return nil, &NotEnforcedError{Group: name, Limits: g.NotEnforced}
	}
	return g, nil
}

// CheckName reports, with an error that matches [ErrBadName], whether
// name cannot be a group's name: what [Parent.Create] would refuse. A
// daemon checks its identities' names with it when it reads its
// configuration.
func CheckName(name string) error { return checkName(name) }

// checkName checks that name is one directory name that cannot collide
// with an interface file.
func checkName(name string) error {
	why := ""
	switch {
	case name == "":
		why = "empty"
	case len(name) > 255:
		why = "longer than 255 bytes"
	case strings.ContainsAny(name, "/\x00\n"):
		why = `contains "/", a newline or NUL`
	case strings.HasPrefix(name, "."):
		why = `starts with "."`
	}
	if c, _, ok := strings.Cut(name, "."); why == "" && ok && isInterfacePrefix(c) {
		why = fmt.Sprintf("%q is the prefix of cgroup interface files", c+".")
	}
	if why != "" {
		return fmt.Errorf("%w: %q: %s", ErrBadName, name, why)
	}
	return nil
}

// isInterfacePrefix reports whether files named "<c>.something" can
// appear in a cgroup directory.
func isInterfacePrefix(c string) bool {
	switch c {
	case "cgroup", "cpu", "cpuset", "io", "memory", "hugetlb", "pids", "rdma", "misc", "dmem", "irq":
		return true
	}
	return false
}

// Name returns the group's name; Dir its directory.
func (g *Group) Name() string { return g.name }

// Dir returns the group's directory.
func (g *Group) Dir() string { return g.dir }

// Add moves process pid, with all its threads, into the group by writing
// it to cgroup.procs. The processes it starts later are born in the
// group. The writer needs write access, by file permission, to the
// group's cgroup.procs and to the cgroup.procs of the closest common
// ancestor of the process's present cgroup and the group (checked with
// the credentials of whoever opened the file).
func (g *Group) Add(pid int) error {
	err := writeFile(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cgroup: add pid %d to group %s: %w (the writer needs write access to cgroup.procs of the group and of the common ancestor of the process's cgroup and the group)", pid, g.name, err)
	case errors.Is(err, syscall.ESRCH):
		return fmt.Errorf("cgroup: add pid %d to group %s: no such process: %w", pid, g.name, err)
	}
	return fmt.Errorf("cgroup: add pid %d to group %s: %w", pid, g.name, err)
}

// Open opens the group's directory, for a child to start in the group
// from its first instruction (clone3 with CLONE_INTO_CGROUP):
//
//	f, err := g.Open()
//	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
//	err = cmd.Start()
//	f.Close()
//
// The caller closes the file once the child has started.
func (g *Group) Open() (*os.File, error) {
	f, err := os.OpenFile(g.dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open group %s: %w", g.name, err)
	}
	return f, nil
}

// Procs returns the pids in the group's cgroup.procs.
func (g *Group) Procs() ([]int, error) {
	pids, err := readProcs(g.dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup: group %s: %w", g.name, err)
	}
	return pids, nil
}

// Populated reports whether a live process is in the group or below it
// (cgroup.events). Zombies do not count: a killed child that its parent
// has not reaped yet has left the group.
func (g *Group) Populated() (bool, error) {
	kv, err := readKeyed(filepath.Join(g.dir, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("cgroup: group %s: %w", g.name, err)
	}
	n, ok := kv["populated"]
	if !ok {
		return false, fmt.Errorf("cgroup: group %s: cgroup.events has no populated line", g.name)
	}
	return n != 0, nil
}

// useKillFile is false in a test that exercises the fallback of older
// kernels.
var useKillFile = true

// killTimeout bounds the signal loop of kernels without cgroup.kill.
const killTimeout = 10 * time.Second

// Kill sends SIGKILL to every process in the group and below it, the
// ones that left their parent (double fork, setsid) included. It returns
// once the signals are sent; [Group.Wait] waits for the processes to be
// gone.
//
// With cgroup.kill (Linux 5.14) it is one write, and the kernel makes
// sure no process forked meanwhile escapes. Without, Kill freezes the
// group (cgroup.freeze, Linux 5.2) so nothing in it can fork, signals
// every pid in cgroup.procs through a pidfd (so a pid reused by another
// process after it was read is never signalled), and repeats until
// cgroup.procs is empty, then thaws the empty group.
func (g *Group) Kill() error {
	if useKillFile {
		err := writeFile(filepath.Join(g.dir, "cgroup.kill"), "1")
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cgroup: kill group %s: %w", g.name, err)
		}
	}
	return g.killBySignals()
}

func (g *Group) killBySignals() error {
	freeze := filepath.Join(g.dir, "cgroup.freeze")
	if writeFile(freeze, "1") == nil {
		defer writeFile(freeze, "0")
	}
	deadline := time.Now().Add(killTimeout)
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		left := 0
		err := filepath.WalkDir(g.dir, func(dir string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			n, err := signalAll(dir)
			left += n
			return err
		})
		if err != nil {
			return fmt.Errorf("cgroup: kill group %s: %w", g.name, err)
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: kill group %s: %d processes still there after %v", g.name, left, killTimeout)
		}
		time.Sleep(wait)
	}
}

// signalAll sends SIGKILL to the processes in dir's cgroup.procs and
// returns how many were there.
func signalAll(dir string) (int, error) {
	pids, err := readProcs(dir)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	// Pin each process with a pidfd, then read cgroup.procs again: a pid
	// still listed belongs to the pinned process (a process that exits
	// leaves the list before its pid can be reused), so the signal can
	// only reach a member of the group.
	fds := make(map[int]int, len(pids))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	plain := false
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, syscall.ENOSYS) {
			plain = true // before Linux 5.3: signal by pid
			break
		}
		if err == nil {
			fds[pid] = fd
		}
	}
	now, err := readProcs(dir)
	if err != nil {
		return 0, err
	}
	for _, pid := range now {
		if plain {
			syscall.Kill(pid, syscall.SIGKILL)
		} else if fd, ok := fds[pid]; ok {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
	}
	return len(now), nil
}

// Wait waits until no live process is left in the group, or ctx ends.
func (g *Group) Wait(ctx context.Context) error {
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 50*time.Millisecond) {
		pop, err := g.Populated()
		if err != nil || !pop {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cgroup: wait for group %s to empty: %w", g.name, ctx.Err())
		case <-t.C:
		}
	}
}

// Unknown is the value of a [Stats] field whose controller the group
// lacks.
const Unknown = -1

// Stats is what a group used. CPU time is always known (cpu.stat exists
// without the cpu controller); the other numbers are [Unknown] without
// their controller.
type Stats struct {
	CPU       time.Duration // cpu.stat usage_usec: user and system
	CPUUser   time.Duration // cpu.stat user_usec
	CPUSystem time.Duration // cpu.stat system_usec
	Memory    int64         // memory.current, in bytes
	OOMKills  int64         // memory.events oom_kill: processes the OOM killer killed
	Pids      int64         // pids.current: processes and threads
	PidsLimit int64         // pids.events max: forks refused by pids.max
	Populated bool          // cgroup.events populated
}

// Stats reads the group's usage.
func (g *Group) Stats() (Stats, error) {
	s := Stats{Memory: Unknown, OOMKills: Unknown, Pids: Unknown, PidsLimit: Unknown}
	cpu, err := readKeyed(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return Stats{}, fmt.Errorf("cgroup: group %s: %w", g.name, err)
	}
	s.CPU = time.Duration(cpu["usage_usec"]) * time.Microsecond
	s.CPUUser = time.Duration(cpu["user_usec"]) * time.Microsecond
	s.CPUSystem = time.Duration(cpu["system_usec"]) * time.Microsecond
	for _, f := range []struct {
		file, key string
		dst       *int64
	}{
		{"memory.current", "", &s.Memory},
		{"memory.events", "oom_kill", &s.OOMKills},
		{"pids.current", "", &s.Pids},
		{"pids.events", "max", &s.PidsLimit},
	} {
		n, err := readNumber(filepath.Join(g.dir, f.file), f.key)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Stats{}, fmt.Errorf("cgroup: group %s: %w", g.name, err)
		}
		*f.dst = n
	}
	if s.Populated, err = g.Populated(); err != nil {
		return Stats{}, err
	}
	return s, nil
}

// Remove removes the group. It fails with [ErrPopulated] while a process
// is left in it: [Group.Kill] and [Group.Wait] first. Removing a group
// that is gone is not an error.
func (g *Group) Remove() error {
	err := os.Remove(g.dir)
	switch {
	case err == nil || errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("cgroup: remove group %s: %w (Kill and Wait first): %w", g.name, ErrPopulated, err)
	}
	return fmt.Errorf("cgroup: remove group %s: %w", g.name, err)
}

// readKeyed reads a flat-keyed file ("key value" lines) such as cpu.stat.
func readKeyed(name string) (map[string]int64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bad value %q for %s", name, v, k)
		}
		m[k] = n
	}
	return m, nil
}

// readNumber reads a single-value file, or with key the key's value in a
// flat-keyed file.
func readNumber(name, key string) (int64, error) {
	if key != "" {
		m, err := readKeyed(name)
		if err != nil {
			return 0, err
		}
		return m[key], nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	v := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: bad value %q", name, v)
	}
	return n, nil
}
