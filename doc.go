// Package mpm is a set of Apache-MPM-style building blocks for serving
// many people's websites from one machine, each site's code running as
// its own Unix user, without paying for that isolation in speed. It holds
// no code itself; this page explains the model and where each piece lives.
//
// # The model
//
// A root master binds the listeners, trims its capabilities to what
// spawning needs, and never reads a byte from a client. Unprivileged,
// chrooted multiplexers accept connections, read just enough to route
// them (the request head, or the TLS ClientHello's server name), and pass
// the live connection, with the bytes already read, to the pool of workers
// of the site's identity. Each worker runs as that identity, with no
// capabilities and no way back, and serves HTTP itself (static files, PHP
// through CGI or FastCGI as its own user). Pools grow with demand and
// shrink to nothing when a site is idle, so hundreds of mostly idle sites
// cost processes only for the busy ones.
//
// Go cannot fork without exec, so every process is the same binary
// re-executed in a role.
//
// # Packages
//
//   - [github.com/gompm/mpm/privdrop]: identities (uid, gid, groups,
//     chroot, nice, umask, rlimits) and the policy that refuses root and
//     system ids; trimming a process to a set of capabilities; dropping a
//     process to an identity on every OS thread and verifying it from
//     /proc; starting a child that ends up as an identity.
//   - [github.com/gompm/mpm/fdpass]: passing descriptors and live
//     connections between processes over unix sockets, with the bytes
//     already read and their metadata, and a net.Listener over a
//     dispatch socket so that http.Server.Serve works unchanged.
//   - [github.com/gompm/mpm/vhostroute]: Host and SNI normalization, the
//     routing table (exact names, wildcards, per-listener scopes and
//     defaults), a bounded request-head reader whose every failure maps
//     to an HTTP status, a TLS ClientHello peek, and a PROXY protocol
//     (v1 and v2) header reader with the trusted-proxy ranges it needs.
//   - [github.com/gompm/mpm/prefork]: the master/worker process model:
//     roles, re-exec, spawning as an identity with only the files it
//     should hold, children that die with the master, reaping, signals
//     and graceful stop.
//   - [github.com/gompm/mpm/pool]: per-identity pools on top of prefork,
//     sized by demand (on demand from zero), with recycling, idle and
//     expire timeouts, crash back-off, a per-pool scoreboard and stats.
//   - examples/mpmd: the reference daemon built from all of the above, an
//     mpm-itk / mpm-peruser equivalent serving static files and PHP (CGI
//     or FastCGI) as each site's user, with TLS.
//
// A package appears in the module when it has real code; the lower ones
// never import the higher ones.
//
// # Platform
//
// Linux only, built with CGO_ENABLED=0: without cgo, Go can run a system
// call on every thread of the process (syscall.AllThreadsSyscall), which a
// privilege drop requires, and the binaries are static, so they run
// inside an empty chroot.
package mpm
