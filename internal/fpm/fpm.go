// Package fpm runs PHP-FPM as the current user: one master for one
// identity, with a pool per site, supervised by the process that runs it.
//
// PHP-FPM as usually run keeps a root master and per-user pools; a child
// that escapes to its master (CVE-2021-21703) is root. Here the master is
// started by a process that already runs as the site's user, with no
// capability and no_new_privs: FPM's master is the tenant's own process,
// and nothing FPM does can reach beyond the tenant. What FPM gives that
// php-cgi does not is what makes it worth running:
//
//   - php_admin_value: a value set in the pool's configuration that a
//     script's ini_set() and a .user.ini cannot change (php-cgi has no
//     such level: its -d options and ini files are defaults a script may
//     override; measured, ini_set("memory_limit") returns the old value
//     and changes it);
//   - a process manager per pool (pm = ondemand: no PHP process until a
//     request, none again after the idle timeout), a cap on the children
//     of all pools (process.max), recycling (pm.max_requests), and a
//     per-request time limit that kills the child running it
//     (request_terminate_timeout).
//
// Values are never put in a per-request FastCGI parameter (PHP_VALUE,
// PHP_ADMIN_VALUE): FPM keeps them in the child for the requests after
// (measured with php-fpm 8.2: an open_basedir sent with one request held
// for the next one, sent without), so one site's values would leak into
// another's. Each site with PHP gets its own pool instead.
//
// The configuration file is written into Dir, which must be the
// identity's own (0700): it holds the values, database passwords among
// them, that never appear on a command line. FPM runs in a process group
// of its own with a parent-death signal; [Run] kills the group when it
// returns, so that no PHP process outlives the supervisor.
package fpm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gompm/mpm/internal/procgroup"
)

// Pool is one FPM pool: one site's PHP.
type Pool struct {
	Name   string // [A-Za-z0-9_.-]+
	Listen string // absolute path of its socket
	// AdminValues are php_admin_value and Values php_value settings.
	AdminValues, Values map[string]string
	// Env is the PHP processes' whole environment (clear_env).
	Env map[string]string
	// MaxChildren bounds its PHP processes (pm.max_children).
	MaxChildren int
	// IdleTimeout ends an idle PHP process (pm.process_idle_timeout).
	IdleTimeout time.Duration
	// MaxRequests a PHP process serves before it is replaced.
	MaxRequests int
	// RequestTimeout kills the PHP process of a request running longer
	// (request_terminate_timeout). 0: none.
	RequestTimeout time.Duration
	// Extensions run as PHP (security.limit_extensions), ".php" by
	// default.
	Extensions []string
}

// Config is a master and its pools.
type Config struct {
	Binary string // php-fpm
	// Dir holds the configuration file; it must be private to the
	// identity.
	Dir   string
	Pools []Pool
	// ProcessMax bounds the PHP processes of every pool together. 0: no
	// bound beyond each pool's.
	ProcessMax int
	// Logger gets FPM's own log (its stderr) and the supervisor's
	// events. Nil discards them.
	Logger *slog.Logger
	// Stderr, when set, gets FPM's stderr instead (it is what a prefork
	// child's stderr already is).
	Stderr io.Writer
	// StopTimeout is how long a retiring FPM lets its children finish
	// the requests in progress (process_control_timeout; without it FPM
	// ends them at once). 0 means 10 seconds.
	StopTimeout time.Duration

	// asRoot lets the package's tests, which run as root in CI, run FPM
	// as root (which FPM allows only with -R and a user for each pool);
	// the daemon never does.
	asRoot bool
}

// Check reports what Write would refuse.
func (c *Config) Check() error {
	if c.Binary == "" || !filepath.IsAbs(c.Binary) {
		return fmt.Errorf("fpm: binary %q is not an absolute path", c.Binary)
	}
	if len(c.Pools) == 0 {
		return errors.New("fpm: no pools")
	}
	for _, p := range c.Pools {
		if !validName(p.Name) {
			return fmt.Errorf("fpm: pool name %q: use letters, digits, '_', '.' and '-'", p.Name)
		}
		if !filepath.IsAbs(p.Listen) {
			return fmt.Errorf("fpm: pool %s: socket %q is not an absolute path", p.Name, p.Listen)
		}
		for _, m := range []map[string]string{p.AdminValues, p.Values, p.Env} {
			for k, v := range m {
				if err := CheckValue(k, v); err != nil {
					return fmt.Errorf("fpm: pool %s: %w", p.Name, err)
				}
			}
		}
		for _, e := range p.Extensions {
			if !strings.HasPrefix(e, ".") || strings.ContainsAny(e, " \t\n\"$;=") {
				return fmt.Errorf("fpm: pool %s: extension %q: want a dot and letters, such as \".php\"", p.Name, e)
			}
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// CheckValue reports whether a setting or environment variable can be
// written into an FPM configuration file as it is: a name of letters,
// digits, '_' and '.', and a value without a double quote, a backslash, a
// line break, a NUL or a "${" (FPM's configuration would read them as
// syntax, or substitute an environment variable).
func CheckValue(name, value string) error {
	if name == "" {
		return errors.New("empty name")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return fmt.Errorf("name %q: use letters, digits, '_' and '.'", name)
		}
	}
	if strings.ContainsAny(value, "\"\\\n\r\x00") || strings.Contains(value, "${") {
		return fmt.Errorf("%s = %q: a value may not hold a double quote, a backslash, a line break, a NUL or \"${\"", name, value)
	}
	return nil
}

func (c *Config) stopTimeout() time.Duration {
	if c.StopTimeout > 0 {
		return c.StopTimeout
	}
	return 10 * time.Second
}

// File is the configuration file's path in Dir.
func (c *Config) File() string { return filepath.Join(c.Dir, "php-fpm.conf") }

// Text is the configuration file's content.
func (c *Config) Text() string {
	var b strings.Builder
	b.WriteString("; written by mpmd: changes are lost at the next start\n[global]\n")
	// The log goes to stderr (--force-stderr), the supervisor's; FPM
	// opens error_log all the same (/proc/self/fd/2 it could not: the
	// pipe is the master's, not the identity's).
	fmt.Fprintf(&b, "error_log = %s\nlog_level = warning\ndaemonize = no\n", filepath.Join(c.Dir, "php-fpm.log"))
	fmt.Fprintf(&b, "process_control_timeout = %ds\n", max(int(c.stopTimeout()/time.Second), 1))
	if c.ProcessMax > 0 {
		fmt.Fprintf(&b, "process.max = %d\n", c.ProcessMax)
	}
	for _, p := range c.Pools {
		fmt.Fprintf(&b, "\n[%s]\nlisten = %s\nlisten.mode = 0600\n", p.Name, p.Listen)
		if c.asRoot {
			b.WriteString("user = root\n")
		}
		fmt.Fprintf(&b, "pm = ondemand\npm.max_children = %d\npm.process_idle_timeout = %ds\npm.max_requests = %d\n",
			max(p.MaxChildren, 1), max(int(p.IdleTimeout/time.Second), 1), max(p.MaxRequests, 0))
		if p.RequestTimeout > 0 {
			fmt.Fprintf(&b, "request_terminate_timeout = %ds\n", max(int(p.RequestTimeout/time.Second), 1))
		}
		ext := p.Extensions
		if len(ext) == 0 {
			ext = []string{".php"}
		}
		fmt.Fprintf(&b, "security.limit_extensions = %s\n", strings.Join(ext, " "))
		b.WriteString("clear_env = yes\ncatch_workers_output = yes\ndecorate_workers_output = no\n")
		for _, k := range sorted(p.Env) {
			fmt.Fprintf(&b, "env[%s] = \"%s\"\n", k, p.Env[k])
		}
		for _, k := range sorted(p.Values) {
			fmt.Fprintf(&b, "php_value[%s] = \"%s\"\n", k, p.Values[k])
		}
		for _, k := range sorted(p.AdminValues) {
			fmt.Fprintf(&b, "php_admin_value[%s] = \"%s\"\n", k, p.AdminValues[k])
		}
	}
	return b.String()
}

func sorted(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Write writes the configuration file, mode 0600, replacing one left by
// an earlier run.
func (c *Config) Write() error {
	if err := c.Check(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("fpm: %w", err)
	}
	tmp := c.File() + ".new"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("fpm: %w", err)
	}
	_, werr := io.WriteString(f, c.Text())
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fpm: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, c.File()); err != nil {
		return fmt.Errorf("fpm: %w", err)
	}
	return nil
}

// Run writes the configuration and runs FPM until ctx ends (FPM is
// stopped at once: SIGTERM, which ends its children, then SIGKILL to its
// group) or retire is closed (FPM finishes the requests in progress:
// SIGQUIT, until StopTimeout, then as for ctx). An FPM that dies is
// started again, after a back-off that doubles from 100ms to a minute
// while it keeps dying at once.
func Run(ctx context.Context, retire <-chan struct{}, c Config) error {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := c.Write(); err != nil {
		return err
	}
	for _, p := range c.Pools {
		os.Remove(p.Listen) // left by an earlier FPM
	}
	var backoff time.Duration
	for {
		start := time.Now()
		fpm, err := c.start()
		if err != nil {
			return err
		}
		log.Info("php-fpm started", "pid", fpm.cmd.Process.Pid, "pools", len(c.Pools))
		select {
		case <-fpm.exited:
			if time.Since(start) > time.Minute {
				backoff = 0
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), time.Minute)
			log.Error("php-fpm ended; starting it again", "exit", fpm.cmd.ProcessState.String(), "in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			case <-retire:
				return nil
			}
		case <-ctx.Done():
			fpm.stop(syscall.SIGTERM, 2*time.Second)
			return nil
		case <-retire:
			fpm.stop(syscall.SIGQUIT, c.stopTimeout()+time.Second)
			return nil
		}
	}
}

// start starts FPM in a process group of its own, with a parent-death
// signal set from a locked thread (it belongs to the thread that forks).
func (c *Config) start() (*running, error) {
	// FPM's master creates OPcache's lock file when it starts, from
	// php.ini alone (a pool's php_admin_value comes later); its default
	// place is /tmp, shared by every user (and closed to a process that
	// Landlock confines): the instance's own directory instead.
	cmd := exec.Command(c.Binary, "--nodaemonize", "--force-stderr", "--fpm-config", c.File(), "-d", "opcache.lockfile_path="+c.Dir)
	if c.asRoot {
		cmd.Args = append(cmd.Args, "--allow-to-run-as-root")
	}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = c.Stderr, c.Stderr
	if c.Stderr == nil {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("fpm: start %s: %w", c.Binary, err)
	}
	// FPM's end takes its group with it (PHP processes it left, what
	// they started), killed before FPM is reaped (see procgroup).
	g := procgroup.Watch(cmd.Process.Pid)
	exited := make(chan struct{})
	go func() {
		<-g.Exited()
		g.Kill()
		g.Release()
		cmd.Wait()
		close(exited)
	}()
	return &running{cmd: cmd, group: g, exited: exited}, nil
}

// running is a started FPM.
type running struct {
	cmd    *exec.Cmd
	group  *procgroup.Group
	exited chan struct{} // FPM and its group are gone, FPM reaped
}

// stop sends FPM's master sig, waits for it up to d, and kills its whole
// group.
func (r *running) stop(sig syscall.Signal, d time.Duration) {
	r.cmd.Process.Signal(sig)
	select {
	case <-r.exited:
	case <-time.After(d):
	}
	r.group.Kill()
	<-r.exited
}

// Find returns the php-fpm binary: "php-fpm" on PATH, or the one of
// Debian's versioned names (/usr/sbin/php-fpm8.2) with the highest version.
func Find() (string, error) {
	if p, err := exec.LookPath("php-fpm"); err == nil {
		return p, nil
	}
	var found []string
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
		m, _ := filepath.Glob(filepath.Join(dir, "php-fpm*"))
		found = append(found, m...)
	}
	if len(found) == 0 {
		return "", errors.New("fpm: no php-fpm binary found (install php-fpm, or set php_fpm)")
	}
	slices.SortFunc(found, func(a, b string) int { return compareVersions(filepath.Base(a), filepath.Base(b)) })
	return found[len(found)-1], nil
}

// compareVersions orders "php-fpm8.2" before "php-fpm8.10".
func compareVersions(a, b string) int {
	na, nb := versionParts(a), versionParts(b)
	for i := range min(len(na), len(nb)) {
		if na[i] != nb[i] {
			return na[i] - nb[i]
		}
	}
	return len(na) - len(nb)
}

func versionParts(s string) []int {
	var out []int
	n, in := 0, false
	for _, c := range s {
		if c >= '0' && c <= '9' {
			n, in = n*10+int(c-'0'), true
			continue
		}
		if in {
			out = append(out, n)
			n, in = 0, false
		}
	}
	if in {
		out = append(out, n)
	}
	return out
}
