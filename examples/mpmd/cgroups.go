package main

// cgroup v2 per identity (internal/cgroup): every process of a site, its
// workers, its php process (PHP-FPM) and what they start (php-cgi,
// FPM's children, whatever PHP runs), is born in the identity's group
// <parent>/<identity>, so the site can be limited, measured and killed
// as a whole. The master, the multiplexers and the status process stay
// where the master started (or, under systemd with Delegate=yes, in
// <service>/supervisor). Where cgroup2 is missing or not writable the
// master says so once and runs without groups.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/cgroup"
)

// cgroups holds the identities' groups for the master's life. A nil
// *cgroups is "no cgroups": every method is then a no-op.
type cgroups struct {
	log    *slog.Logger
	parent *cgroup.Parent

	mu     sync.Mutex
	groups map[string]*idGroup

	// shared is set while another master uses the same groups: the one
	// a binary upgrade replaces (until this master is ready) or replaced
	// (once it has handed over). The groups are then the other's to
	// empty and remove: a failed upgrade must not kill the serving
	// master's workers, nor a drained old master the new one's.
	shared atomic.Bool
}

// share says whether another master uses the groups too (see shared).
func (c *cgroups) share(on bool) {
	if c != nil {
		c.shared.Store(on)
	}
}

// idGroup is one identity's group and the generations that use it: a
// reload that keeps the identity keeps its group (with the new limits),
// and the group goes when the last generation using it has ended.
type idGroup struct {
	g    *cgroup.Group
	refs int
}

// emptyWait is how long a group whose last generation has ended may take
// to empty by itself before what is left in it is killed.
const emptyWait = 5 * time.Second

// openCgroups finds the cgroup2 hierarchy and makes the identities'
// parent. It runs before the master trims its capabilities: making the
// parent in the root cgroup needs CAP_DAC_OVERRIDE. It returns nil, with
// one warning, where cgroups cannot be used.
func openCgroups(log *slog.Logger, name string) *cgroups {
	s, err := cgroup.Detect()
	if err != nil {
		log.Warn("CGROUPS UNAVAILABLE: sites run without a cgroup of their own (no per-site limits, usage or group kill)", "err", err)
		return nil
	}
	parent, leaf := s.Layout()
	if leaf == "" {
		// In the root cgroup: <mount>/<cgroup_name>, this daemon's.
		parent = filepath.Join(filepath.Dir(parent), name)
	}
	if leaf != "" {
		// Not in the root cgroup: the cgroup is somebody else's unless
		// it was delegated to us (systemd marks Delegate=yes with this
		// attribute). Creating groups in it, or moving its processes,
		// would fight its manager.
		if _, err := unix.Getxattr(s.SelfDir, "trusted.delegate", nil); err != nil {
			log.Warn("CGROUPS UNAVAILABLE: mpmd is in a cgroup that was not delegated to it; sites run without a cgroup of their own (under systemd, set Delegate=yes)", "cgroup", s.SelfDir, "err", err)
			return nil
		}
		if err := cgroup.MoveAll(s.SelfDir, leaf); err != nil {
			log.Warn("CGROUPS UNAVAILABLE: sites run without a cgroup of their own", "err", err)
			return nil
		}
	}
	p, err := cgroup.OpenParent(parent)
	if err != nil {
		log.Warn("CGROUPS UNAVAILABLE: sites run without a cgroup of their own", "err", err)
		return nil
	}
	log.Info("cgroups", "parent", p.Dir(), "controllers", p.Controllers(), "host", s.String())
	for c, why := range p.Unavailable() {
		log.Warn("cgroup controller unavailable: limits that need it are not enforced", "controller", c, "reason", why)
	}
	return &cgroups{log: log, parent: p, groups: map[string]*idGroup{}}
}

// acquire creates (or keeps) the identity's group with limits l, for one
// more generation, and opens its directory for the generation's children
// to start in. Each limit the host cannot enforce is logged by name.
func (c *cgroups) acquire(name string, l cgroup.Limits) (*os.File, error) {
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.parent.Create(name, l)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", name, err)
	}
	for _, n := range g.NotEnforced {
		c.log.Error("LIMIT NOT ENFORCED", "identity", name, "limit", n.File, "value", n.Value, "reason", n.Reason)
	}
	f, err := g.Open()
	if err != nil {
		if c.groups[name] == nil {
			g.Remove()
		}
		return nil, fmt.Errorf("identity %s: %w", name, err)
	}
	ig := c.groups[name]
	if ig == nil {
		ig = &idGroup{}
		c.groups[name] = ig
	}
	ig.g = g // the same directory; its NotEnforced for the new limits
	ig.refs++
	return f, nil
}

// release ends one generation's use of the identity's group. When no
// generation uses it any more (the identity was removed by a reload, or
// the master stops), the group is removed once it is empty; a process
// still in it after emptyWait (a tenant's process that left its worker's
// process group) is killed first.
func (c *cgroups) release(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	ig := c.groups[name]
	if ig == nil {
		c.mu.Unlock()
		return
	}
	ig.refs--
	if ig.refs > 0 {
		c.mu.Unlock()
		return
	}
	if c.shared.Load() {
		delete(c.groups, name)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), emptyWait)
	waitErr := ig.g.Wait(ctx)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	if ig.refs > 0 || c.groups[name] != ig {
		return // a new generation took the group meanwhile
	}
	delete(c.groups, name)
	if waitErr != nil {
		procs, _ := ig.g.Procs()
		c.log.Warn("processes left in the group of an identity no generation runs; killing them", "identity", name, "pids", procs)
		if err := ig.g.Kill(); err != nil {
			c.log.Error("kill the identity's group", "identity", name, "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), emptyWait)
		ig.g.Wait(ctx)
		cancel()
	}
	if err := ig.g.Remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Error("remove the identity's group", "identity", name, "err", err)
	}
}

// cgroupUsage is what an identity's group used, for the status page.
type cgroupUsage struct {
	Group string // the group's directory
	// CPUSeconds is the CPU time of every process the group ever held,
	// user and system (cpu.stat usage_usec, known without the cpu
	// controller).
	CPUSeconds float64
	// MemoryBytes is memory.current; absent without the memory
	// controller.
	MemoryBytes *int64 `json:",omitempty"`
	// Processes is pids.current; absent without the pids controller.
	Processes *int64 `json:",omitempty"`
	// OOMKills counts the group's processes the OOM killer killed, and
	// PidsMaxHits the forks pids.max refused; absent without their
	// controllers.
	OOMKills    *int64 `json:",omitempty"`
	PidsMaxHits *int64 `json:",omitempty"`
	// NotEnforced lists the configured limits this host cannot enforce.
	NotEnforced []string `json:",omitempty"`
}

// usage reads the identity's group, or nil when it has none.
func (c *cgroups) usage(name string) *cgroupUsage {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	ig := c.groups[name]
	c.mu.Unlock()
	if ig == nil {
		return nil
	}
	st, err := ig.g.Stats()
	if err != nil {
		return nil
	}
	u := &cgroupUsage{Group: ig.g.Dir(), CPUSeconds: st.CPU.Seconds()}
	known := func(v int64) *int64 {
		if v == cgroup.Unknown {
			return nil
		}
		return &v
	}
	u.MemoryBytes, u.Processes = known(st.Memory), known(st.Pids)
	u.OOMKills, u.PidsMaxHits = known(st.OOMKills), known(st.PidsLimit)
	for _, n := range ig.g.NotEnforced {
		u.NotEnforced = append(u.NotEnforced, n.File+"="+n.Value)
	}
	return u
}
