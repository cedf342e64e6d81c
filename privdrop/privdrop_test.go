package privdrop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, helpers)
}

// TestPrepareWithoutCapabilities: a process without the capabilities to
// start a child as another identity is told which ones it lacks. (As root,
// TestPrepareTrimmed checks the same in a trimmed child.)
func TestPrepareWithoutCapabilities(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("skipped as root: TestPrepareTrimmed covers it")
	}
	err := Prepare(exec.Command("true"), Identity{UID: 2001, GID: 2001, Chroot: "/srv/jail"})
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "cap_setuid") || !strings.Contains(err.Error(), "cap_sys_chroot") {
		t.Fatalf("Prepare as euid %d = %v, want ErrNotAllowed naming cap_setuid and cap_sys_chroot", os.Geteuid(), err)
	}
}

func TestPolicyCheck(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		id      Identity
		wantErr error    // nil: accepted
		msg     []string // substrings the error must contain
	}{
		{name: "ordinary", id: Identity{UID: 2001, GID: 2001, Groups: []uint32{2001, 2100}}},
		{name: "uid 0", id: Identity{UID: 0, GID: 2001}, wantErr: ErrRoot, msg: []string{"uid 0", "AllowRoot"}},
		{name: "gid 0", id: Identity{UID: 2001, GID: 0}, wantErr: ErrRoot, msg: []string{"gid 0"}},
		{name: "supplementary group 0", id: Identity{UID: 2001, GID: 2001, Groups: []uint32{0}}, wantErr: ErrRoot, msg: []string{"supplementary group 0"}},
		{name: "uid below default minimum", id: Identity{UID: 99, GID: 2001}, wantErr: ErrBelowMin, msg: []string{"uid 99", "minimum 100", "MinUID"}},
		{name: "gid below default minimum", id: Identity{UID: 2001, GID: 5}, wantErr: ErrBelowMin, msg: []string{"gid 5", "minimum 100", "MinGID"}},
		{name: "uid at default minimum", id: Identity{UID: 100, GID: 100}},
		{name: "raised minimum", policy: Policy{MinUID: 1000}, id: Identity{UID: 999, GID: 2001}, wantErr: ErrBelowMin, msg: []string{"uid 999", "minimum 1000"}},
		{name: "lowered minimum", policy: Policy{MinUID: 1, MinGID: 1}, id: Identity{UID: 33, GID: 33}},
		{name: "root allowed", policy: Policy{AllowRoot: true}, id: Identity{UID: 0, GID: 0}},
		{name: "nice out of range", id: Identity{UID: 2001, GID: 2001, Nice: 25}, msg: []string{"nice 25"}},
		{name: "umask with extra bits", id: Identity{UID: 2001, GID: 2001, Umask: 0o1022}, msg: []string{"umask 01022"}},
		{name: "named identity in message", id: Identity{Name: "alice", UID: 12, GID: 2001}, wantErr: ErrBelowMin, msg: []string{"alice(12:2001)", "uid 12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.id)
			if tt.wantErr == nil && len(tt.msg) == 0 {
				if err != nil {
					t.Fatalf("Check(%+v) = %v, want nil", tt.id, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%+v) = nil, want an error", tt.id)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Check(%+v) = %v, want it to wrap %v", tt.id, err, tt.wantErr)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Run("numeric user and group", func(t *testing.T) {
		uid := testenv.FreeID(t, 2901)
		id, err := Resolve("2901", "2901", Policy{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Identity{UID: uid, GID: uid}, id); diff != "" {
			t.Errorf("Resolve(2901, 2901) mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("numeric user needs a group", func(t *testing.T) {
		testenv.FreeID(t, 2902)
		_, err := Resolve("2902", "", Policy{})
		if err == nil || !strings.Contains(err.Error(), "a group must be given") || !strings.Contains(err.Error(), "2902") {
			t.Fatalf("Resolve(2902, \"\") = %v, want an error asking for a group", err)
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		_, err := Resolve("mpm-no-such-user", "", Policy{})
		if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), `"mpm-no-such-user"`) {
			t.Fatalf("Resolve(mpm-no-such-user) = %v, want ErrUnknown naming the user", err)
		}
	})
	t.Run("unknown group", func(t *testing.T) {
		_, err := Resolve("2903", "mpm-no-such-group", Policy{})
		if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), `"mpm-no-such-group"`) {
			t.Fatalf("Resolve(2903, mpm-no-such-group) = %v, want ErrUnknown naming the group", err)
		}
	})
	t.Run("root by name", func(t *testing.T) {
		_, err := Resolve("root", "", Policy{})
		if !errors.Is(err, ErrRoot) {
			t.Fatalf("Resolve(root) = %v, want ErrRoot", err)
		}
	})
	t.Run("root by number", func(t *testing.T) {
		_, err := Resolve("0", "2001", Policy{})
		if !errors.Is(err, ErrRoot) {
			t.Fatalf("Resolve(0) = %v, want ErrRoot", err)
		}
	})
	t.Run("system account below the minimum", func(t *testing.T) {
		u, err := user.LookupId("1")
		if err != nil {
			t.Skip("no account with uid 1 on this system")
		}
		_, err = Resolve(u.Username, "", Policy{})
		if !errors.Is(err, ErrBelowMin) || !strings.Contains(err.Error(), "uid 1 ") {
			t.Fatalf("Resolve(%s) = %v, want ErrBelowMin naming uid 1", u.Username, err)
		}
	})
	t.Run("known name", func(t *testing.T) {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Skip("no user nobody on this system")
		}
		id, err := Resolve("nobody", "", Policy{})
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != "nobody" || u.Uid != itoa(id.UID) || u.Gid != itoa(id.GID) {
			t.Errorf("Resolve(nobody) = %+v, want uid %s gid %s", id, u.Uid, u.Gid)
		}
		if len(id.Groups) == 0 || !slices.Contains(id.Groups, id.GID) {
			t.Errorf("Resolve(nobody) groups %v do not include its gid %d", id.Groups, id.GID)
		}
	})
}

func TestParseRlimitName(t *testing.T) {
	for _, name := range []string{"nofile", "NOFILE", "RLIMIT_NOFILE", "rlimit_nofile"} {
		r, err := ParseRlimitName(name)
		if err != nil || r != unix.RLIMIT_NOFILE {
			t.Errorf("ParseRlimitName(%q) = %d, %v; want RLIMIT_NOFILE", name, r, err)
		}
	}
	if got := RlimitName(unix.RLIMIT_NPROC); got != "nproc" {
		t.Errorf("RlimitName(RLIMIT_NPROC) = %q", got)
	}
	_, err := ParseRlimitName("files")
	if err == nil || !strings.Contains(err.Error(), `"files"`) || !strings.Contains(err.Error(), "nofile") {
		t.Errorf("ParseRlimitName(files) = %v, want an error naming it and listing the known names", err)
	}
}

func TestCheckJail(t *testing.T) {
	if err := CheckJail("relative/jail"); !errors.Is(err, ErrUnsafeJail) {
		t.Errorf("relative path: got %v, want ErrUnsafeJail", err)
	}
	dir := t.TempDir()
	// Directly in the sticky, root-owned temporary directory, so that the
	// link, not an ancestor owned by a non-root test user, is the fault.
	link := filepath.Join(os.TempDir(), fmt.Sprintf("mpm-jail-link-%d", os.Getpid()))
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	if err := CheckJail(link); !errors.Is(err, ErrUnsafeJail) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlink: got %v, want ErrUnsafeJail about the link", err)
	}
	if err := CheckJail(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("missing directory: got nil")
	}
	jail := filepath.Join(dir, "jail")
	if err := os.Mkdir(jail, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		// Not root: the directory is ours, which is exactly what a jail
		// must not be.
		if err := CheckJail(jail); !errors.Is(err, ErrUnsafeJail) || !strings.Contains(err.Error(), "not root") {
			t.Errorf("jail owned by uid %d: got %v, want ErrUnsafeJail about the owner", os.Geteuid(), err)
		}
		return
	}
	if err := CheckJail(jail); err != nil {
		t.Errorf("root-owned 0755 jail below a root-owned 0700 dir and sticky /tmp: %v", err)
	}
	if err := os.Chmod(jail, 0o775); err != nil {
		t.Fatal(err)
	}
	if err := CheckJail(jail); !errors.Is(err, ErrUnsafeJail) || !strings.Contains(err.Error(), "writable") {
		t.Errorf("group-writable jail: got %v, want ErrUnsafeJail about the mode", err)
	}
	os.Chmod(jail, 0o755)
	if err := os.Chown(jail, 2904, 2904); err != nil {
		t.Fatal(err)
	}
	if err := CheckJail(jail); !errors.Is(err, ErrUnsafeJail) || !strings.Contains(err.Error(), "uid 2904") {
		t.Errorf("jail owned by 2904: got %v, want ErrUnsafeJail naming the owner", err)
	}
}

// TestCheckThreads shows that verification looks at every thread, not
// just the one it runs on: a single differing thread is reported by id
// and field.
func TestCheckThreads(t *testing.T) {
	id := Identity{UID: 2001, GID: 2002, Groups: []uint32{2003, 2002}}
	good := procstatus.Status{
		UID: [4]uint32{2001, 2001, 2001, 2001}, GID: [4]uint32{2002, 2002, 2002, 2002},
		Groups: []uint32{2002, 2003}, NoNewPrivs: true,
	}
	with := func(tid int, f func(*procstatus.Status)) procstatus.Status {
		s := good
		s.TID = tid
		if f != nil {
			f(&s)
		}
		return s
	}
	tests := []struct {
		name string
		bad  func(*procstatus.Status)
		want *VerifyError
	}{
		{"all good", nil, nil},
		{"saved uid", func(s *procstatus.Status) { s.UID[2] = 0 }, &VerifyError{TID: 12, Field: "Uid", Got: "2001 2001 0 2001", Want: "2001 2001 2001 2001"}},
		{"fs gid", func(s *procstatus.Status) { s.GID[3] = 0 }, &VerifyError{TID: 12, Field: "Gid", Got: "2002 2002 2002 0", Want: "2002 2002 2002 2002"}},
		{"extra group", func(s *procstatus.Status) { s.Groups = []uint32{0, 2002, 2003} }, &VerifyError{TID: 12, Field: "Groups", Got: "0 2002 2003", Want: "2002 2003"}},
		{"bounding set", func(s *procstatus.Status) { s.CapBnd = 1 << 7 }, &VerifyError{TID: 12, Field: "CapBnd", Got: "0000000000000080 (cap_setuid)", Want: capHex(0)}},
		{"ambient set", func(s *procstatus.Status) { s.CapAmb = 1 << 18 }, &VerifyError{TID: 12, Field: "CapAmb", Got: "0000000000040000 (cap_sys_chroot)", Want: capHex(0)}},
		{"no_new_privs", func(s *procstatus.Status) { s.NoNewPrivs = false }, &VerifyError{TID: 12, Field: "NoNewPrivs", Got: "0", Want: "1"}},
		{"traced", func(s *procstatus.Status) { s.TracerPid = 4242 }, &VerifyError{TID: 12, Field: "TracerPid", Got: "4242", Want: "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			threads := []procstatus.Status{with(10, nil), with(11, nil), with(12, tt.bad), with(13, nil)}
			err := checkThreads(threads, id)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("checkThreads = %v, want nil", err)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("checkThreads = %v, want a *VerifyError", err)
			}
			if diff := cmp.Diff(tt.want, ve); diff != "" {
				t.Errorf("VerifyError mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyCurrentProcess runs Verify on this (undropped) test process:
// it must fail, and name a thread of this process.
func TestVerifyCurrentProcess(t *testing.T) {
	err := Verify(Identity{UID: 2905, GID: 2905})
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("Verify = %v, want a *VerifyError", err)
	}
	if _, serr := os.Stat(filepath.Join("/proc/self/task", itoa(uint32(ve.TID)))); serr != nil {
		t.Errorf("VerifyError names thread %d, which is not a thread of this process: %v", ve.TID, serr)
	}
}

func TestDropRefusesRoot(t *testing.T) {
	for _, id := range []Identity{{UID: 0, GID: 2001}, {UID: 2001, GID: 0}} {
		if err := Drop(id); !errors.Is(err, ErrRoot) {
			t.Errorf("Drop(%v) = %v, want ErrRoot", id, err)
		}
		if err := Prepare(exec.Command("true"), id); !errors.Is(err, ErrRoot) {
			t.Errorf("Prepare(%v) = %v, want ErrRoot", id, err)
		}
	}
}

func TestCompleteNotPrepared(t *testing.T) {
	t.Setenv(EnvIdentity, "")
	os.Unsetenv(EnvIdentity)
	if _, err := Complete(); !errors.Is(err, ErrNotPrepared) {
		t.Fatalf("Complete() = %v, want ErrNotPrepared", err)
	}
	t.Setenv(EnvIdentity, "{not json")
	if _, err := Complete(); err == nil || !strings.Contains(err.Error(), "{not json") {
		t.Fatalf("Complete() with a bad %s = %v, want an error quoting it", EnvIdentity, err)
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
