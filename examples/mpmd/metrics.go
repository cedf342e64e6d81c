package main

import (
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/pool"
)

// snapshot is what the master tells the status process, which renders it
// as the status page (text and JSON) and as Prometheus metrics: one
// gathering, three views.
type snapshot struct {
	Generation     int       // the current generation (1 at start, one more per reload)
	Started        time.Time // when the master started
	Reloads        uint64    // reloads that started a new generation
	ReloadFailures uint64    // reloads refused (bad file) or failed to start
	// Landlock is the kernel's Landlock ABI, or why there is none
	// ("unavailable: ..."): each site's files are then guarded by Unix
	// permissions alone.
	Landlock string
	Pools    []poolSnapshot
}

// poolSnapshot is one identity's pool: its stats summed over the
// generations that have workers (a reload's old workers finish theirs
// under the same identity), its counters carried over from ended
// generations, so that they only grow for the master's life.
type poolSnapshot struct {
	pool.Stats
	PHPProcesses int // php-cgi and PHP-FPM processes running as the identity
	// Cgroup is the identity's cgroup usage and limits, where it has a
	// group.
	Cgroup *cgroupUsage `json:",omitempty"`
}

// snapshot gathers the daemon's facts and every identity's pool stats.
func (m *master) snapshot() snapshot {
	m.mu.Lock()
	s := snapshot{Started: m.started, Reloads: m.reloads, ReloadFailures: m.reloadFailures}
	if m.cur != nil {
		s.Generation = m.cur.n
	}
	byName := map[string]*poolSnapshot{}
	get := func(name string) *poolSnapshot {
		p := byName[name]
		if p == nil {
			p = &poolSnapshot{Stats: pool.Stats{Name: name}}
			byName[name] = p
		}
		return p
	}
	for name, past := range m.past {
		get(name).AddCounters(past)
	}
	uids := map[uint32]string{}
	for _, g := range m.live {
		for i, p := range g.pools {
			st := p.Stats()
			ps := get(st.Name)
			ps.Add(st)
			uids[g.uids[i]] = st.Name
		}
	}
	m.mu.Unlock()
	if m.root {
		// Every identity has a uid of its own (the configuration
		// refuses two on one uid); not as root, every site runs as the
		// master's uid and one count would be every identity's.
		for name, n := range phpProcesses(uids) {
			get(name).PHPProcesses = n
		}
	}
	for _, p := range byName {
		p.Cgroup = m.cgroups.usage(p.Name)
		s.Pools = append(s.Pools, *p)
	}
	s.Landlock = m.landlock
	slices.SortFunc(s.Pools, func(a, b poolSnapshot) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// phpProcesses counts, for each uid of uids, the processes of that real
// uid whose command name starts with "php" (php-cgi, php-fpm8.2). A
// tenant can name its own processes anything, and so only change its own
// count.
func phpProcesses(uids map[uint32]string) map[string]int {
	out := map[string]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procstatus.Process(pid)
		if err != nil {
			continue // ended meanwhile
		}
		if name, ok := uids[st.UID[0]]; ok && strings.HasPrefix(st.Name, "php") {
			out[name]++
		}
	}
	return out
}

// buildInfo is what the binary says of its build.
func buildInfo() (version, revision string) {
	version, revision = "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return version, revision
}

// writeMetrics writes s in the Prometheus text format.
func writeMetrics(w io.Writer, s snapshot, now time.Time) error {
	p := newPromWriter(w)
	version, revision := buildInfo()
	p.family("mpmd_build_info", "gauge", "Always 1; the labels say which mpmd runs.")
	p.sample("mpmd_build_info", 1, "version", version, "revision", revision, "goversion", runtime.Version())
	p.family("mpmd_generation", "gauge", "The running configuration's generation: 1 at start, one more for each reload.")
	p.sample("mpmd_generation", float64(s.Generation))
	p.family("mpmd_uptime_seconds", "gauge", "Seconds since the master started.")
	p.sample("mpmd_uptime_seconds", now.Sub(s.Started).Seconds())
	p.family("mpmd_reloads_total", "counter", "Reloads (SIGHUP) that started a new generation.")
	p.sample("mpmd_reloads_total", float64(s.Reloads))
	p.family("mpmd_reload_failures_total", "counter", "Reloads refused or failed; the previous configuration kept running.")
	p.sample("mpmd_reload_failures_total", float64(s.ReloadFailures))

	p.family("mpmd_workers", "gauge", "Worker processes of the identity, by state.")
	for _, ps := range s.Pools {
		for _, st := range []struct {
			state string
			n     int
		}{{"starting", ps.Starting}, {"idle", ps.Idle}, {"busy", ps.Busy}, {"exiting", ps.Exiting}} {
			p.sample("mpmd_workers", float64(st.n), "identity", ps.Name, "state", st.state)
		}
	}
	perPool := []struct {
		name, typ, help string
		v               func(poolSnapshot) float64
	}{
		{"mpmd_worker_spawns_total", "counter", "Worker processes started.", func(s poolSnapshot) float64 { return float64(s.Spawned) }},
		{"mpmd_worker_retirements_total", "counter", "Workers retired by the pool (idle, or a reload).", func(s poolSnapshot) float64 { return float64(s.Retired) }},
		{"mpmd_worker_kills_total", "counter", "Workers killed (stuck past expire_timeout, or slow to stop).", func(s poolSnapshot) float64 { return float64(s.Killed) }},
		{"mpmd_worker_crashes_total", "counter", "Workers that ended without being asked to.", func(s poolSnapshot) float64 { return float64(s.Crashed) }},
		{"mpmd_worker_recycles_total", "counter", "Workers replaced after max_requests.", func(s poolSnapshot) float64 { return float64(s.Recycled) }},
		{"mpmd_requests_total", "counter", "Requests the identity's workers served.", func(s poolSnapshot) float64 { return float64(s.Served) }},
		{"mpmd_refused_total", "counter", "Connections and requests the identity's workers answered 503 (no place under max within queue_timeout, max_clients, a connection that waited too long for a worker).", func(s poolSnapshot) float64 { return float64(s.Refused) }},
		{"mpmd_queue_waits_total", "counter", "Requests that waited for a place under the identity's max (served or refused in the end).", func(s poolSnapshot) float64 { return float64(s.QueueWaits) }},
		{"mpmd_queue_wait_seconds_total", "counter", "Time those requests waited, in all.", func(s poolSnapshot) float64 { return s.QueueWait.Seconds() }},
		{"mpmd_connections", "gauge", "Connections the identity's workers hold.", func(s poolSnapshot) float64 { return float64(s.Conns) }},
		{"mpmd_requests_in_progress", "gauge", "Requests the identity's workers are serving.", func(s poolSnapshot) float64 { return float64(s.Active) }},
		{"mpmd_php_processes", "gauge", "php-cgi and PHP-FPM processes running as the identity (0 when mpmd is not root).", func(s poolSnapshot) float64 { return float64(s.PHPProcesses) }},
	}
	for _, f := range perPool {
		p.family(f.name, f.typ, f.help)
		for _, ps := range s.Pools {
			p.sample(f.name, f.v(ps), "identity", ps.Name)
		}
	}
	// The identity's cgroup, where it has one: CPU always (cpu.stat),
	// memory only where the memory controller reaches the group.
	p.family("mpmd_cgroup_cpu_seconds_total", "counter", "CPU time of every process of the identity's cgroup, user and system.")
	for _, ps := range s.Pools {
		if ps.Cgroup != nil {
			p.sample("mpmd_cgroup_cpu_seconds_total", ps.Cgroup.CPUSeconds, "identity", ps.Name)
		}
	}
	p.family("mpmd_cgroup_memory_bytes", "gauge", "Memory of the identity's cgroup (memory.current), where the memory controller reaches it.")
	for _, ps := range s.Pools {
		if ps.Cgroup != nil && ps.Cgroup.MemoryBytes != nil {
			p.sample("mpmd_cgroup_memory_bytes", float64(*ps.Cgroup.MemoryBytes), "identity", ps.Name)
		}
	}
	abi := 0.0
	if n, err := strconv.Atoi(strings.TrimPrefix(s.Landlock, "ABI ")); err == nil {
		abi = float64(n)
	}
	p.family("mpmd_landlock_abi", "gauge", "The kernel's Landlock ABI the sites are confined with; 0: none, each site's files are guarded by Unix permissions alone.")
	p.sample("mpmd_landlock_abi", abi)
	return p.flush()
}
