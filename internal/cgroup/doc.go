// Package cgroup gives every identity a cgroup v2 group of its own: the
// processes of one site live in one group, which the master can limit
// (memory, CPU, number of tasks), measure, and kill as a whole, a
// grandchild that double-forked away from its parent included.
//
// # The model
//
// [Detect] reads where the cgroup2 hierarchy is mounted (from
// /proc/self/mountinfo), which cgroup this process is in (from
// /proc/self/cgroup), and which controllers that cgroup can hand down.
// [Support.Layout] decides where the daemon's groups go, [OpenParent]
// makes the parent and enables the controllers for it, and
// [Parent.Create] makes one [Group] per identity with its [Limits]:
//
//	s, err := cgroup.Detect()
//	parent, leaf := s.Layout()
//	if leaf != "" {
//		err = cgroup.MoveAll(s.SelfDir, leaf) // delegated: leave the service's own cgroup
//	}
//	p, err := cgroup.OpenParent(parent) // before the capability trim
//	g, err := p.Create("alice", cgroup.Limits{MemoryMax: 512 << 20, PidsMax: 256})
//	// start alice's processes in g (Group.Open and SysProcAttr.CgroupFD)
//	// ... later:
//	err = g.Kill()
//	err = g.Wait(ctx)
//	err = g.Remove()
//
// # Where the groups go
//
// In the root cgroup (no systemd, or a container with its own cgroup
// namespace, or a hybrid host whose v2 tree nobody manages) the parent is
// <mount>/mpmd. Under systemd the daemon runs in its service's cgroup and
// may create children only there, with Delegate=yes in the unit:
//
//	[Service]
//	Delegate=yes            # or: Delegate=cpu memory pids
//
// A cgroup that hands controllers to its children may hold no process
// itself (the "no internal processes" rule; only the root cgroup is
// exempt), so the daemon first moves itself (and whatever else is in the
// service cgroup) into <service>/supervisor, then uses
// <service>/identities as the parent:
//
//	mpmd.service/               subtree_control: cpu memory pids
//	├── supervisor/             the master, multiplexers, status process
//	└── identities/             subtree_control: cpu memory pids
//	    ├── alice/              memory.max, cpu.weight, cpu.max, pids.max
//	    └── bob/
//
// # Hybrid hosts: groups without limits
//
// A hybrid host (systemd's "hybrid" mode, older Debian/Ubuntu defaults,
// and the machine this package was written on: Linux 6.18 with cpu,
// cpuacct, cpuset, memory, devices, freezer, blkio and pids mounted as
// cgroup v1 and cgroup2 at /sys/fs/cgroup/unified) binds the controllers
// to the v1 hierarchies; a controller can be in only one hierarchy, so the
// v2 tree there offers none of cpu, memory or pids (here it offered only
// hugetlb). What v2 gives without any controller still works there and is
// what the daemon needs most: grouping, cgroup.procs, CLONE_INTO_CGROUP,
// cgroup.kill (Linux 5.14), cgroup.freeze, cgroup.events, and cpu.stat's
// usage_usec. Limits do not: [Parent.Create] lists each one it cannot
// enforce in [Group.NotEnforced] with the reason ("the memory controller
// is bound to cgroup v1 (mounted at /sys/fs/cgroup/memory)"), or, with
// Limits.Strict, refuses with [ErrNotEnforced]. A limit is never silently
// dropped.
//
// cgroup v1 is not supported, on purpose. A v1 group is one directory per
// controller hierarchy, each joined separately, so a child cannot be born
// in all of them (CLONE_INTO_CGROUP takes a v2 directory) and runs
// unlimited until the master has written its pid everywhere; v1 has no
// cgroup.kill, and its memory controller differs in files and semantics
// (memory.limit_in_bytes, memory.oom_control). On the machine above, the
// v1 memory hierarchy also holds the sandbox's own accounting group
// (memory:/process_api/...): groups made elsewhere in it would take the
// tenants out of it. systemd 256 and later refuse to boot in v1 or hybrid
// mode unless forced, and newer kernels make v1 memcg optional
// (CONFIG_MEMCG_V1). Pure v2 is where the limits are.
//
// # Permissions: what a trimmed master can do
//
// Found by experiment on Linux 6.18 and pinned by TestTrimmedMaster and
// TestUnprivilegedWriter:
//
//   - Moving a process needs write access, by file permission, to the
//     target group's cgroup.procs and to the cgroup.procs of the closest
//     common ancestor of the process's present cgroup and the target.
//     The uid of the process moved does not matter in v2 (v1 wanted the
//     writer's euid to match it). Since Linux 5.16 the check uses the
//     credentials of whoever opened cgroup.procs, not of the writer: a
//     process of any uid can move itself through a descriptor root
//     opened, and owning the target's cgroup.procs alone (chown) is not
//     enough while the common ancestor's is root's.
//   - Every file and directory the kernel makes in a cgroup belongs to
//     root, with the owner's write bit (cgroup.procs 0644, cgroup.kill
//     0200, directories 0755). A master that keeps uid 0 but has trimmed
//     its capabilities to SETUID SETGID SETPCAP KILL SYS_CHROOT CHOWN (no
//     DAC_OVERRIDE, no SYS_ADMIN) is their owner: it can create groups
//     under its parent, write limits, move processes of any uid into them
//     (from the root cgroup or its own), start children in them with
//     CLONE_INTO_CGROUP, kill, read and remove them.
//   - The exception is the cgroup2 root directory itself, which is mode
//     0555: making or removing <mount>/mpmd needs CAP_DAC_OVERRIDE. Call
//     [OpenParent] before the trim, and leave the parent in place (a
//     later run reuses it).
//   - A process that is not uid 0 needs the tree chowned to it: the
//     parent directory and its cgroup.procs (and, for moves from outside,
//     the common ancestor's), which is what systemd's Delegate= does for
//     a service with User=.
//
// # CLONE_INTO_CGROUP
//
// Writing a pid to cgroup.procs moves a process that is already running:
// between its start and the write it may have run, allocated and forked
// outside the group. clone3 with CLONE_INTO_CGROUP (Linux 5.7) starts the
// child in the group from its first instruction. Go's os/exec does it
// with SysProcAttr.UseCgroupFD and CgroupFD (Go 1.20); [Group.Open] gives
// the directory to pass. It works here, with a child that changes its
// credentials in the same spawn, and under the trimmed capabilities above
// (the kernel applies the same permission check as a cgroup.procs
// write). The master should prefer it and keep [Group.Add] for processes
// it did not start.
//
// # What a pure v2 host adds
//
// On a pure v2 host (or with Delegate=yes under systemd) cpu, memory and
// pids reach the groups and every limit is written and enforced:
// TestPidsMax (a fork loop stops at pids.max), TestMemoryMax (a process
// over memory.max is OOM-killed, one in a sibling group lives on) and
// TestCPULimits (cpu.max holds a spinning process to its quota) run there;
// on a hybrid host they skip with the reason, and TestNotEnforced checks
// that the limits are reported instead. Left for such a host: memory.high
// (throttle before the OOM killer), memory.swap.max (a limit without it
// lets a group swap), memory.oom.group (kill the whole group on OOM),
// io.max/io.weight, and watching memory.events and pids.events for the
// status page.
package cgroup
