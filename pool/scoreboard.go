package pool

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// State is what a worker is doing, as it reports on the scoreboard.
type State uint32

const (
	Empty    State = iota // no worker in the slot
	Starting              // spawned, not yet ready
	Idle                  // waiting for a connection
	Busy                  // serving a connection
	Exiting               // finishing before it exits (recycled or asked to stop)
)

func (s State) String() string {
	switch s {
	case Empty:
		return "empty"
	case Starting:
		return "starting"
	case Idle:
		return "idle"
	case Busy:
		return "busy"
	case Exiting:
		return "exiting"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// The scoreboard is a shared memory file (memfd) of fixed-size slots, one
// per worker, like Apache's. A worker writes only its own slot; the master
// reads them all. Each slot is guarded by a sequence counter (a seqlock):
// the writer makes it odd, writes, makes it even; a reader retries while it
// is odd or changed, so it never sees a half-written slot. The file is one
// pool's: a worker of one pool has no handle on another pool's board.
const (
	slotSize = 256
	hostMax  = 96
	pathMax  = 120
)

// slot is the layout of one slot. Fields are accessed atomically or under
// the sequence counter; the layout is fixed because two processes share it.
type slot struct {
	seq      uint32
	state    uint32
	pid      uint32
	hostLen  uint32
	requests uint64
	since    int64 // unix nanoseconds of the last state change
	pathLen  uint32
	refused  uint32 // connections this worker answered 503
	host     [hostMax]byte
	path     [pathMax]byte
}

var _ = [1]struct{}{}[unsafe.Sizeof(slot{})-slotSize]

// SlotInfo is a copy of one slot.
type SlotInfo struct {
	Slot     int
	State    State
	PID      int
	Requests uint64
	Since    time.Time
	Host     string
	Path     string
	Refused  uint64 // connections the worker refused (503)
}

// scoreboard is a mapped board.
type scoreboard struct {
	file *os.File
	mem  []byte
	n    int
}

// newScoreboard creates a board of n slots in a fresh memfd, sealed at
// its size: the workers map it read-write and a worker runs a tenant's
// code, but none can shrink the file under the master's mapping (the
// master's next read would die of SIGBUS) or grow it.
func newScoreboard(name string, n int) (*scoreboard, error) {
	fd, err := unix.MemfdCreate("mpm-scoreboard-"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("pool %s: create scoreboard: %w", name, os.NewSyscallError("memfd_create", err))
	}
	f := os.NewFile(uintptr(fd), "scoreboard-"+name)
	if err := f.Truncate(int64(n * slotSize)); err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: size scoreboard to %d slots: %w", name, n, err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: seal scoreboard: %w", name, os.NewSyscallError("fcntl(F_ADD_SEALS)", err))
	}
	sb, err := mapScoreboard(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: %w", name, err)
	}
	return sb, nil
}

// mapScoreboard maps the board in f (created by newScoreboard).
func mapScoreboard(f *os.File) (*scoreboard, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("scoreboard: %w", err)
	}
	size := int(fi.Size())
	if size == 0 || size%slotSize != 0 {
		return nil, fmt.Errorf("scoreboard: size %d is not a whole number of %d-byte slots", size, slotSize)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("scoreboard: %w", os.NewSyscallError("mmap", err))
	}
	return &scoreboard{file: f, mem: mem, n: size / slotSize}, nil
}

func (sb *scoreboard) close() {
	unix.Munmap(sb.mem)
	sb.file.Close()
}

func (sb *scoreboard) slot(i int) *slot {
	return (*slot)(unsafe.Pointer(&sb.mem[i*slotSize]))
}

// write updates slot i under its sequence counter. host and path are
// kept when nil is passed for them.
func (sb *scoreboard) write(i int, st State, pid int, requests uint64, host, path *string) {
	s := sb.slot(i)
	seq := atomic.AddUint32(&s.seq, 1)
	if seq%2 == 0 { // a writer died mid-write; make it odd again
		atomic.AddUint32(&s.seq, 1)
	}
	atomic.StoreUint32(&s.state, uint32(st))
	atomic.StoreUint32(&s.pid, uint32(pid))
	atomic.StoreUint64(&s.requests, requests)
	atomic.StoreInt64(&s.since, time.Now().UnixNano())
	if host != nil {
		atomic.StoreUint32(&s.hostLen, uint32(copy(s.host[:], *host)))
	}
	if path != nil {
		atomic.StoreUint32(&s.pathLen, uint32(copy(s.path[:], *path)))
	}
	atomic.AddUint32(&s.seq, 1)
}

// read copies slot i, retrying while a writer is mid-write. A slot that
// stays mid-write (its writer died there) is returned as it is after a
// bounded number of tries.
func (sb *scoreboard) read(i int) SlotInfo {
	s := sb.slot(i)
	var out SlotInfo
	for try := 0; try < 1000; try++ {
		seq := atomic.LoadUint32(&s.seq)
		out = SlotInfo{
			Slot:     i,
			State:    State(atomic.LoadUint32(&s.state)),
			PID:      int(atomic.LoadUint32(&s.pid)),
			Requests: atomic.LoadUint64(&s.requests),
			Since:    time.Unix(0, atomic.LoadInt64(&s.since)),
			Refused:  uint64(atomic.LoadUint32(&s.refused)),
		}
		hl := min(int(atomic.LoadUint32(&s.hostLen)), hostMax)
		pl := min(int(atomic.LoadUint32(&s.pathLen)), pathMax)
		out.Host = string(s.host[:hl])
		out.Path = string(s.path[:pl])
		if seq%2 == 0 && atomic.LoadUint32(&s.seq) == seq {
			break
		}
	}
	return out
}

// refuse counts a refused connection in slot i.
func (sb *scoreboard) refuse(i int) {
	atomic.AddUint32(&sb.slot(i).refused, 1)
}

// reset empties slot i (the master does this when its worker is gone).
func (sb *scoreboard) reset(i int) {
	empty := ""
	sb.write(i, Empty, 0, 0, &empty, &empty)
	atomic.StoreUint32(&sb.slot(i).refused, 0)
}
