package procstatus

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gompm/mpm/internal/testenv"
)

// A status file of a worker after a drop, abridged from Linux 6.1.
const sample = `Name:	mpmd worker
Umask:	0027
State:	S (sleeping)
Tgid:	4242
Pid:	4245
PPid:	4200
Uid:	2001	2001	2001	2001
Gid:	2002	2002	2002	2002
FDSize:	64
Groups:	2003 2002 
NStgid:	4242
VmRSS:	    7424 kB
Threads:	6
CapInh:	0000000000000000
CapPrm:	0000000000000000
CapEff:	0000000000000000
CapBnd:	00000000000000c0
CapAmb:	0000000000000000
NoNewPrivs:	1
Seccomp:	0
`

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := Status{
		TID: 4245, Name: "mpmd worker", Umask: 0o027, PPid: 4200,
		UID: [4]uint32{2001, 2001, 2001, 2001}, GID: [4]uint32{2002, 2002, 2002, 2002},
		Groups: []uint32{2002, 2003}, CapBnd: 0xc0, NoNewPrivs: true, Threads: 6, VmRSSKiB: 7424,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not a status file": "hello\nworld\n",
		"short uid line":    "Uid:\t1 2 3\nGid:\t1 1 1 1\n",
		"bad capability":    "Uid:\t1 1 1 1\nGid:\t1 1 1 1\nCapEff:\tzz\n",
		"bad group":         "Uid:\t1 1 1 1\nGid:\t1 1 1 1\nGroups:\t1 x\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
}

// TestThreads: every locked goroutine is a thread of its own, and each
// shows up with this process's identity.
func TestThreads(t *testing.T) {
	const n = 6
	defer testenv.StartThreads(n, 0)()
	ts, err := Threads(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) < n+1 {
		t.Fatalf("Threads(0) = %d threads, want at least %d", len(ts), n+1)
	}
	seen := map[int]bool{}
	for _, s := range ts {
		if seen[s.TID] {
			t.Errorf("thread %d listed twice", s.TID)
		}
		seen[s.TID] = true
		if s.UID[1] != uint32(os.Geteuid()) {
			t.Errorf("thread %d: euid %d, want %d", s.TID, s.UID[1], os.Geteuid())
		}
	}
	if !seen[os.Getpid()] {
		t.Errorf("main thread %d not listed", os.Getpid())
	}
}

func TestFDs(t *testing.T) {
	before, err := FDs(0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	after, err := FDs(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before[fd]; ok {
		t.Fatalf("fd %d listed before it was opened", fd)
	}
	if after[fd] != "/dev/null" {
		t.Errorf("fd %d is %q, want /dev/null", fd, after[fd])
	}
	if len(after) != len(before)+1 {
		t.Errorf("opening one file changed the count from %d to %d", len(before), len(after))
	}
}

// BenchmarkThreads is the cost of reading every thread's status, which
// privdrop.Verify pays once per drop.
func BenchmarkThreads(b *testing.B) {
	for b.Loop() {
		if _, err := Threads(0); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process can give
	// itself with prctl(PR_SET_NAME).
	line := "4242 (evil) (x y) S 17 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 3 0 12345 1000000 300 18446744073709551615\n"
	st, err := parseStat("stat", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != 17 || st.CPU != 3800*time.Millisecond {
		t.Errorf("got %+v, want ppid 17 and 3.8s of CPU", st)
	}
	if _, err := parseStat("stat", []byte("4242 (short) S 1 2\n")); err == nil {
		t.Error("a short stat line was accepted")
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(0)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != os.Getppid() {
		t.Errorf("ppid %d, want %d", st.PPid, os.Getppid())
	}
	// Spin until this process has run for a measurable time.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if st, _ = ReadStat(0); st.CPU >= 20*time.Millisecond {
			return
		}
	}
	t.Errorf("CPU stayed at %v after 5s of spinning", st.CPU)
}
