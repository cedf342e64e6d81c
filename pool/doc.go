// Package pool keeps one pool of worker processes per identity, sized by
// demand, on top of package prefork: mpm-peruser's per-user pools with
// PHP-FPM's knobs and mpm-itk's lack of tuning.
//
// # Dispatch
//
// Each pool owns a SOCK_SEQPACKET socket pair. Senders (multiplexers)
// write to [Pool.Dispatch]; every worker of the pool reads from the other
// end, and the kernel hands each message to exactly one waiting worker,
// so idle workers take work without a dispatcher. What a message holds is
// the sender's and worker's business (mpmd passes connections with package
// fdpass); the pool only starts and stops the processes around it. The
// pool keeps the receiving end open itself, so a message queued while no
// worker runs waits for the next one instead of being lost, and it watches
// that end: a message waiting with no idle worker starts one at once. One
// epoll instance watches the queues of all the pools of a process, and a
// pool with no worker and none wanted does not tick: idle sites cost the
// master neither a thread nor a wake-up. That
// is how a pool with Min = 0 holds no process until its first connection.
// A sender that cannot queue within [Pool.QueueTimeout] should answer 503.
//
// Workers receive with fdpass.SharedFileSocket. It waits in an epoll
// instance of its own with EPOLLEXCLUSIVE, so a message wakes one idle
// worker; the Go runtime's poller (net.FileConn) would wake every idle
// worker of the pool for each message, and all but one would find nothing.
//
// # Sizing
//
// [Config] has peruser's and PHP-FPM's knobs: Min, MinSpare, MaxSpare,
// Max, MaxRequests (recycling), IdleTimeout (retire idle workers above
// Min), ExpireTimeout (kill a worker busy past it). The zero value is an
// on-demand pool: no worker until there is work, up to DefaultMax under
// load, back to none after DefaultIdleTimeout. A [Limit] shared by pools
// caps the workers of all of them together, so hundreds of mostly idle
// sites cost processes only for the busy ones and a burst on one site
// cannot take the machine.
//
// # Scoreboard
//
// Workers report their state (starting, idle, busy since when on which
// host and path, requests served) in a slot of a shared-memory scoreboard
// that only their own pool's workers can map, like Apache's scoreboard.
// The pool reads it to size itself and to build [Stats]. A worker calls
// [Join] from its role, then [Worker.Idle], [Worker.Busy] and
// [Worker.Done] as it goes; Done says when it has served MaxRequests and
// should exit to be replaced.
//
// # Failures
//
// A worker that dies unasked is counted as crashed and replaced. More than
// five crashes within ten seconds stop spawning for a back-off that
// doubles up to a minute (Stats.BackoffUntil), instead of a fork loop.
// Stopping the pool (the end of Run's context) lets in-flight work finish
// until StopTimeout, then kills what is left.
package pool
