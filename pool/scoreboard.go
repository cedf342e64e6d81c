package pool

import (
	"fmt"
	"net/netip"
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
//
// After the slots come the pool's counters (see [Worker.Acquire]): a
// pool-wide value for each, and what each slot holds of it, so that the
// master can give back what a worker that died held.
//
//	header (64 bytes) | slots (n * slotSize) | totals (counters * 4, padded to 64) | held (n * counters * 4)
const (
	headerSize = 64
	slotSize   = 320
	hostMax    = 96
	pathMax    = 112
	boardMagic = 0x6d706d73 // "mpms"
)

// header is the start of the file: what a worker needs to map it.
type header struct {
	magic    uint32
	slots    uint32
	counters uint32
}

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
	conns    uint32 // connections the worker holds (outside the seqlock)
	active   uint32 // requests it is serving (outside the seqlock)
	host     [hostMax]byte
	path     [pathMax]byte
	// waits counts the requests that waited for a place under the
	// pool's MaxActive, and waitNanos the time they waited (outside the
	// seqlock, like conns).
	waits     uint64
	waitNanos uint64
	// client is the address of the request's client (host's and
	// path's), 16 bytes of IPv6 or IPv4-mapped address and a port;
	// clientOK says it is set.
	client     [16]byte
	clientPort uint16
	clientOK   uint8
	_          [29]byte // room to grow without moving the slots
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
	// Client is the address of the client of the request on Host and
	// Path (the PROXY header's, behind a balancer); invalid when unknown.
	Client  netip.AddrPort
	Refused uint64 // connections the worker refused (503)
	Conns   int    // connections it holds
	Active  int    // requests it is serving
	// QueueWaits counts the requests that waited for a place under the
	// pool's MaxActive; QueueWait is the time they waited in all.
	QueueWaits uint64
	QueueWait  time.Duration
}

// scoreboard is a mapped board.
type scoreboard struct {
	file     *os.File
	mem      []byte
	n        int // slots
	counters int
}

func boardSize(n, counters int) int {
	totals := (counters*4 + 63) &^ 63
	return headerSize + n*slotSize + totals + n*counters*4
}

// newScoreboard creates a board of n slots and the given number of
// counters in a fresh memfd, sealed at its size: the workers map it
// read-write and a worker runs a tenant's code, but none can shrink the
// file under the master's mapping (the master's next read would die of
// SIGBUS) or grow it.
func newScoreboard(name string, n, counters int) (*scoreboard, error) {
	fd, err := unix.MemfdCreate("mpm-scoreboard-"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("pool %s: create scoreboard: %w", name, os.NewSyscallError("memfd_create", err))
	}
	f := os.NewFile(uintptr(fd), "scoreboard-"+name)
	if err := f.Truncate(int64(boardSize(n, counters))); err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: size scoreboard to %d slots: %w", name, n, err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: seal scoreboard: %w", name, os.NewSyscallError("fcntl(F_ADD_SEALS)", err))
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, boardSize(n, counters), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: scoreboard: %w", name, os.NewSyscallError("mmap", err))
	}
	h := (*header)(unsafe.Pointer(&mem[0]))
	h.magic, h.slots, h.counters = boardMagic, uint32(n), uint32(counters)
	// The master keeps its own idea of the layout: it never reads the
	// header, which a worker can scribble on.
	return &scoreboard{file: f, mem: mem, n: n, counters: counters}, nil
}

// mapScoreboard maps the board in f (created by newScoreboard), as a
// worker: the layout is read from its header and checked against its
// size.
func mapScoreboard(f *os.File) (*scoreboard, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("scoreboard: %w", err)
	}
	size := int(fi.Size())
	if size < headerSize {
		return nil, fmt.Errorf("scoreboard: size %d is smaller than its header", size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("scoreboard: %w", os.NewSyscallError("mmap", err))
	}
	h := (*header)(unsafe.Pointer(&mem[0]))
	n, counters := int(atomic.LoadUint32(&h.slots)), int(atomic.LoadUint32(&h.counters))
	if atomic.LoadUint32(&h.magic) != boardMagic || n <= 0 || n > 1<<16 || counters < 0 || counters > 1<<16 || boardSize(n, counters) != size {
		unix.Munmap(mem)
		return nil, fmt.Errorf("scoreboard: size %d does not fit its header (%d slots, %d counters)", size, n, counters)
	}
	return &scoreboard{file: f, mem: mem, n: n, counters: counters}, nil
}

func (sb *scoreboard) close() {
	unix.Munmap(sb.mem)
	sb.file.Close()
}

func (sb *scoreboard) slot(i int) *slot {
	return (*slot)(unsafe.Pointer(&sb.mem[headerSize+i*slotSize]))
}

// total is the pool-wide value of counter c.
func (sb *scoreboard) total(c int) *int32 {
	return (*int32)(unsafe.Pointer(&sb.mem[headerSize+sb.n*slotSize+c*4]))
}

// held is what slot i holds of counter c.
func (sb *scoreboard) held(i, c int) *int32 {
	totals := (sb.counters*4 + 63) &^ 63
	return (*int32)(unsafe.Pointer(&sb.mem[headerSize+sb.n*slotSize+totals+(i*sb.counters+c)*4]))
}

// acquire takes one of counter c for slot i if the pool-wide value is
// below max (no limit when max <= 0), and reports whether it did. What
// the slot holds is counted first, so that a worker that dies between the
// two steps is given back at most one more than it took.
func (sb *scoreboard) acquire(i, c, max int) bool {
	atomic.AddInt32(sb.held(i, c), 1)
	t := sb.total(c)
	for {
		cur := atomic.LoadInt32(t)
		if max > 0 && int(cur) >= max {
			atomic.AddInt32(sb.held(i, c), -1)
			return false
		}
		if atomic.CompareAndSwapInt32(t, cur, cur+1) {
			return true
		}
	}
}

// release gives back one of counter c that slot i took.
func (sb *scoreboard) release(i, c int) {
	atomic.AddInt32(sb.total(c), -1)
	atomic.AddInt32(sb.held(i, c), -1)
}

// reclaim gives back everything slot i holds (its worker has ended). The
// values may have been scribbled on by a worker of this pool: the total
// never goes below zero.
func (sb *scoreboard) reclaim(i int) {
	for c := range sb.counters {
		h := atomic.SwapInt32(sb.held(i, c), 0)
		if h <= 0 {
			continue
		}
		t := sb.total(c)
		for {
			cur := atomic.LoadInt32(t)
			if atomic.CompareAndSwapInt32(t, cur, max(cur-h, 0)) {
				break
			}
		}
	}
}

// value is the pool-wide value of counter c (0 or more).
func (sb *scoreboard) value(c int) int {
	return max(int(atomic.LoadInt32(sb.total(c))), 0)
}

// write updates slot i under its sequence counter. host and path are
// kept when nil is passed for them; client is written with host.
func (sb *scoreboard) write(i int, st State, pid int, requests uint64, host, path *string, client netip.AddrPort) {
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
		// Plain stores under the seqlock, as host's bytes: a reader
		// keeps what it copied only from an even, unchanged sequence.
		if client.IsValid() {
			s.client = client.Addr().As16()
			s.clientPort = client.Port()
			s.clientOK = 1
		} else {
			s.clientOK = 0
		}
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
			Slot:       i,
			State:      State(atomic.LoadUint32(&s.state)),
			PID:        int(atomic.LoadUint32(&s.pid)),
			Requests:   atomic.LoadUint64(&s.requests),
			Since:      time.Unix(0, atomic.LoadInt64(&s.since)),
			Refused:    uint64(atomic.LoadUint32(&s.refused)),
			Conns:      int(atomic.LoadUint32(&s.conns)),
			Active:     int(atomic.LoadUint32(&s.active)),
			QueueWaits: atomic.LoadUint64(&s.waits),
			QueueWait:  time.Duration(atomic.LoadUint64(&s.waitNanos)),
		}
		hl := min(int(atomic.LoadUint32(&s.hostLen)), hostMax)
		pl := min(int(atomic.LoadUint32(&s.pathLen)), pathMax)
		out.Host = string(s.host[:hl])
		out.Path = string(s.path[:pl])
		out.Client = netip.AddrPort{}
		if s.clientOK == 1 {
			out.Client = netip.AddrPortFrom(netip.AddrFrom16(s.client).Unmap(), s.clientPort)
		}
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

// waited counts a request of slot i that waited d for a place.
func (sb *scoreboard) waited(i int, d time.Duration) {
	s := sb.slot(i)
	atomic.AddUint64(&s.waits, 1)
	atomic.AddUint64(&s.waitNanos, uint64(max(d, 0)))
}

// reset empties slot i (the master does this when its worker is gone).
func (sb *scoreboard) reset(i int) {
	empty := ""
	sb.write(i, Empty, 0, 0, &empty, &empty, netip.AddrPort{})
	s := sb.slot(i)
	atomic.StoreUint32(&s.refused, 0)
	atomic.StoreUint32(&s.conns, 0)
	atomic.StoreUint32(&s.active, 0)
	atomic.StoreUint64(&s.waits, 0)
	atomic.StoreUint64(&s.waitNanos, 0)
	sb.reclaim(i)
}

// add changes the counter at p (a slot's conns or active) by d.
func add(p *uint32, d int) { atomic.AddUint32(p, uint32(int32(d))) }
