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
// # Two models, and sizing
//
// With PerWorker 1 (the zero value) a worker serves one connection at a
// time, as Apache's prefork does: for code that is not safe to run
// concurrently. [Config] then has peruser's and PHP-FPM's knobs: Min,
// MinSpare, MaxSpare, Max, MaxRequests (recycling), IdleTimeout (retire
// idle workers above Min), ExpireTimeout (kill a worker busy past it). The
// zero value is an on-demand pool: no worker until there is work, up to
// DefaultMax under load, back to none after DefaultIdleTimeout.
//
// With PerWorker above 1 a worker serves that many connections at once, a
// goroutine each, as net/http does, and the pool runs a few workers, not
// one per connection: one on demand, another while every one keeps its
// CPU busy, up to Max (DefaultMaxConcurrent: the CPUs). Limits then count
// requests: MaxActive requests in progress over all the workers (more
// wait up to QueueTimeout, then 503), and the application's own
// pool-wide counters ([Worker.Acquire]) for limits per site. A request
// expires after ExpireTimeout; a worker that recycles or retires drains
// its connections while another takes its place.
//
// [Worker.Serve] is the serving loop of both models over an http.Server:
// the queue timeout, one connection at a time or many, MaxActive,
// expiry, recycling and a graceful end. A [Limit] shared by pools caps
// the workers of all of them together, so hundreds of mostly idle sites
// cost processes only for the busy ones and a burst on one site cannot
// take the machine.
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
// until StopTimeout, then kills what is left. [Pool.Retire] asks the
// workers to retire instead (a reload): they finish what they hold, gently
// (see prefork's Env.Retiring), while another generation takes the work.
package pool
