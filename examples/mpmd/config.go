package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/cgroup"
	"github.com/gompm/mpm/internal/fpm"
	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/privdrop"
	"github.com/gompm/mpm/vhostroute"
)

// The PHP modes of a vhost.
const (
	phpModeCGI = "cgi" // php-cgi per request, as the identity
	phpModeFPM = "fpm" // PHP-FPM run as the identity, its pool shared by its workers
)

// Config is mpmd's configuration file. See README.md for every key.
type Config struct {
	// Include names more files, one per site as hosting panels write
	// them: glob patterns, relative to this file's directory, expanded
	// in sorted order. An included file holds [identity.NAME] tables and
	// [[vhost]] entries only, and includes nothing further.
	Include    []string            `toml:"include"`
	Server     Server              `toml:"server"`
	Pool       PoolConfig          `toml:"pool"`
	Identities map[string]Identity `toml:"identity"`
	VHosts     []VHost             `toml:"vhost"`
	// Listeners are per-address settings, [listener."ADDR"] (proxy.go).
	Listeners map[string]ListenerConfig `toml:"listener"`

	file    string
	lines   lineIndex
	exe     string  // the program children run; "" means this one
	routing routing // built by check
}

// Server holds the daemon-wide settings.
type Server struct {
	Listen           []string `toml:"listen"`
	TLSListen        []string `toml:"tls_listen"`
	Admin            string   `toml:"admin"`
	AdminToken       string   `toml:"admin_token"`
	Multiplexers     int      `toml:"multiplexers"`
	MultiplexerUser  string   `toml:"multiplexer_user"`
	MultiplexerGroup string   `toml:"multiplexer_group"`
	MinUID           uint32   `toml:"min_uid"`
	MaxWorkers       int      `toml:"max_workers"`
	PHPCGI           string   `toml:"php_cgi"`
	PHPFPM           string   `toml:"php_fpm"`
	RunDir           string   `toml:"run_dir"`
	// CgroupName is the cgroup under the cgroup2 root that holds the
	// identities' groups when mpmd runs in the root cgroup (not under
	// systemd): two daemons on one host need two names.
	CgroupName     string   `toml:"cgroup_name"`
	HeaderTimeout  Duration `toml:"header_timeout"`
	IdleTimeout    Duration `toml:"keepalive_timeout"`
	MaxHeaderBytes int      `toml:"max_header_bytes"`
	MaxBodyBytes   string   `toml:"max_body_bytes"`
	// A request body to PHP must arrive within BodyTimeout, and at
	// BodyMinRate bytes a second after that (mod_reqtimeout's body=20,
	// MinRate=500); each write of a response must complete within
	// SendTimeout (a client that reads nothing is dropped after it).
	BodyTimeout Duration `toml:"body_timeout"`
	BodyMinRate int64    `toml:"body_min_rate"`
	SendTimeout Duration `toml:"send_timeout"`

	maxBody     int64
	UnknownHost int `toml:"unknown_host_status"`
}

// PoolConfig is the [pool] table and an identity's [identity.NAME.pool]
// overrides. Unset keys take the defaults.
type PoolConfig struct {
	// Max is how many requests of the identity may be in progress at
	// once; more wait up to QueueTimeout, then get 503.
	Max *int `toml:"max"`
	// Min and Workers bound the identity's worker processes; Connections
	// is how many connections one worker serves at once.
	Min         *int `toml:"min"`
	Workers     *int `toml:"workers"`
	Connections *int `toml:"connections"`
	// MaxRequests a worker serves before it is replaced.
	MaxRequests   *int      `toml:"max_requests"`
	IdleTimeout   *Duration `toml:"idle_timeout"`
	ExpireTimeout *Duration `toml:"expire_timeout"`
	QueueTimeout  *Duration `toml:"queue_timeout"`

	// The identity's PHP-FPM processes (php_mode = "fpm"), as php-fpm's
	// pm = ondemand: at most PHPMax at once, each ended after
	// PHPIdleTimeout idle or PHPMaxRequests requests.
	PHPMax         *int      `toml:"php_max"`
	PHPIdleTimeout *Duration `toml:"php_idle_timeout"`
	PHPMaxRequests *int      `toml:"php_max_requests"`

	// Gone with one worker per connection; refused with an explanation.
	MinSpare *int `toml:"min_spare"`
	MaxSpare *int `toml:"max_spare"`
}

// phpPool is an identity's PHP-FPM settings, defaults filled in.
type phpPool struct {
	Max         int
	IdleTimeout time.Duration
	MaxRequests int
}

// Defaults of the PHP-FPM settings.
const (
	defaultPHPMax         = 8
	defaultPHPIdleTimeout = 10 * time.Second
	defaultPHPMaxRequests = 500 // php-fpm's and php-cgi's own default
)

// phpPoolFor is an identity's PHP-FPM settings: its overrides over [pool]
// over the defaults.
func (c *Config) phpPoolFor(id Identity) (phpPool, error) {
	pp := phpPool{Max: defaultPHPMax, IdleTimeout: defaultPHPIdleTimeout, MaxRequests: defaultPHPMaxRequests}
	for _, layer := range []PoolConfig{c.Pool, id.Pool} {
		if layer.PHPMax != nil {
			pp.Max = *layer.PHPMax
		}
		if layer.PHPIdleTimeout != nil {
			pp.IdleTimeout = time.Duration(*layer.PHPIdleTimeout)
		}
		if layer.PHPMaxRequests != nil {
			pp.MaxRequests = *layer.PHPMaxRequests
		}
	}
	switch {
	case pp.Max < 1:
		return pp, fmt.Errorf("php_max %d: want at least 1 PHP process", pp.Max)
	case pp.MaxRequests < 0:
		return pp, fmt.Errorf("php_max_requests %d is negative", pp.MaxRequests)
	case pp.IdleTimeout < time.Second:
		return pp, fmt.Errorf("php_idle_timeout %v: want a second or more", pp.IdleTimeout)
	}
	return pp, nil
}

// Defaults of the [pool] table that differ from package pool's.
const (
	defaultPoolMax         = 32
	defaultPoolConnections = 256
	defaultPoolMaxRequests = 10000
)

// Identity is an [identity.NAME] table: who a pool's workers run as.
type Identity struct {
	User   string     `toml:"user"`
	Group  string     `toml:"group"`
	Chroot string     `toml:"chroot"`
	Nice   int        `toml:"nice"`
	Umask  string     `toml:"umask"`
	Pool   PoolConfig `toml:"pool"`
	// Rlimits are resource limits for the identity's workers and their
	// PHP children: {nproc = 64, data = "512M", nofile = 1024, cpu = 60}.
	Rlimits map[string]any `toml:"rlimits"`
	// Landlock confines the identity's processes to its own files and
	// the system's (default true); Read and Write add paths.
	Landlock *bool    `toml:"landlock"`
	Read     []string `toml:"read"`
	Write    []string `toml:"write"`
	// Seccomp refuses the system calls a web tenant has no use for
	// (default true).
	Seccomp *bool `toml:"seccomp"`
	// The identity's cgroup v2 limits, on every process of the site
	// (workers, PHP and what PHP starts) together: memory_max = "512M",
	// pids_max = 256, cpu_weight = 100 (1-10000, against the other
	// identities), cpu_max = "50%" (of one CPU; "200%" is two).
	MemoryMax string `toml:"memory_max"`
	PidsMax   int64  `toml:"pids_max"`
	CPUWeight int    `toml:"cpu_weight"`
	CPUMax    string `toml:"cpu_max"`

	resolved privdrop.Identity
	limits   cgroup.Limits
}

// VHost is a [[vhost]] entry.
type VHost struct {
	ServerName     string            `toml:"server_name"`
	Aliases        []string          `toml:"aliases"`
	DocumentRoot   string            `toml:"document_root"`
	Identity       string            `toml:"identity"`
	User           string            `toml:"user"`
	Group          string            `toml:"group"`
	Listen         []string          `toml:"listen"`
	Default        bool              `toml:"default"`
	MaxClients     int               `toml:"max_clients"`
	PHP            bool              `toml:"php"`
	PHPAdminValue  map[string]string `toml:"php_admin_value"` // php_mode = "fpm" only: values scripts cannot change
	PHPValue       map[string]string `toml:"php_value"`       // defaults a script may change
	PHPCGI         string            `toml:"php_cgi"`         // this vhost's php-cgi (php_mode = "cgi")
	PHPFPM         string            `toml:"php_fpm"`         // this vhost's php-fpm (php_mode = "fpm")
	PHPErrorLog    string            `toml:"php_error_log"`   // PHP's error log, the identity's file
	PHPExtensions  []string          `toml:"php_extensions"`  // what runs as PHP; default [".php"]
	SendmailPath   string            `toml:"sendmail_path"`   // what PHP's mail() runs
	Env            map[string]string `toml:"env"`             // PHP's environment
	AccessLog      string            `toml:"access_log"`
	Index          []string          `toml:"index"`
	FollowSymlinks bool              `toml:"follow_symlinks"`
	Fallback       string            `toml:"fallback"` // front controller, "/index.php"
	Deny           []string          `toml:"deny"`     // URL path patterns never served
	Htaccess       *bool             `toml:"htaccess"` // apply .htaccess files; default true
	Writable       []string          `toml:"writable"` // under document_root: what PHP may write (Landlock); default all of it
	TLSCertificate string            `toml:"tls_certificate"`
	TLSKey         string            `toml:"tls_key"`
	PHPMode        string            `toml:"php_mode"`         // "cgi" (default) or "fpm"
	PHPMaxRequests *int              `toml:"php_max_requests"` // moved to [pool]; refused with an explanation

	names []string // ServerName and Aliases, normalized (vhostroute.NormalizePattern)
	where string   // "file:line" of the vhost
}

// Duration is a time.Duration written as "30s" in the file.
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (use e.g. \"30s\", \"5m\")", b)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// ConfigError is a problem in the configuration file, with where it is.
type ConfigError struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadConfig reads and checks a configuration file and the files it
// includes.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses and checks configuration text; name is used in
// errors, and relative include patterns are relative to its directory.
func ParseConfig(name string, b []byte) (*Config, error) {
	c, err := decodeConfig(name, b)
	if err != nil {
		return nil, err
	}
	if err := c.include(); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeConfig decodes one file strictly and indexes its lines.
func decodeConfig(name string, b []byte) (*Config, error) {
	c := &Config{file: name}
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		var strict *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &strict):
			var errs []error
			for _, e := range strict.Errors {
				row, _ := e.Position()
				errs = append(errs, &ConfigError{File: name, Line: row, Msg: fmt.Sprintf("unknown key %q", strings.Join(e.Key(), "."))})
			}
			return nil, errors.Join(errs...)
		case errors.As(err, &de):
			row, _ := de.Position()
			return nil, &ConfigError{File: name, Line: row, Msg: de.Error()}
		}
		return nil, &ConfigError{File: name, Msg: err.Error()}
	}
	c.lines = indexLines(name, b)
	return c, nil
}

// include reads the files the include patterns name, in sorted order,
// and adds their identities and vhosts. A pattern that matches nothing
// is fine (an empty sites.d); a malformed one is an error, as is an
// identity defined twice, or an included file that sets anything but
// identities and vhosts (includes do not nest: one level keeps the order
// of vhosts, and so which default wins, plain to see).
func (c *Config) include() error {
	seen := map[string]bool{}
	var files []string
	for _, pat := range c.Include {
		if pat == "" {
			return c.errAt("include", "include: an empty pattern")
		}
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(filepath.Dir(c.file), pat)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return c.errAt("include", "include %q: %v", pat, err)
		}
		slices.Sort(matches)
		for _, f := range matches {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return c.errAt("include", "include: %v", err)
		}
		inc, err := decodeConfig(f, b)
		if err != nil {
			return err
		}
		if err := c.merge(inc); err != nil {
			return err
		}
	}
	return nil
}

// merge adds an included file's identities and vhosts to c, keeping
// where each came from for errors.
func (c *Config) merge(inc *Config) error {
	for _, k := range sortedKeys(inc.lines) {
		top, _, _ := strings.Cut(k, ".")
		switch top {
		case "identity", "vhost":
		case "include":
			return inc.errAt(k, "include in an included file: includes do not nest (list every pattern in %s)", c.file)
		default:
			return inc.errAt(k, "[%s] in an included file: an included file holds [identity.NAME] and [[vhost]] only; [%s] belongs in %s", top, top, c.file)
		}
	}
	if c.Identities == nil && len(inc.Identities) > 0 {
		c.Identities = map[string]Identity{}
	}
	for _, name := range sortedKeys(inc.Identities) {
		key := "identity." + name
		if _, dup := c.Identities[name]; dup {
			first := c.lines[key]
			return inc.errAt(key, "identity %q is defined twice: here and in %s:%d", name, first.file, first.line)
		}
		c.Identities[name] = inc.Identities[name]
	}
	if c.lines == nil {
		c.lines = lineIndex{}
	}
	base := len(c.VHosts)
	for k, p := range inc.lines {
		if rest, ok := strings.CutPrefix(k, "vhost."); ok {
			n, tail, _ := strings.Cut(rest, ".")
			i, err := strconv.Atoi(n)
			if err != nil {
				continue // "vhost" alone: no entry of its own
			}
			k = "vhost." + strconv.Itoa(base+i)
			if tail != "" {
				k += "." + tail
			}
		}
		c.lines[k] = p
	}
	c.VHosts = append(c.VHosts, inc.VHosts...)
	return nil
}

func (c *Config) errAt(path string, format string, args ...any) error {
	p := c.lines[path]
	file := p.file
	if file == "" {
		file = c.file
	}
	return &ConfigError{File: file, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// Defaults for the [server] table.
const (
	defaultListen        = "127.0.0.1:8080"
	defaultAdminSocket   = "status.sock" // in run_dir
	defaultPHPCGI        = "/usr/bin/php-cgi"
	defaultRunDir        = "/run/mpmd"
	defaultHeaderTimeout = 10 * time.Second
	defaultIdleTimeout   = 30 * time.Second
	defaultMaxHeader     = 64 << 10
	defaultMaxBody       = "64M"
	defaultBodyTimeout   = 20 * time.Second
	defaultBodyMinRate   = 500
	defaultSendTimeout   = 60 * time.Second
)

// check validates the whole file and fills in defaults and resolved
// identities. Every error names the file and, where it can, the line.
func (c *Config) check() error {
	s := &c.Server
	if len(s.Listen) == 0 {
		s.Listen = []string{defaultListen}
	}
	for i, l := range s.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return c.errAt("server.listen", "listen address %q: %v", l, err)
		}
		if slices.Contains(s.Listen[:i], l) {
			return c.errAt("server.listen", "listen address %q given twice", l)
		}
	}
	if err := c.checkTLSListen(); err != nil {
		return err
	}
	if err := c.checkListeners(); err != nil {
		return err
	}
	if s.RunDir == "" {
		s.RunDir = defaultRunDir
	}
	if s.CgroupName == "" {
		s.CgroupName = cgroup.RootParentName
	}
	if err := cgroup.CheckName(s.CgroupName); err != nil {
		return c.errAt("server.cgroup_name", "cgroup_name %q: %v", s.CgroupName, err)
	}
	if !filepath.IsAbs(s.RunDir) {
		return c.errAt("server.run_dir", "run_dir %q is not an absolute path", s.RunDir)
	}
	if err := c.checkAdmin(); err != nil {
		return err
	}
	if s.Multiplexers <= 0 {
		s.Multiplexers = 2
	}
	if s.PHPCGI == "" {
		s.PHPCGI = defaultPHPCGI
	}
	if s.HeaderTimeout == 0 {
		s.HeaderTimeout = Duration(defaultHeaderTimeout)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = Duration(defaultIdleTimeout)
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = defaultMaxHeader
	}
	if s.BodyTimeout == 0 {
		s.BodyTimeout = Duration(defaultBodyTimeout)
	}
	if s.BodyMinRate == 0 {
		s.BodyMinRate = defaultBodyMinRate
	}
	if s.BodyMinRate < 0 {
		return c.errAt("server.body_min_rate", "body_min_rate %d is negative", s.BodyMinRate)
	}
	if s.SendTimeout == 0 {
		s.SendTimeout = Duration(defaultSendTimeout)
	}
	if s.MaxBodyBytes == "" {
		s.MaxBodyBytes = defaultMaxBody
	}
	if n, err := parseSize(s.MaxBodyBytes); err != nil || n == 0 || n == privdrop.RlimInfinity || n > 1<<40 {
		return c.errAt("server.max_body_bytes", "max_body_bytes %q: want a size such as \"64M\" (at most 1024G)", s.MaxBodyBytes)
	} else {
		s.maxBody = int64(n)
	}
	switch s.UnknownHost {
	case 0:
		s.UnknownHost = 421
	case 404, 421:
	default:
		return c.errAt("server.unknown_host_status", "unknown_host_status %d: use 421 or 404", s.UnknownHost)
	}
	policy := c.policy()
	if s.MultiplexerUser != "" && os.Geteuid() == 0 {
		if _, err := privdrop.Resolve(s.MultiplexerUser, s.MultiplexerGroup, policy); err != nil {
			return c.errAt("server.multiplexer_user", "multiplexer_user: %v", err)
		}
	}

	if c.Identities == nil {
		c.Identities = map[string]Identity{}
	}
	uids := map[uint32]string{} // identity by uid: one uid is one tenant
	for _, name := range sortedKeys(c.Identities) {
		id := c.Identities[name]
		where := "identity." + name
		if strings.HasPrefix(name, implicitPrefix) {
			return c.errAt(where, "identity name %q: names starting with %q are mpmd's own, for vhosts that set user and group", name, implicitPrefix)
		}
		if id.User == "" {
			return c.errAt(where, "identity %q has no user", name)
		}
		r, err := privdrop.Resolve(id.User, id.Group, policy)
		if err != nil {
			return c.errAt(where+".user", "identity %q: %v", name, err)
		}
		if err := cgroup.CheckName(name); err != nil {
			return c.errAt(where, "identity name %q cannot name its cgroup: %v", name, err)
		}
		if id.limits, err = id.cgroupLimits(); err != nil {
			return c.errAt(where, "identity %q: %v", name, err)
		}
		if other, dup := uids[r.UID]; dup {
			return c.errAt(where+".user", "identities %q and %q both run as uid %d: one uid is one tenant (its processes can signal each other); use one identity", other, name, r.UID)
		}
		uids[r.UID] = name
		r.Name = name
		r.Chroot, r.Nice = id.Chroot, id.Nice
		if id.Umask != "" {
			u, err := strconv.ParseUint(id.Umask, 8, 32)
			if err != nil || u > 0o777 {
				return c.errAt(where+".umask", "identity %q: umask %q is not an octal mode like \"027\"", name, id.Umask)
			}
			r.Umask = os.FileMode(u)
		}
		rl, err := parseRlimits(id.Rlimits)
		if err != nil {
			return c.errAt(where+".rlimits", "identity %q: %v", name, err)
		}
		r.Rlimits = rl
		if err := belowOwnLimits(rl); err != nil {
			return c.errAt(where+".rlimits", "identity %q: %v", name, err)
		}
		for _, l := range []struct {
			key   string
			paths []string
		}{{"read", id.Read}, {"write", id.Write}} {
			for _, p := range l.paths {
				if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
					return c.errAt(where+"."+l.key, "identity %q: %s path %q is not an absolute, clean path below /", name, l.key, p)
				}
			}
		}
		if err := policy.Check(r); err != nil {
			return c.errAt(where, "identity %q: %v", name, err)
		}
		if _, err := c.poolFor(name, id); err != nil {
			return c.errAt(where+".pool", "identity %q: %v", name, err)
		}
		if _, err := c.phpPoolFor(id); err != nil {
			return c.errAt(where+".pool", "identity %q: %v", name, err)
		}
		id.resolved = r
		c.Identities[name] = id
	}

	if len(c.VHosts) == 0 {
		return &ConfigError{File: c.file, Msg: "no [[vhost]] entries: nothing to serve"}
	}
	for i := range c.VHosts {
		if err := c.checkVHost(i, policy, uids); err != nil {
			return err
		}
	}
	return c.buildRouting()
}

// implicitPrefix starts the names of the identities made for vhosts that
// name a user and group (itk style) instead of an identity.
const implicitPrefix = "uid-"

// checkVHost checks vhost i, fills in its defaults and normalized names,
// and gives an itk-style vhost its implicit identity.
func (c *Config) checkVHost(i int, policy privdrop.Policy, uids map[uint32]string) error {
	s := &c.Server
	v := &c.VHosts[i]
	where := fmt.Sprintf("vhost.%d", i)
	if v.ServerName == "" {
		return c.errAt(where, "vhost #%d has no server_name", i+1)
	}
	if p := c.lines[where]; p.file != "" {
		v.where = fmt.Sprintf("%s:%d", p.file, p.line)
	} else {
		v.where = fmt.Sprintf("%s:%d", c.file, p.line)
	}
	v.names = nil
	for j, n := range append([]string{v.ServerName}, v.Aliases...) {
		key := where + ".server_name"
		if j > 0 {
			key = where + ".aliases"
		}
		norm, err := vhostroute.NormalizePattern(n)
		if err != nil {
			var he *vhostroute.HostError
			if errors.As(err, &he) {
				return c.errAt(key, "vhost %q: name %q: %s", v.ServerName, n, he.Reason)
			}
			return c.errAt(key, "vhost %q: name %q: %v", v.ServerName, n, err)
		}
		if k := slices.Index(v.names, norm); k >= 0 {
			return c.errAt(key, "vhost %q: name %q is the same name as %q", v.ServerName, n, append([]string{v.ServerName}, v.Aliases...)[k])
		}
		v.names = append(v.names, norm)
	}
	if v.DocumentRoot == "" {
		return c.errAt(where, "vhost %q has no document_root", v.ServerName)
	}
	if !filepath.IsAbs(v.DocumentRoot) {
		return c.errAt(where+".document_root", "vhost %q: document_root %q is not an absolute path", v.ServerName, v.DocumentRoot)
	}
	switch {
	case v.Identity != "" && (v.User != "" || v.Group != ""):
		return c.errAt(where, "vhost %q sets both identity and user/group: use one", v.ServerName)
	case v.Identity != "":
		if _, ok := c.Identities[v.Identity]; !ok || strings.HasPrefix(v.Identity, implicitPrefix) {
			return c.errAt(where+".identity", "vhost %q: identity %q is not defined (define [identity.%s])", v.ServerName, v.Identity, v.Identity)
		}
	case v.User != "":
		// itk style: one implicit identity per uid and gid, however
		// they are spelled ("a-b" and "a"/"b" are not confused, nor
		// "alice" and "2001" the same).
		r, err := privdrop.Resolve(v.User, v.Group, policy)
		if err != nil {
			return c.errAt(where+".user", "vhost %q: %v", v.ServerName, err)
		}
		name := fmt.Sprintf("%s%d-gid-%d", implicitPrefix, r.UID, r.GID)
		if _, ok := c.Identities[name]; !ok {
			if other, dup := uids[r.UID]; dup {
				return c.errAt(where+".user", "vhost %q: user %q is uid %d, which identity %q runs as: set identity = %q (one uid is one tenant)", v.ServerName, v.User, r.UID, other, other)
			}
			uids[r.UID] = name
			r.Name = name
			c.Identities[name] = Identity{User: v.User, Group: v.Group, resolved: r}
		}
		v.Identity = name
	default:
		return c.errAt(where, "vhost %q has neither identity nor user", v.ServerName)
	}
	if v.AccessLog != "" {
		// Refused here, by -check and by a reload, rather than when the
		// master opens it as root.
		if err := checkLogPath(v.AccessLog); err != nil {
			return c.errAt(where+".access_log", "vhost %q: access_log: %v", v.ServerName, err)
		}
	}
	if v.MaxClients < 0 {
		return c.errAt(where+".max_clients", "vhost %q: max_clients %d is negative", v.ServerName, v.MaxClients)
	}
	if len(v.Index) == 0 {
		v.Index = []string{"index.php", "index.html", "index.htm"}
		if !v.PHP {
			v.Index = v.Index[1:]
		}
	}
	if err := c.checkVHostPHP(i); err != nil {
		return err
	}
	if err := c.checkVHostPaths(i); err != nil {
		return err
	}
	if len(v.Listen) == 0 {
		v.Listen = c.defaultListeners(v)
	}
	for _, l := range v.Listen {
		if !slices.Contains(s.Listen, l) && !slices.Contains(s.TLSListen, l) {
			return c.errAt(where+".listen", "vhost %q: listen %q is not one of server.listen %v or server.tls_listen %v", v.ServerName, l, s.Listen, s.TLSListen)
		}
	}
	return c.checkVHostTLS(i)
}

// checkVHostPaths checks vhost i's fallback and deny list.
func (c *Config) checkVHostPaths(i int) error {
	v := &c.VHosts[i]
	where := fmt.Sprintf("vhost.%d", i)
	if f := v.Fallback; f != "" {
		if !strings.HasPrefix(f, "/") || path.Clean(f) != f || strings.ContainsAny(f, "?#") || strings.HasSuffix(f, "/") {
			return c.errAt(where+".fallback", "vhost %q: fallback %q is not a file's URL path such as \"/index.php\" (the query string is the request's)", v.ServerName, f)
		}
	}
	for _, w := range v.Writable {
		if filepath.IsAbs(w) || w == "" || !filepath.IsLocal(w) {
			return c.errAt(where+".writable", "vhost %q: writable %q is not a path inside document_root such as \"wp-content/uploads\"", v.ServerName, w)
		}
	}
	for _, d := range v.Deny {
		if _, err := path.Match(strings.TrimSuffix(d, "/"), ""); err != nil || d == "" || d == "/" {
			return c.errAt(where+".deny", "vhost %q: deny %q is not a path pattern such as \"/private/\", \"/vendor/*\" or \"*.sql\"", v.ServerName, d)
		}
	}
	return nil
}

func (id *Identity) landlock() bool { return id.Landlock == nil || *id.Landlock }
func (id *Identity) seccomp() bool  { return id.Seccomp == nil || *id.Seccomp }

// htaccess reports whether the vhost applies .htaccess files (the
// default).
func (v *VHost) htaccess() bool { return v.Htaccess == nil || *v.Htaccess }

// checkVHostPHP checks vhost i's PHP settings and fills in their
// defaults.
func (c *Config) checkVHostPHP(i int) error {
	v := &c.VHosts[i]
	where := fmt.Sprintf("vhost.%d", i)
	if v.PHPMaxRequests != nil {
		return c.errAt(where+".php_max_requests", "vhost %q: php_max_requests moved to the identity's pool ([pool] or [identity.NAME.pool]): PHP-FPM's processes serve all the identity's vhosts", v.ServerName)
	}
	switch v.PHPMode {
	case "":
		v.PHPMode = phpModeCGI
	case phpModeCGI, phpModeFPM:
	case "fastcgi":
		return c.errAt(where+".php_mode", "vhost %q: php_mode \"fastcgi\" is now \"fpm\": PHP-FPM run as the identity, with a pool of PHP processes that all its workers share", v.ServerName)
	default:
		return c.errAt(where+".php_mode", "vhost %q: php_mode %q: use \"cgi\" (php-cgi per request) or \"fpm\" (PHP-FPM run as the identity)", v.ServerName, v.PHPMode)
	}
	if len(v.PHPAdminValue) > 0 && v.PHPMode != phpModeFPM {
		return c.errAt(where+".php_admin_value", "vhost %q: php_admin_value needs php_mode = \"fpm\": php-cgi lets a script override any value (use php_value for a default)", v.ServerName)
	}
	for _, m := range []struct {
		key string
		m   map[string]string
	}{{"php_admin_value", v.PHPAdminValue}, {"php_value", v.PHPValue}, {"env", v.Env}} {
		for k, val := range m.m {
			if err := fpm.CheckValue(k, val); err != nil {
				return c.errAt(where+"."+m.key, "vhost %q: %s: %v", v.ServerName, m.key, err)
			}
		}
	}
	if v.SendmailPath != "" {
		if err := fpm.CheckValue("sendmail_path", v.SendmailPath); err != nil {
			return c.errAt(where+".sendmail_path", "vhost %q: %v", v.ServerName, err)
		}
	}
	if len(v.PHPExtensions) == 0 {
		v.PHPExtensions = []string{".php"}
	}
	for k, e := range v.PHPExtensions {
		e = strings.ToLower(e)
		if !strings.HasPrefix(e, ".") || len(e) < 2 || strings.ContainsAny(e, "/ \t\"$;=") {
			return c.errAt(where+".php_extensions", "vhost %q: php_extensions: %q is not an extension such as \".php\"", v.ServerName, v.PHPExtensions[k])
		}
		v.PHPExtensions[k] = e
	}
	if v.PHPErrorLog != "" && !filepath.IsAbs(v.PHPErrorLog) {
		return c.errAt(where+".php_error_log", "vhost %q: php_error_log %q is not an absolute path", v.ServerName, v.PHPErrorLog)
	}
	if !v.PHP {
		return nil
	}
	id := c.Identities[v.Identity]
	if id.Chroot != "" && (v.PHPMode == phpModeFPM || len(v.PHPValue) > 0 || v.PHPErrorLog != "" || v.SendmailPath != "") {
		return c.errAt(where+".php_mode", "vhost %q: identity %q is chrooted: php_mode \"fpm\", php_value, php_error_log and sendmail_path need files the jail does not have (use php_mode \"cgi\" and settings in the jail's own php.ini)", v.ServerName, v.Identity)
	}
	if v.PHPErrorLog == "" && id.Chroot == "" {
		// The identity's own file, which its PHP writes and its
		// owner reads; never the daemon's log, shared by every site.
		v.PHPErrorLog = filepath.Join(c.Server.RunDir, "php", v.Identity, strings.TrimPrefix(v.names[0], "*.")+".error.log")
	}
	switch v.PHPMode {
	case phpModeCGI:
		if v.PHPCGI == "" {
			v.PHPCGI = c.Server.PHPCGI
		}
		if !filepath.IsAbs(v.PHPCGI) {
			return c.errAt(where+".php_cgi", "vhost %q: php_cgi %q is not an absolute path", v.ServerName, v.PHPCGI)
		}
	case phpModeFPM:
		if v.PHPFPM == "" {
			v.PHPFPM = c.Server.PHPFPM
		}
		if v.PHPFPM == "" {
			p, err := fpm.Find()
			if err != nil {
				return c.errAt(where+".php_mode", "vhost %q: %v", v.ServerName, err)
			}
			v.PHPFPM = p
		}
		if !filepath.IsAbs(v.PHPFPM) {
			return c.errAt(where+".php_fpm", "vhost %q: php_fpm %q is not an absolute path", v.ServerName, v.PHPFPM)
		}
	}
	return nil
}

// buildRouting makes the routing description of the configuration and
// builds its table, which is how a name claimed twice on a listener, or
// two defaults, are found: checking a configuration builds the very table
// the multiplexers and workers will build.
func (c *Config) buildRouting() error {
	r := routing{}
	pools := map[string]int{}
	for _, v := range c.VHosts {
		p, ok := pools[v.Identity]
		if !ok {
			p = len(r.Pools)
			pools[v.Identity] = p
			r.Pools = append(r.Pools, v.Identity)
		}
		r.VHosts = append(r.VHosts, routeVHost{Where: v.where, Names: v.names, Listeners: v.Listen, Default: v.Default, Identity: v.Identity, Pool: p})
	}
	if _, err := r.table(); err != nil {
		return &ConfigError{File: c.file, Msg: fmt.Sprintf("routing: %v", err)}
	}
	c.routing = r
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkAdmin checks where the status page listens: "off"; by default a
// unix socket in run_dir that only root can connect to; "unix:PATH"; or a
// TCP address, which anyone who reaches it could read (every site's pools,
// what each busy worker serves): only with admin_token, which clients
// send as "Authorization: Bearer TOKEN".
func (c *Config) checkAdmin() error {
	s := &c.Server
	switch {
	case s.Admin == "off":
		return nil
	case s.Admin == "":
		s.Admin = "unix:" + filepath.Join(s.RunDir, defaultAdminSocket)
	case strings.HasPrefix(s.Admin, "unix:"):
		if !filepath.IsAbs(strings.TrimPrefix(s.Admin, "unix:")) {
			return c.errAt("server.admin", "admin %q: the socket path must be absolute", s.Admin)
		}
	default:
		if _, _, err := net.SplitHostPort(s.Admin); err != nil {
			return c.errAt("server.admin", "admin address %q: %v (or \"unix:/path\", or \"off\")", s.Admin, err)
		}
		if len(s.AdminToken) < 16 {
			return c.errAt("server.admin", "admin address %q is a TCP address: set admin_token (16 characters or more; clients send \"Authorization: Bearer TOKEN\"), or leave admin unset for a unix socket only root can reach", s.Admin)
		}
	}
	return nil
}

func (c *Config) policy() privdrop.Policy {
	return privdrop.Policy{MinUID: c.Server.MinUID, MinGID: c.Server.MinUID}
}

// poolFor builds the pool settings of an identity: its overrides over
// [pool] over package pool's defaults.
func (c *Config) poolFor(name string, id Identity) (pool.Config, error) {
	pc := pool.Config{Name: name, MaxActive: defaultPoolMax, PerWorker: defaultPoolConnections, MaxRequests: defaultPoolMaxRequests}
	for _, layer := range []PoolConfig{c.Pool, id.Pool} {
		if layer.MinSpare != nil || layer.MaxSpare != nil {
			return pc, errors.New("min_spare and max_spare are gone: a worker now serves many connections at once (connections), the identity runs up to workers of them by load, and max bounds its requests in progress")
		}
		set := func(dst *int, v *int) {
			if v != nil {
				*dst = *v
			}
		}
		setd := func(dst *time.Duration, v *Duration) {
			if v != nil {
				*dst = time.Duration(*v)
			}
		}
		set(&pc.Min, layer.Min)
		set(&pc.Max, layer.Workers)
		set(&pc.MaxActive, layer.Max)
		set(&pc.PerWorker, layer.Connections)
		set(&pc.MaxRequests, layer.MaxRequests)
		setd(&pc.IdleTimeout, layer.IdleTimeout)
		setd(&pc.ExpireTimeout, layer.ExpireTimeout)
		setd(&pc.QueueTimeout, layer.QueueTimeout)
	}
	pc.Role = roleWorker
	switch {
	case pc.MaxActive < 1:
		return pc, fmt.Errorf("max %d: want at least 1 request in progress at once", pc.MaxActive)
	case pc.PerWorker < 2:
		return pc, fmt.Errorf("connections %d: want at least 2 connections per worker", pc.PerWorker)
	}
	return pc, pc.Check()
}

// lineIndex maps a table or key path ("server.listen", "identity.alice",
// "vhost.0.document_root") to the file and line it is on, for error
// messages.
type lineIndex map[string]srcPos

// srcPos is a place in a configuration file.
type srcPos struct {
	file string
	line int
}

func indexLines(file string, b []byte) lineIndex {
	idx := lineIndex{}
	var p unstable.Parser
	p.Reset(b)
	var table []string
	arrays := map[string]int{}
	keyPath := func(n *unstable.Node) []string {
		var parts []string
		it := n.Key()
		for it.Next() {
			parts = append(parts, string(it.Node().Data))
		}
		return parts
	}
	line := func(n *unstable.Node) int {
		if d := n.Data; len(d) > 0 {
			return p.Shape(p.Range(d)).Start.Line
		}
		return 0
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyPath(e)
			if e.Kind == unstable.ArrayTable {
				k := strings.Join(table, ".")
				n := arrays[k]
				arrays[k]++
				table = append(table, strconv.Itoa(n))
			}
			first := e.Key()
			if first.Next() {
				if l := line(first.Node()); l > 0 {
					idx[strings.Join(table, ".")] = srcPos{file, l}
				}
			}
		case unstable.KeyValue:
			k := keyPath(e)
			it := e.Key()
			if it.Next() {
				if l := line(it.Node()); l > 0 {
					idx[strings.Join(append(slices.Clone(table), k...), ".")] = srcPos{file, l}
				}
			}
		}
	}
	return idx
}

// parseRlimits turns {nproc = 64, as = "512M"} into resource limits (soft
// and hard alike). Values are numbers, sizes with K, M or G, or
// "unlimited".
func parseRlimits(m map[string]any) ([]privdrop.Rlimit, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []privdrop.Rlimit
	for _, k := range names {
		res, err := privdrop.ParseRlimitName(k)
		if err != nil {
			return nil, err
		}
		if res == unix.RLIMIT_AS {
			// The Go runtime reserves far more address space than it
			// uses; under an address-space limit a worker cannot start.
			return nil, errors.New(`rlimit "as" would stop the Go workers from starting (they reserve address space they never use); limit "data" instead, which counts memory in use`)
		}
		var v uint64
		switch x := m[k].(type) {
		case int64:
			if x < 0 {
				return nil, fmt.Errorf("rlimit %s = %d is negative", k, x)
			}
			v = uint64(x)
		case string:
			if v, err = parseSize(x); err != nil {
				return nil, fmt.Errorf("rlimit %s = %q: %v", k, x, err)
			}
		default:
			return nil, fmt.Errorf("rlimit %s = %v: want a number, a size like \"512M\" or \"unlimited\"", k, x)
		}
		out = append(out, privdrop.Rlimit{Resource: res, Cur: v, Max: v})
	}
	return out, nil
}

// cgroupLimits turns the identity's cgroup keys into limits, refusing a
// value the kernel would, with the key and the value in the error.
func (id *Identity) cgroupLimits() (cgroup.Limits, error) {
	var l cgroup.Limits
	if id.MemoryMax != "" {
		n, err := parseSize(id.MemoryMax)
		switch {
		case err != nil:
			return l, fmt.Errorf("memory_max = %q: %v", id.MemoryMax, err)
		case n == privdrop.RlimInfinity:
			// No limit, as without the key.
		case n < 1<<20:
			return l, fmt.Errorf("memory_max = %q is below 1M: the workers alone need more", id.MemoryMax)
		case n > 1<<62:
			return l, fmt.Errorf("memory_max = %q is too large", id.MemoryMax)
		default:
			l.MemoryMax = int64(n)
		}
	}
	if id.PidsMax < 0 || id.PidsMax > 1<<22 {
		return l, fmt.Errorf("pids_max = %d is outside 1..%d (0 or no key: no limit)", id.PidsMax, 1<<22)
	}
	l.PidsMax = id.PidsMax
	if id.CPUWeight < 0 || id.CPUWeight > 10000 {
		return l, fmt.Errorf("cpu_weight = %d is outside 1..10000 (100 is the default share)", id.CPUWeight)
	}
	l.CPUWeight = id.CPUWeight
	if id.CPUMax != "" && id.CPUMax != "max" {
		pct, ok := strings.CutSuffix(id.CPUMax, "%")
		n, err := strconv.ParseUint(pct, 10, 32)
		if !ok || err != nil || n < 1 || n > 100000 {
			return l, fmt.Errorf("cpu_max = %q is not a percentage of one CPU from \"1%%\" to \"100000%%\" (\"50%%\" is half a CPU, \"200%%\" two)", id.CPUMax)
		}
		// Quota per 100ms period: 1% is 1ms, the kernel's least quota.
		l.CPUMax = fmt.Sprintf("%d 100000", n*1000)
	}
	return l, nil
}

func parseSize(s string) (uint64, error) {
	if s == "unlimited" {
		return privdrop.RlimInfinity, nil
	}
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New("not a number, a size like \"512M\", or \"unlimited\"")
	}
	return n * mult, nil
}

// belowOwnLimits checks that no limit is above the hard limit mpmd itself
// runs with: a site's worker sets its limits without CAP_SYS_RESOURCE
// (it gets only what the drop needs), so it could only fail to start,
// again and again.
func belowOwnLimits(rl []privdrop.Rlimit) error {
	for _, r := range rl {
		var own unix.Rlimit
		if err := unix.Getrlimit(r.Resource, &own); err != nil {
			continue
		}
		if r.Max > own.Max {
			return fmt.Errorf("rlimits %s = %d is above the hard limit mpmd itself runs with (%d): a site can be given less than mpmd has, not more (raise mpmd's own, e.g. LimitNOFILE= in its unit)", privdrop.RlimitName(r.Resource), r.Max, own.Max)
		}
	}
	return nil
}

// negativeNice names an identity that runs above normal priority, for
// which the master must keep CAP_SYS_NICE; "" when there is none.
func (c *Config) negativeNice() string {
	for _, name := range slices.Sorted(maps.Keys(c.Identities)) {
		if id := c.Identities[name]; id.resolved.Nice < 0 {
			return fmt.Sprintf("identity %q: nice %d", name, id.resolved.Nice)
		}
	}
	return ""
}
