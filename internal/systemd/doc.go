// Package systemd speaks the two small protocols a daemon shares with
// systemd, by hand: readiness notification (sd_notify(3)) and socket
// activation (sd_listen_fds(3)). Neither needs libsystemd or a library:
// the first is one datagram, the second is three environment variables
// and descriptors from 3 on.
//
// # Notification
//
// With Type=notify (or Type=notify-reload) in the unit, systemd starts
// the daemon with NOTIFY_SOCKET, the path of a datagram socket (or an
// abstract name, "@..."), and waits for "READY=1" on it before it counts
// the service as started. [Notify] sends any "KEY=value" lines; [Ready],
// [Reloading], [Stopping], [Status] and [Watchdog] send the usual ones.
// Without NOTIFY_SOCKET they do nothing, so the daemon calls them
// unconditionally.
//
// For Type=notify-reload, systemctl reload sends SIGHUP (ReloadSignal=)
// and waits for "RELOADING=1" and then "READY=1". systemd 253 and later
// want MONOTONIC_USEC= with RELOADING=1, the CLOCK_MONOTONIC time, to
// tell this reload from an older one; [Reloading] sends it.
//
//	[Service]
//	Type=notify-reload
//	NotifyAccess=main
//	ExecStart=/usr/sbin/mpmd -config /etc/mpmd.toml
//	Delegate=yes            # see internal/cgroup
//	WatchdogSec=30s         # optional: send Watchdog() every 15 s
//
// NotifyAccess=main (the default for Type=notify) makes systemd take
// messages only from the main process: the master. Children must not inherit NOTIFY_SOCKET
// anyway; a worker that did could, under NotifyAccess=all, report the
// daemon stopped. [ChildEnv] removes NOTIFY_SOCKET, LISTEN_* and
// WATCHDOG_* from an environment, and the daemon builds its children's
// environment with it.
//
// # Socket activation
//
// With a socket unit, systemd binds the sockets itself and passes them
// to the service as descriptors 3, 4, ...: LISTEN_FDS says how many,
// LISTEN_FDNAMES names them (FileDescriptorName= in the socket unit),
// and LISTEN_PID says for which process, so that a child that inherited
// the variables does not take descriptors that are not its own.
//
//	# mpmd.socket
//	[Socket]
//	ListenStream=80
//	ListenStream=443
//	FileDescriptorName=web
//	NoDelay=true
//
// [Listeners] checks LISTEN_PID against the process's pid, takes the
// descriptors, marks them close-on-exec, reads each one's local address
// (getsockname) so that the daemon can match them against its configured
// addresses rather than trust their order, and unsets the three
// variables. The master then binds whatever configured address systemd
// did not pass, and hands the listeners to its multiplexers as it does
// its own: the multiplexers never see LISTEN_*.
//
// # Testing without systemd
//
// The tests play the manager's end: a datagram socket named by
// NOTIFY_SOCKET (at a path and in the abstract namespace), and a child
// started with listening sockets at fds 3, 4 and 5 and the LISTEN_*
// variables. LISTEN_PID must be the pid of the process that reads it,
// which a parent does not know before the fork: systemd sets it in the
// forked child, before the exec. os/exec cannot, so the test's child
// starts as a shell that sets LISTEN_PID=$$ and execs the test binary,
// which keeps the pid; the code under test runs unchanged.
package systemd
