package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Names of the layout [Support.Layout] picks.
const (
	// RootParentName is the parent's name when the daemon runs in the
	// root cgroup: <mount>/mpmd.
	RootParentName = "mpmd"
	// SupervisorName is the leaf a daemon in a delegated cgroup moves
	// itself into (<own cgroup>/supervisor), so that its own cgroup may
	// give controllers to its children.
	SupervisorName = "supervisor"
	// IdentitiesName is the parent under a delegated cgroup:
	// <own cgroup>/identities.
	IdentitiesName = "identities"
)

// Layout says where the daemon's groups go.
//
// In the root cgroup (no systemd, or a hybrid host whose v2 tree systemd
// does not manage, or a container's own cgroup namespace) the parent is
// <mount>/mpmd and leaf is "": the root cgroup may hold processes and
// still give its children controllers.
//
// Anywhere else the daemon is in a cgroup somebody delegated to it (a
// systemd service with Delegate=yes): it must not create groups outside
// it, and because a cgroup that gives controllers to its children may not
// hold processes itself (the "no internal processes" rule), the daemon
// first moves itself into leaf = <own>/supervisor ([MoveAll]) and makes
// parent = <own>/identities.
func (s Support) Layout() (parent, leaf string) {
	if s.Root() {
		return filepath.Join(s.Mount, RootParentName), ""
	}
	return filepath.Join(s.SelfDir, IdentitiesName), filepath.Join(s.SelfDir, SupervisorName)
}

// Parent is the cgroup under which every identity gets a [Group].
type Parent struct {
	dir         string
	enabled     []string
	unavailable map[string]string
}

// OpenParent makes dir, an absolute path inside the cgroup2 hierarchy,
// the parent of identity groups: it creates dir when missing and enables
// cpu, memory and pids for dir (in the cgroup.subtree_control of dir's
// parent) and for dir's children (in dir's own), where the hierarchy
// offers them. It touches no level higher than dir's parent: under
// systemd those are systemd's.
//
// A controller that cannot be enabled is not an error: it is recorded
// with the reason ([Parent.Unavailable]) and the limits that need it are
// reported by [Parent.Create]. On a hybrid host, where cpu, memory and
// pids are bound to cgroup v1, that is every limit.
//
// Call OpenParent before trimming capabilities: making a directory in the
// root cgroup needs CAP_DAC_OVERRIDE (it is mode 0555). Everything below
// the parent is owned by root and writable by its owner, so a master that
// keeps uid 0 needs no capability to create, fill, kill and remove the
// identity groups (see the package documentation).
func OpenParent(dir string) (*Parent, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("cgroup: parent %q: not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	up := filepath.Dir(dir)
	if err := checkV2(up); err != nil {
		return nil, fmt.Errorf("cgroup: parent %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cgroup: make parent: %w", err)
	}
	p := &Parent{dir: dir, unavailable: map[string]string{}}
	avail, err := readList(filepath.Join(up, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup: parent %s: %w", dir, err)
	}
	upOn, err := readList(filepath.Join(up, "cgroup.subtree_control"))
	if err != nil {
		return nil, fmt.Errorf("cgroup: parent %s: %w", dir, err)
	}
	on, err := readList(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return nil, fmt.Errorf("cgroup: parent %s: %w", dir, err)
	}
	var v1 map[string]string
	if s, err := Detect(); err == nil {
		v1 = s.V1Mounts
	}
	for _, c := range limitControllers {
		if !slices.Contains(avail, c) {
			if m, ok := v1[c]; ok {
				p.unavailable[c] = fmt.Sprintf("the %s controller is bound to cgroup v1 (mounted at %s), so no cgroup2 group can have it", c, m)
			} else {
				p.unavailable[c] = fmt.Sprintf("the %s controller is not in %s/cgroup.controllers (the level above does not give it; under systemd, set Delegate=yes)", c, up)
			}
			continue
		}
		if !slices.Contains(upOn, c) {
			if err := enable(up, c); err != nil {
				p.unavailable[c] = err.Error()
				continue
			}
		}
		if !slices.Contains(on, c) {
			if err := enable(dir, c); err != nil {
				p.unavailable[c] = err.Error()
				continue
			}
		}
		p.enabled = append(p.enabled, c)
	}
	return p, nil
}

// enable writes +c to dir's cgroup.subtree_control.
func enable(dir, c string) error {
	err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+c)
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("enable %s for the children of %s: %w: it holds processes, and a cgroup that gives controllers to its children may not (move them into a leaf first, see MoveAll)", c, dir, err)
	}
	return fmt.Errorf("enable %s for the children of %s: %w", c, dir, err)
}

// Dir returns the parent's directory.
func (p *Parent) Dir() string { return p.dir }

// Controllers returns the controllers the parent's groups have.
func (p *Parent) Controllers() []string { return slices.Clone(p.enabled) }

// Unavailable returns, for each of cpu, memory and pids that the groups
// do not have, why.
func (p *Parent) Unavailable() map[string]string {
	m := make(map[string]string, len(p.unavailable))
	for k, v := range p.unavailable {
		m[k] = v
	}
	return m
}

// Remove removes the parent's directory. It fails while a group is left
// in it.
func (p *Parent) Remove() error {
	if err := os.Remove(p.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroup: remove parent: %w", err)
	}
	return nil
}

// Group returns the group name under p, which [Parent.Create] made
// before (perhaps in an earlier run of the daemon), without changing its
// limits.
func (p *Parent) Group(name string) (*Group, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(p.dir, name)
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("cgroup: group %s: %w", name, err)
	}
	return &Group{name: name, dir: dir}, nil
}

// MoveAll moves every process in the cgroup directory from into the cgroup
// directory to, creating to. A daemon in a delegated cgroup calls it with
// its own cgroup and the leaf [Support.Layout] returns, before
// [OpenParent]. Writing a pid to cgroup.procs moves all its threads.
func MoveAll(from, to string) error {
	if err := os.Mkdir(to, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cgroup: move processes: %w", err)
	}
	for range 100 {
		pids, err := readProcs(from)
		if err != nil {
			return fmt.Errorf("cgroup: move processes: %w", err)
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			err := writeFile(filepath.Join(to, "cgroup.procs"), strconv.Itoa(pid))
			if err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("cgroup: move pid %d from %s: %w", pid, from, err)
			}
		}
	}
	return fmt.Errorf("cgroup: move processes: %s keeps getting new processes", from)
}

// checkV2 checks that dir is in a cgroup2 file system.
func checkV2(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s is not in a cgroup2 hierarchy (file system type %#x)", dir, st.Type)
	}
	return nil
}

// writeFile writes value to a cgroup interface file in one write, as the
// kernel wants it. The file is not created or truncated.
func writeFile(name, value string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readProcs reads a cgroup.procs file.
func readProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: bad pid %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
