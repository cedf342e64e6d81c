package pool

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// queueWatch tells pools that a message arrived on their dispatch
// queues. One epoll instance and one goroutine serve every pool of the
// process: a host with hundreds of mostly idle sites has hundreds of
// pools, and a poll loop per pool (a thread each, waking a few times a
// second) cost the idle master 110 threads and 3-5 % of a CPU with 100.
//
// Each receiving end is watched edge-triggered: an event is a new
// message, so a message that waits while every worker is busy does not
// wake the watcher again and again; the pool's own tick looks after it.
// The runtime's poller cannot be used: it needs the socket non-blocking,
// and that flag belongs to the open file description every worker shares
// (see fdpass.SharedFileSocket).
type queueWatch struct {
	mu    sync.Mutex
	users int // pools watching; the instance closes when none are left
	epfd  int
	evfd  int // wakes the goroutine to notice that it should end
	pools map[int32]*Pool
}

var watch queueWatch

// add starts watching p's dispatch queue.
func (w *queueWatch) add(p *Pool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.users == 0 {
		if err := w.open(); err != nil {
			return err
		}
	}
	fd := p.recvFD()
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}); err != nil {
		if w.users == 0 {
			w.closeLocked()
			w.epfd, w.evfd = -1, -1
		}
		return fmt.Errorf("pool %s: watch the dispatch queue: %w", p.cfg.Name, os.NewSyscallError("epoll_ctl", err))
	}
	w.pools[int32(fd)] = p
	w.users++
	return nil
}

// remove stops watching p; the last pool to go ends the goroutine.
func (w *queueWatch) remove(p *Pool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fd := p.recvFD()
	if w.pools[int32(fd)] != p {
		return
	}
	unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	delete(w.pools, int32(fd))
	if w.users--; w.users == 0 {
		w.closeLocked()
		w.epfd, w.evfd = -1, -1
	}
}

func (w *queueWatch) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	w.epfd, w.evfd, w.pools = epfd, evfd, map[int32]*Pool{}
	go w.run(epfd, evfd)
	return nil
}

// closeLocked tells the goroutine to end; it closes its instance itself,
// so that nothing waits here, under mu, for a goroutine that may want mu.
func (w *queueWatch) closeLocked() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.evfd, one[:])
	w.pools = nil
}

func (w *queueWatch) run(epfd, evfd int) {
	defer unix.Close(epfd)
	defer unix.Close(evfd)
	events := make([]unix.EpollEvent, 64)
	for {
		// A blocking system call on a thread of its own; with nothing
		// arriving it never returns.
		n, err := unix.EpollWait(epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == evfd {
				return
			}
		}
		var wake []*Pool
		w.mu.Lock()
		if w.epfd == epfd { // else a later instance has the map
			for _, ev := range events[:n] {
				if p := w.pools[ev.Fd]; p != nil {
					wake = append(wake, p)
				}
			}
		}
		w.mu.Unlock()
		for _, p := range wake {
			p.poke()
		}
	}
}
