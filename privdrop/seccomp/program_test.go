package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The test's own account of Default, written apart from Default so that a
// call dropped from (or added to) either shows up as a difference.
var (
	wantEPERM = []string{
		"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd",
		"bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
		"io_uring_setup", "io_uring_enter", "io_uring_register",
		"mount", "umount2", "pivot_root", "unshare", "setns",
		"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "open_tree_attr", "mount_setattr",
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
		"open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "fanotify_init", "syslog", "vhangup",
		"clock_settime", "settimeofday", "adjtimex", "clock_adjtime",
		"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups",
	}
	wantENOSYS = []string{"clone3"}
	// Decided by the first argument.
	wantByArg = []string{"clone", "personality"}

	nsFlags = map[string]uint32{
		"CLONE_NEWNS": unix.CLONE_NEWNS, "CLONE_NEWCGROUP": unix.CLONE_NEWCGROUP,
		"CLONE_NEWUTS": unix.CLONE_NEWUTS, "CLONE_NEWIPC": unix.CLONE_NEWIPC,
		"CLONE_NEWUSER": unix.CLONE_NEWUSER, "CLONE_NEWPID": unix.CLONE_NEWPID,
		"CLONE_NEWNET": unix.CLONE_NEWNET,
	}
)

func TestDefaultRules(t *testing.T) {
	got := map[string]Rule{}
	for _, r := range Default().Rules {
		got[r.Syscall] = r
	}
	want := map[string]bool{}
	for _, n := range wantEPERM {
		want[n] = true
		if r, ok := got[n]; !ok || r.Errno != unix.EPERM || r.AnyBits != 0 || len(r.Except) != 0 {
			t.Errorf("Default: %s: got rule %+v (present %v), want it refused with EPERM whatever the arguments", n, r, ok)
		}
	}
	for _, n := range wantENOSYS {
		want[n] = true
		if r, ok := got[n]; !ok || r.Errno != unix.ENOSYS || r.AnyBits != 0 || len(r.Except) != 0 {
			t.Errorf("Default: %s: got rule %+v (present %v), want it refused with ENOSYS whatever the arguments", n, r, ok)
		}
	}
	for _, n := range wantByArg {
		want[n] = true
	}
	for n := range got {
		if !want[n] {
			t.Errorf("Default refuses %s, which this test does not expect", n)
		}
	}
	if len(got) != len(Default().Rules) {
		t.Errorf("Default names a call twice: %d rules, %d calls", len(Default().Rules), len(got))
	}
}

// TestDocNamesEveryCall: the package documentation lists every call
// Default refuses.
func TestDocNamesEveryCall(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Default().Rules {
		if !strings.Contains(string(doc), " "+r.Syscall) {
			t.Errorf("doc.go does not mention %s", r.Syscall)
		}
	}
}

// TestNumbers: no two names share a number (a copy-paste slip in the
// table would), and every name Default uses is in the table.
func TestNumbers(t *testing.T) {
	if archErr != nil {
		t.Skipf("no table on this architecture: %v", archErr)
	}
	byNr := map[int]string{}
	for name, nr := range numbers {
		if nr == absent {
			continue
		}
		if other, ok := byNr[nr]; ok {
			t.Errorf("%s and %s both have number %d", name, other, nr)
		}
		byNr[nr] = name
	}
	for _, r := range Default().Rules {
		if _, ok := numbers[r.Syscall]; !ok {
			t.Errorf("Default uses %s, which the table lacks", r.Syscall)
		}
	}
}

func program(t *testing.T, f *Filter) []unix.SockFilter {
	t.Helper()
	if archErr != nil {
		t.Skipf("no table on this architecture: %v", archErr)
	}
	prog, err := f.Program()
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// TestProgramShape checks what the kernel's verifier checks and a little
// more: only the instructions the package means to use, loads inside
// struct seccomp_data and aligned, every jump forward and inside the
// program, and no way to fall off its end.
func TestProgramShape(t *testing.T) {
	for name, f := range map[string]*Filter{"Default": Default(), "zero": {}} {
		prog := program(t, f)
		if len(prog) > maxInsns {
			t.Errorf("%s: %d instructions, the kernel takes at most %d", name, len(prog), maxInsns)
		}
		for pc, ins := range prog {
			where := func() string { return fmt.Sprintf("%s: instruction %d", name, pc) }
			switch ins.Code {
			case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
				if ins.K%4 != 0 || ins.K >= 64 {
					t.Errorf("%s: load at offset %d, outside struct seccomp_data or unaligned", where(), ins.K)
				}
			case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
				for _, skip := range []uint8{ins.Jt, ins.Jf} {
					if pc+1+int(skip) >= len(prog) {
						t.Errorf("%s: jump by %d lands outside the %d-instruction program", where(), skip, len(prog))
					}
				}
			case unix.BPF_RET | unix.BPF_K:
				action := ins.K & unix.SECCOMP_RET_ACTION_FULL
				if action != unix.SECCOMP_RET_ALLOW && action != unix.SECCOMP_RET_ERRNO {
					t.Errorf("%s: returns %#x: only allow and errno are meant", where(), ins.K)
				}
				if action == unix.SECCOMP_RET_ERRNO && (ins.K&unix.SECCOMP_RET_DATA == 0 || ins.K&unix.SECCOMP_RET_DATA > maxErrno) {
					t.Errorf("%s: returns errno %d", where(), ins.K&unix.SECCOMP_RET_DATA)
				}
			default:
				t.Errorf("%s: unexpected opcode %#x", where(), ins.Code)
			}
		}
		if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
			t.Errorf("%s: the program ends in %#x, not a return", name, last.Code)
		}
	}
}

// vm runs a program the way the kernel would, on one system call.
type vm struct{ *bpf.VM }

func newVM(t *testing.T, prog []unix.SockFilter) vm {
	t.Helper()
	ins := make([]bpf.Instruction, len(prog))
	for i, p := range prog {
		ins[i] = bpf.RawInstruction{Op: p.Code, Jt: p.Jt, Jf: p.Jf, K: p.K}.Disassemble()
	}
	v, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	return vm{v}
}

// verdict returns the filter's answer for call nr from arch with first
// argument arg0. The VM reads its input as big-endian words; the kernel
// reads struct seccomp_data in native (little-endian) order, where the
// low half of a 64-bit argument comes first. So each 32-bit field is
// written big-endian, in the kernel's order.
func (v vm) verdict(t *testing.T, arch uint32, nr uint32, arg0 uint64) uint32 {
	t.Helper()
	in := make([]byte, 64)
	binary.BigEndian.PutUint32(in[0:], nr)
	binary.BigEndian.PutUint32(in[4:], arch)
	binary.BigEndian.PutUint32(in[16:], uint32(arg0))
	binary.BigEndian.PutUint32(in[20:], uint32(arg0>>32))
	out, err := v.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(out)
}

const allow = unix.SECCOMP_RET_ALLOW

func errnoRet(e syscall.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

func verdictName(v uint32) string {
	if v == allow {
		return "allow"
	}
	if v&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO {
		return unix.ErrnoName(syscall.Errno(v & unix.SECCOMP_RET_DATA))
	}
	return fmt.Sprintf("action %#x", v)
}

// TestVerdicts runs Default's program on every call number and checks
// each answer against the test's own list.
func TestVerdicts(t *testing.T) {
	v := newVM(t, program(t, Default()))
	want := map[uint32]syscall.Errno{}
	for _, n := range wantEPERM {
		if nr := numbers[n]; nr != absent {
			want[uint32(nr)] = unix.EPERM
		}
	}
	for _, n := range wantENOSYS {
		want[uint32(numbers[n])] = unix.ENOSYS
	}
	clone, personality := uint32(numbers["clone"]), uint32(numbers["personality"])
	check := func(what string, got, want uint32) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s, want %s", what, verdictName(got), verdictName(want))
		}
	}
	// Every number up to well past the last call: refused as listed,
	// allowed otherwise (with an argument that decides nothing).
	for nr := uint32(0); nr < 1024; nr++ {
		if nr == clone || nr == personality {
			continue
		}
		w := uint32(allow)
		if e, ok := want[nr]; ok {
			w = errnoRet(e)
		}
		check("call "+strconv.Itoa(int(nr)), v.verdict(t, auditArch, nr, 0), w)
	}

	// clone: any namespace flag, alone or among the flags of a thread,
	// is refused; threads, fork and exit signals pass.
	const thread = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_SYSVSEM | unix.CLONE_THREAD | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
	for name, f := range nsFlags {
		check("clone("+name+")", v.verdict(t, auditArch, clone, uint64(f)), errnoRet(unix.EPERM))
		check("clone(thread|"+name+")", v.verdict(t, auditArch, clone, uint64(f|thread|uint32(unix.SIGCHLD))), errnoRet(unix.EPERM))
	}
	for what, flags := range map[string]uint64{
		"fork":                           uint64(unix.SIGCHLD),
		"thread":                         thread,
		"vfork":                          unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD),
		"pidfd":                          unix.CLONE_VM | unix.CLONE_VFORK | unix.CLONE_PIDFD | uint64(unix.SIGCHLD),
		"exit signal 0x80 (NEWTIME bit)": 0x80 | 0x11,
		"upper half set":                 0xffffffff_00000000 | uint64(unix.SIGCHLD),
	} {
		check("clone("+what+")", v.verdict(t, auditArch, clone, flags), allow)
	}

	// personality: the query and the default persona only.
	for what, p := range map[string]uint64{"query": 0xffffffff, "PER_LINUX": 0, "PER_LINUX, upper half set": 1 << 32} {
		check("personality("+what+")", v.verdict(t, auditArch, personality, p), allow)
	}
	for what, p := range map[string]uint64{
		"ADDR_NO_RANDOMIZE": addrNoRandomize, "READ_IMPLIES_EXEC": readImpliesExec,
		"PER_LINUX32": 8, "UNAME26": 0x0020000, "query minus one": 0xfffffffe,
	} {
		check("personality("+what+")", v.verdict(t, auditArch, personality, p), errnoRet(unix.EPERM))
	}

	// Other ABIs.
	getpid := uint32(unix.SYS_GETPID)
	for _, arch := range []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_AARCH64} {
		if arch == auditArch {
			continue
		}
		check(fmt.Sprintf("getpid from arch %#x", arch), v.verdict(t, arch, getpid, 0), errnoRet(unix.ENOSYS))
	}
	if x32Bit != 0 {
		check("x32 getpid", v.verdict(t, auditArch, getpid|x32Bit, 0), errnoRet(unix.ENOSYS))
		check("x32 ptrace", v.verdict(t, auditArch, uint32(numbers["ptrace"])|x32Bit, 0), errnoRet(unix.ENOSYS))
		check("number 0x80000000", v.verdict(t, auditArch, 0x80000000, 0), errnoRet(unix.ENOSYS))
	}
	check("number -1 (no call: a tracer skipping one)", v.verdict(t, auditArch, 0xffffffff, 0), allow)
}

// TestZeroFilter: the zero Filter refuses only other ABIs.
func TestZeroFilter(t *testing.T) {
	v := newVM(t, program(t, &Filter{}))
	for nr := uint32(0); nr < 1024; nr++ {
		if got := v.verdict(t, auditArch, nr, 0); got != allow {
			t.Errorf("call %d: %s, want allow", nr, verdictName(got))
		}
	}
	if got := v.verdict(t, unix.AUDIT_ARCH_I386, 20, 0); got != errnoRet(unix.ENOSYS) {
		t.Errorf("i386 call: %s, want ENOSYS", verdictName(got))
	}
}

func TestProgramRejects(t *testing.T) {
	if archErr != nil {
		t.Skipf("no table on this architecture: %v", archErr)
	}
	for name, rules := range map[string][]Rule{
		"unknown call":        {{Syscall: "frobnicate", Errno: unix.EPERM}},
		"errno 0":             {{Syscall: "ptrace"}},
		"errno 4096":          {{Syscall: "ptrace", Errno: 4096}},
		"twice":               {{Syscall: "ptrace", Errno: unix.EPERM}, {Syscall: "ptrace", Errno: unix.EACCES}},
		"AnyBits and Except":  {{Syscall: "clone", Errno: unix.EPERM, AnyBits: 1, Except: []uint32{0}}},
		"too many exceptions": {{Syscall: "personality", Errno: unix.EPERM, Except: make([]uint32, 251)}},
	} {
		_, err := (&Filter{Rules: rules}).Program()
		if err == nil {
			t.Errorf("%s: Program succeeded", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "seccomp: rule ") {
			t.Errorf("%s: error %q does not name the rule", name, err)
		}
	}
	// Many exceptions still fit in the 8-bit jumps.
	f := &Filter{Rules: []Rule{{Syscall: "personality", Errno: unix.EPERM, Except: slices.Repeat([]uint32{7}, 250)}}}
	v := newVM(t, program(t, f))
	if got := v.verdict(t, auditArch, uint32(numbers["personality"]), 7); got != allow {
		t.Errorf("personality(7) with 250 exceptions of 7: %s, want allow", verdictName(got))
	}
	if got := v.verdict(t, auditArch, uint32(numbers["personality"]), 8); got != errnoRet(unix.EPERM) {
		t.Errorf("personality(8) with 250 exceptions of 7: %s, want EPERM", verdictName(got))
	}
}

func TestRuleString(t *testing.T) {
	for _, c := range []struct {
		r    Rule
		want string
	}{
		{Rule{Syscall: "ptrace", Errno: unix.EPERM}, "ptrace: EPERM"},
		{Rule{Syscall: "clone3", Errno: unix.ENOSYS}, "clone3: ENOSYS"},
		{Rule{Syscall: "clone", Errno: unix.EPERM, AnyBits: unix.CLONE_NEWUSER}, "clone when the first argument has any of 0x10000000: EPERM"},
		{Rule{Syscall: "personality", Errno: unix.EPERM, Except: []uint32{0, 0xffffffff}}, "personality unless the first argument is 0x0 or 0xffffffff: EPERM"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

// TestSupported: the machines the project runs on (Linux 6) can filter.
func TestSupported(t *testing.T) {
	err := Supported()
	if archErr != nil {
		if !errors.Is(err, ErrUnsupportedArch) {
			t.Errorf("Supported() = %v, want ErrUnsupportedArch", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Supported() = %v", err)
	}
}

// Persona flags from <linux/personality.h>.
const (
	addrNoRandomize = 0x0040000
	readImpliesExec = 0x0400000
)
