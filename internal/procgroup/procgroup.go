// Package procgroup kills a child's process group without the risk of
// killing someone else's.
//
// kill(-pgid) after the group's leader has been reaped may reach a group
// that is not ours: the leader's pid, which is the group's id, is free
// again once no process of the group is left, and pids come round fast
// on a busy host (pid_max is 32768 by default; a test run or a site
// that starts php-cgi per request goes through them in minutes). While
// the leader is not yet reaped (a zombie at worst) its pid stays taken,
// so a kill then can only reach our group. A Group watches the leader
// with waitid(WNOWAIT), which reports its end without reaping it, and
// kills only until the caller says it is about to reap.
package procgroup

import (
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Group is a child that leads its own process group (started with
// SysProcAttr.Setpgid).
type Group struct {
	pid    int
	exited chan struct{}

	mu     sync.Mutex
	reaped bool
}

// Watch watches the group led by the child pid, which the caller
// started and will reap (exec.Cmd.Wait) only after calling Release.
func Watch(pid int) *Group {
	g := &Group{pid: pid, exited: make(chan struct{})}
	go func() {
		defer close(g.exited)
		for {
			var info unix.Siginfo
			if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
				return
			}
		}
	}()
	return g
}

// Exited is closed when the leader has ended; it is not reaped yet.
func (g *Group) Exited() <-chan struct{} { return g.exited }

// Kill sends SIGKILL to every process of the group, unless Release was
// called.
func (g *Group) Kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.reaped {
		syscall.Kill(-g.pid, syscall.SIGKILL)
	}
}

// Release ends the kills: the caller reaps the leader next. A Kill
// running concurrently finishes first.
func (g *Group) Release() {
	g.mu.Lock()
	g.reaped = true
	g.mu.Unlock()
}
