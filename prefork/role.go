package prefork

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/privdrop"
)

// The environment through which a parent tells a re-executed child its
// role and which inherited descriptors carry which files. They are the
// only variables a child gets besides those of [Spec].Env.
const (
	EnvRole        = "MPM_PREFORK_ROLE"
	EnvFiles       = "MPM_PREFORK_FILES"       // "name=3,name=4"
	EnvDeathSignal = "MPM_PREFORK_DEATHSIGNAL" // Spec.DeathSignal, set again after a drop
)

// RoleFunc is the body of a process started in a role. ctx is cancelled
// when the process is asked to stop gracefully (SIGTERM or SIGINT); the
// function should then finish what it is doing and return. A nil error
// exits with status 0, an error with status 1 after logging it.
type RoleFunc func(ctx context.Context, env *Env) error

// Env is what a role's process received from its parent.
type Env struct {
	Role     string
	Files    map[string]*os.File // inherited files, by the names given in Spec.Files
	Identity *privdrop.Identity  // the identity the child completed, or nil
	Logger   *slog.Logger        // writes to stderr, which the parent logs

	retire   chan struct{}
	watching atomic.Bool
}

// Retiring returns a channel closed when the parent asks the child to
// retire (SIGHUP, see [Child.Retire]): to finish its work and end when it
// is done, as gently as it can, because another process takes over its
// work (a reload, a worker replaced). The role's context ends when it is
// asked to stop (SIGTERM): to finish what is in progress soon. A role
// that never calls Retiring is stopped by a retirement as by SIGTERM.
func (e *Env) Retiring() <-chan struct{} {
	e.watching.Store(true)
	return e.retire
}

// File returns the inherited file name or an error naming what was
// inherited instead.
func (e *Env) File(name string) (*os.File, error) {
	if f, ok := e.Files[name]; ok {
		return f, nil
	}
	names := make([]string, 0, len(e.Files))
	for n := range e.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("prefork: role %s: no inherited file %q (have %s)", e.Role, name, strings.Join(names, ", "))
}

// Roles is a registry of roles. The zero value is empty and ready to use.
type Roles struct {
	m map[string]RoleFunc
}

// Add registers fn under name. Registering a name twice, or an empty
// name, is a programming error and panics, as http.ServeMux does.
func (r *Roles) Add(name string, fn RoleFunc) {
	if name == "" || fn == nil {
		panic("prefork: Roles.Add: empty role name or nil function")
	}
	if _, dup := r.m[name]; dup {
		panic("prefork: Roles.Add: role " + strconv.Quote(name) + " registered twice")
	}
	if r.m == nil {
		r.m = make(map[string]RoleFunc)
	}
	r.m[name] = fn
}

// Main must be called early in main, before anything that should only
// happen in the original (master) process. In a process started by
// [Group.Start] it runs the role and exits, never returning into the
// caller's code; in any other process it returns at once.
//
// Before the role runs, Main completes a privilege drop the parent
// prepared (see [privdrop.Complete]), marks every inherited descriptor
// close-on-exec so that programs the role runs (php-cgi) inherit none of
// them, and closes any descriptor it was not told about.
func (r *Roles) Main() {
	name, ok := os.LookupEnv(EnvRole)
	if !ok {
		return
	}
	os.Exit(r.run(name))
}

func (r *Roles) run(name string) int {
	// The parent logs each line with the time, role and pid: the child
	// leaves them out.
	noTime := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: noTime}))
	fail := func(err error) int {
		log.Error("role failed", "err", err)
		return 1
	}
	// The parent, as it was at the start: the drop below clears the
	// parent-death signal (the kernel does on any change of credentials),
	// which is set again after it, and a parent gone in between is seen.
	parent := os.Getppid()
	env := &Env{Role: name, Logger: log}
	nameAfterProgram()
	// Descriptors are sorted out first, while /proc is reachable (a
	// chroot in the drop below hides it); this reads no input and runs
	// nothing.
	files, err := adoptFiles(os.Getenv(EnvFiles))
	if err != nil {
		return fail(err)
	}
	env.Files = files
	// Then the drop, before anything else: until it is complete the
	// process holds capabilities.
	if _, prepared := os.LookupEnv(privdrop.EnvIdentity); prepared {
		id, err := privdrop.Complete()
		if err != nil {
			return fail(err)
		}
		env.Identity = &id
		death, _ := strconv.Atoi(os.Getenv(EnvDeathSignal))
		if death <= 0 || death > 64 {
			death = int(syscall.SIGKILL)
		}
		if err := keepDeathSignal(parent, syscall.Signal(death)); err != nil {
			return fail(err)
		}
	}
	os.Unsetenv(EnvRole)
	os.Unsetenv(EnvFiles)
	os.Unsetenv(EnvDeathSignal)

	fn, ok := r.m[name]
	if !ok {
		return fail(fmt.Errorf("prefork: unknown role %q", name))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	env.retire = make(chan struct{})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		<-hup
		signal.Ignore(syscall.SIGHUP) // once is enough
		if env.watching.Load() {
			close(env.retire)
		} else {
			stop()
		}
	}()
	if err := fn(ctx, env); err != nil && !errors.Is(err, context.Canceled) {
		return fail(err)
	}
	return 0
}

// nameAfterProgram sets the process name (comm, what top and ps -C
// show) to the program's file name. The kernel names a process after the
// last element of the path it was started through: a child started from
// a descriptor (Spec.Exe) would be named "7". Done before a chroot hides
// /proc; a program replaced since has " (deleted)" after its name.
func nameAfterProgram() {
	p, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	base := p[strings.LastIndexByte(p, '/')+1:]
	base = strings.TrimSuffix(base, " (deleted)")
	if len(base) > 15 { // TASK_COMM_LEN - 1: the kernel would cut it
		base = base[:15]
	}
	if b, err := unix.BytePtrFromString(base); err == nil && base != "" {
		unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0, 0, 0)
	}
}

// adoptFiles wraps the descriptors named in spec ("name=3,name=4") in
// files, marks every descriptor above stderr close-on-exec, and closes
// the ones not named: a child holds exactly what its parent meant to give.
func adoptFiles(spec string) (map[string]*os.File, error) {
	named := map[int]string{}
	if spec != "" {
		for _, kv := range strings.Split(spec, ",") {
			name, num, ok := strings.Cut(kv, "=")
			fd, err := strconv.Atoi(num)
			if !ok || err != nil || fd < 3 || name == "" {
				return nil, fmt.Errorf("prefork: bad %s entry %q", EnvFiles, kv)
			}
			named[fd] = name
		}
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("prefork: list inherited descriptors: %w", err)
	}
	ents, err := d.Readdirnames(-1)
	self := int(d.Fd())
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("prefork: list inherited descriptors: %w", err)
	}
	files := map[string]*os.File{}
	var unknown []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e)
		if err != nil || fd < 3 || fd == self {
			continue
		}
		name, ok := named[fd]
		if !ok {
			unknown = append(unknown, fd)
			continue
		}
		unix.CloseOnExec(fd)
		files[name] = os.NewFile(uintptr(fd), name)
		delete(named, fd)
	}
	d.Close()
	// The Go runtime's own descriptors (epoll, its wakeup pipe) are
	// created close-on-exec after exec and would show up here only if
	// opened by now; leave those alone and close what came from outside.
	for _, fd := range unknown {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	if len(named) > 0 {
		var missing []string
		for fd, name := range named {
			missing = append(missing, fmt.Sprintf("%s=%d", name, fd))
		}
		slices.Sort(missing)
		return nil, fmt.Errorf("prefork: inherited descriptors %s are not open", strings.Join(missing, ","))
	}
	return files, nil
}

// keepDeathSignal sets the parent-death signal again after a change of
// credentials cleared it, and fails if the parent died in the meantime
// (the process was then adopted by another).
func keepDeathSignal(parent int, sig syscall.Signal) error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0); err != nil {
		return fmt.Errorf("prefork: set the parent-death signal again after the drop: %w", os.NewSyscallError("prctl", err))
	}
	if p := os.Getppid(); p != parent {
		return fmt.Errorf("prefork: the parent (pid %d) ended while this child dropped its privileges", parent)
	}
	return nil
}
