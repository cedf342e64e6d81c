// Package procstatus reads the identity and privilege fields of
// /proc/<pid>/status and /proc/<pid>/task/<tid>/status.
//
// Privilege changes on Linux are per thread; the only way to prove that a Go
// process (whose goroutines move between OS threads) really holds one
// identity is to read the status of every task. The standard library's own
// setuid tests do the same.
package procstatus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Status holds the fields of a task's status file that describe its
// identity and privileges.
type Status struct {
	TID        int       // the task (thread) id; for a process file, its pid
	Name       string    // Name: the command name
	Umask      uint32    // Umask: the file mode creation mask
	PPid       int       // PPid: the parent's pid
	TracerPid  int       // TracerPid: the process tracing this task, 0 when none
	UID        [4]uint32 // Uid: real, effective, saved, filesystem
	GID        [4]uint32 // Gid: real, effective, saved, filesystem
	Groups     []uint32  // Groups: supplementary groups, sorted
	CapInh     uint64    // CapInh
	CapPrm     uint64    // CapPrm
	CapEff     uint64    // CapEff
	CapBnd     uint64    // CapBnd
	CapAmb     uint64    // CapAmb
	NoNewPrivs bool      // NoNewPrivs: 1
	Seccomp    int       // Seccomp mode
	Threads    int       // Threads: the number of threads of the process
	VmRSSKiB   uint64    // VmRSS, in KiB (0 for kernel threads)
	// VoluntarySwitches is voluntary_ctxt_switches: how many times the
	// task gave up the CPU to wait. Summed over a process's threads, it
	// counts wake-ups.
	VoluntarySwitches uint64
}

// Parse reads a status file's content.
func Parse(r io.Reader) (Status, error) {
	var s Status
	seen := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		v := strings.TrimSpace(string(val))
		var err error
		switch string(key) {
		case "Name":
			s.Name = v
		case "Umask":
			var u uint64
			u, err = strconv.ParseUint(v, 8, 32)
			s.Umask = uint32(u)
		case "Pid":
			s.TID, err = strconv.Atoi(v)
		case "PPid":
			s.PPid, err = strconv.Atoi(v)
		case "TracerPid":
			s.TracerPid, err = strconv.Atoi(v)
		case "Uid":
			s.UID, err = parseIDs(v)
			seen++
		case "Gid":
			s.GID, err = parseIDs(v)
			seen++
		case "Groups":
			s.Groups, err = parseList(v)
		case "CapInh":
			s.CapInh, err = strconv.ParseUint(v, 16, 64)
		case "CapPrm":
			s.CapPrm, err = strconv.ParseUint(v, 16, 64)
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(v, 16, 64)
		case "CapBnd":
			s.CapBnd, err = strconv.ParseUint(v, 16, 64)
		case "CapAmb":
			s.CapAmb, err = strconv.ParseUint(v, 16, 64)
		case "NoNewPrivs":
			s.NoNewPrivs = v == "1"
		case "Seccomp":
			s.Seccomp, err = strconv.Atoi(v)
		case "Threads":
			s.Threads, err = strconv.Atoi(v)
		case "voluntary_ctxt_switches":
			s.VoluntarySwitches, err = strconv.ParseUint(v, 10, 64)
		case "VmRSS":
			s.VmRSSKiB, err = strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64)
		}
		if err != nil {
			return s, fmt.Errorf("procstatus: field %s: %w", key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("procstatus: %w", err)
	}
	if seen != 2 {
		return s, errors.New("procstatus: no Uid or Gid line: not a status file")
	}
	return s, nil
}

func parseIDs(v string) ([4]uint32, error) {
	var ids [4]uint32
	f := strings.Fields(v)
	if len(f) != 4 {
		return ids, fmt.Errorf("want 4 ids, got %q", v)
	}
	for i, s := range f {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return ids, err
		}
		ids[i] = uint32(n)
	}
	return ids, nil
}

func parseList(v string) ([]uint32, error) {
	f := strings.Fields(v)
	out := make([]uint32, 0, len(f))
	for _, s := range f {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, err
		}
		out = append(out, uint32(n))
	}
	slices.Sort(out)
	return out, nil
}

// ReadFile parses the status file at path.
func ReadFile(path string) (Status, error) {
	f, err := os.Open(path)
	if err != nil {
		return Status{}, err
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Process returns the status of process pid (its main thread).
func Process(pid int) (Status, error) {
	return ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
}

// Tasks is an open handle on a process's task directory. It stays usable
// after the process changes its root directory, which is why privdrop opens
// one before a chroot and reads it after.
type Tasks struct {
	root *os.Root
}

// OpenTasks opens /proc/<pid>/task; pid 0 means the calling process.
func OpenTasks(pid int) (*Tasks, error) {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/task"
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Tasks{root: r}, nil
}

// Read returns the status of every task, in directory order. A task that
// exits between the listing and the read is left out.
func (t *Tasks) Read() ([]Status, error) {
	d, err := t.root.Open(".")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("procstatus: list tasks: %w", err)
	}
	out := make([]Status, 0, len(names))
	for _, name := range names {
		f, err := t.root.Open(name + "/status")
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread exited
		}
		if err != nil {
			return nil, err
		}
		s, err := Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", name, err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("procstatus: no tasks listed")
	}
	return out, nil
}

// Close releases the handle.
func (t *Tasks) Close() error { return t.root.Close() }

// Threads returns the status of every thread of process pid (0: self).
func Threads(pid int) ([]Status, error) {
	t, err := OpenTasks(pid)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Read()
}

// FDs lists the open descriptor numbers of process pid (0: self) with the
// target of each (a path, "socket:[ino]", "pipe:[ino]", "anon_inode:...").
// For pid 0 the descriptor used to read the directory is left out.
func FDs(pid int) (map[int]string, error) {
	dir := "/proc/self/fd"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/fd"
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(names))
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if pid == 0 && uintptr(fd) == d.Fd() {
			continue
		}
		target, err := os.Readlink(dir + "/" + n)
		if err != nil {
			continue // closed meanwhile
		}
		out[fd] = target
	}
	return out, nil
}

// Wakeups returns the voluntary context switches of every thread of
// process pid (0: self), summed, and the number of threads. A thread
// woken and put back to sleep inside a system call counts too, which is
// what makes it the measure of a thundering herd.
func Wakeups(pid int) (switches uint64, threads int, err error) {
	ts, err := Threads(pid)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range ts {
		switches += t.VoluntarySwitches
	}
	return switches, len(ts), nil
}

// clockTicks is the unit of the times in /proc/<pid>/stat (USER_HZ),
// which Linux fixes at 100 on every architecture it exports it to user
// space for.
const clockTicks = 100

// Stat is what the tests read from /proc/<pid>/stat.
type Stat struct {
	PPid int
	// CPU is the time the process has run, user and system together,
	// in all its threads (utime + stime).
	CPU time.Duration
}

// ReadStat reads /proc/<pid>/stat (0: self).
func ReadStat(pid int) (Stat, error) {
	p := "/proc/self/stat"
	if pid != 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return Stat{}, err
	}
	return parseStat(p, b)
}

func parseStat(p string, b []byte) (Stat, error) {
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses of its own: the fields resume after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("%s: no ')' after the command name", p)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("%s: %d fields after the command name, want at least 13", p, len(f))
	}
	var n [3]uint64
	for j, k := range []int{1, 11, 12} {
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("%s: field %d %q: %w", p, k+3, f[k], err)
		}
		n[j] = v
	}
	return Stat{PPid: int(n[0]), CPU: time.Duration(n[1]+n[2]) * time.Second / clockTicks}, nil
}

// Descendants returns the processes whose parent, or parent's parent and
// so on, is pid, in no particular order.
func Descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(p); err == nil {
			parent[p] = st.PPid
		}
	}
	var out []int
	for p := range parent {
		for a, n := parent[p], 0; a > 1 && n < 64; a, n = parent[a], n+1 {
			if a == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
