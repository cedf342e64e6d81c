package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/privdrop"
)

// Config is mpmd's configuration file. See README.md for every key.
type Config struct {
	Server     Server              `toml:"server"`
	Pool       PoolConfig          `toml:"pool"`
	Identities map[string]Identity `toml:"identity"`
	VHosts     []VHost             `toml:"vhost"`

	file  string
	lines lineIndex
	exe   string // the program children run; "" means this one
}

// Server holds the daemon-wide settings.
type Server struct {
	Listen           []string `toml:"listen"`
	TLSListen        []string `toml:"tls_listen"`
	Admin            string   `toml:"admin"`
	Multiplexers     int      `toml:"multiplexers"`
	MultiplexerUser  string   `toml:"multiplexer_user"`
	MultiplexerGroup string   `toml:"multiplexer_group"`
	MinUID           uint32   `toml:"min_uid"`
	MaxWorkers       int      `toml:"max_workers"`
	PHPCGI           string   `toml:"php_cgi"`
	RunDir           string   `toml:"run_dir"`
	HeaderTimeout    Duration `toml:"header_timeout"`
	IdleTimeout      Duration `toml:"keepalive_timeout"`
	MaxHeaderBytes   int      `toml:"max_header_bytes"`
	MaxBodyBytes     string   `toml:"max_body_bytes"`

	maxBody     int64
	UnknownHost int `toml:"unknown_host_status"`
}

// PoolConfig is the [pool] table and an identity's [identity.NAME.pool]
// overrides. Unset keys take the defaults (package pool's).
type PoolConfig struct {
	Min           *int      `toml:"min"`
	MinSpare      *int      `toml:"min_spare"`
	MaxSpare      *int      `toml:"max_spare"`
	Max           *int      `toml:"max"`
	MaxRequests   *int      `toml:"max_requests"`
	IdleTimeout   *Duration `toml:"idle_timeout"`
	ExpireTimeout *Duration `toml:"expire_timeout"`
	QueueTimeout  *Duration `toml:"queue_timeout"`
}

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

	resolved privdrop.Identity
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
	PHPAdminValue  map[string]string `toml:"php_admin_value"`
	AccessLog      string            `toml:"access_log"`
	Index          []string          `toml:"index"`
	FollowSymlinks bool              `toml:"follow_symlinks"`
	TLSCertificate string            `toml:"tls_certificate"`
	TLSKey         string            `toml:"tls_key"`
	PHPMode        string            `toml:"php_mode"`         // "cgi" (default) or "fastcgi"
	PHPMaxRequests int               `toml:"php_max_requests"` // fastcgi: requests before a php-cgi child is replaced
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

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses and checks configuration text; name is used in
// errors.
func ParseConfig(name string, b []byte) (*Config, error) {
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
	c.lines = indexLines(b)
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) errAt(path string, format string, args ...any) error {
	return &ConfigError{File: c.file, Line: c.lines[path], Msg: fmt.Sprintf(format, args...)}
}

// Defaults for the [server] table.
const (
	defaultListen        = "127.0.0.1:8080"
	defaultAdmin         = "127.0.0.1:8081"
	defaultPHPCGI        = "/usr/bin/php-cgi"
	defaultRunDir        = "/run/mpmd"
	defaultHeaderTimeout = 10 * time.Second
	defaultIdleTimeout   = 30 * time.Second
	defaultMaxHeader     = 64 << 10
	defaultMaxBody       = "64M"
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
	if s.Admin == "" {
		s.Admin = defaultAdmin
	} else if s.Admin != "off" {
		if _, _, err := net.SplitHostPort(s.Admin); err != nil {
			return c.errAt("server.admin", "admin address %q: %v", s.Admin, err)
		}
	}
	if s.Multiplexers <= 0 {
		s.Multiplexers = 2
	}
	if s.PHPCGI == "" {
		s.PHPCGI = defaultPHPCGI
	}
	if s.RunDir == "" {
		s.RunDir = defaultRunDir
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
	for name, id := range c.Identities {
		where := "identity." + name
		if id.User == "" {
			return c.errAt(where, "identity %q has no user", name)
		}
		r, err := privdrop.Resolve(id.User, id.Group, policy)
		if err != nil {
			return c.errAt(where+".user", "identity %q: %v", name, err)
		}
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
		if err := policy.Check(r); err != nil {
			return c.errAt(where, "identity %q: %v", name, err)
		}
		if _, err := c.poolFor(name, id); err != nil {
			return c.errAt(where+".pool", "identity %q: %v", name, err)
		}
		id.resolved = r
		c.Identities[name] = id
	}

	if len(c.VHosts) == 0 {
		return &ConfigError{File: c.file, Msg: "no [[vhost]] entries: nothing to serve"}
	}
	seen := map[string]int{} // listener|name -> vhost index
	defaults := map[string]int{}
	for i := range c.VHosts {
		v := &c.VHosts[i]
		where := fmt.Sprintf("vhost.%d", i)
		if v.ServerName == "" {
			return c.errAt(where, "vhost #%d has no server_name", i+1)
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
			if _, ok := c.Identities[v.Identity]; !ok {
				return c.errAt(where+".identity", "vhost %q: identity %q is not defined (define [identity.%s])", v.ServerName, v.Identity, v.Identity)
			}
		case v.User != "":
			// itk style: an implicit identity per user/group pair.
			name := "user-" + v.User
			if v.Group != "" {
				name += "-" + v.Group
			}
			if _, ok := c.Identities[name]; !ok {
				r, err := privdrop.Resolve(v.User, v.Group, policy)
				if err != nil {
					return c.errAt(where+".user", "vhost %q: %v", v.ServerName, err)
				}
				r.Name = name
				c.Identities[name] = Identity{User: v.User, Group: v.Group, resolved: r}
			}
			v.Identity = name
		default:
			return c.errAt(where, "vhost %q has neither identity nor user", v.ServerName)
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
		switch v.PHPMode {
		case "":
			v.PHPMode = phpModeCGI
		case phpModeCGI, phpModeFastCGI:
		default:
			return c.errAt(where+".php_mode", "vhost %q: php_mode %q: use \"cgi\" or \"fastcgi\"", v.ServerName, v.PHPMode)
		}
		if v.PHPMaxRequests < 0 {
			return c.errAt(where+".php_max_requests", "vhost %q: php_max_requests %d is negative", v.ServerName, v.PHPMaxRequests)
		}
		if v.PHPMaxRequests == 0 {
			v.PHPMaxRequests = defaultPHPMaxRequests
		}
		for k, val := range v.PHPAdminValue {
			if k == "" || strings.ContainsAny(k, "= \n") || strings.Contains(val, "\n") {
				return c.errAt(where+".php_admin_value", "vhost %q: bad php_admin_value %q = %q", v.ServerName, k, val)
			}
		}
		listeners := v.Listen
		if len(listeners) == 0 {
			listeners = c.defaultListeners(v)
		}
		for _, l := range listeners {
			if !slices.Contains(s.Listen, l) && !slices.Contains(s.TLSListen, l) {
				return c.errAt(where+".listen", "vhost %q: listen %q is not one of server.listen %v or server.tls_listen %v", v.ServerName, l, s.Listen, s.TLSListen)
			}
			for _, n := range append([]string{v.ServerName}, v.Aliases...) {
				key := l + "|" + strings.ToLower(n)
				if j, dup := seen[key]; dup {
					return c.errAt(where, "vhost %q: name %q on %s is already used by vhost %q", v.ServerName, n, l, c.VHosts[j].ServerName)
				}
				seen[key] = i
			}
			if v.Default {
				if j, dup := defaults[l]; dup {
					return c.errAt(where+".default", "vhost %q: %s already has default vhost %q", v.ServerName, l, c.VHosts[j].ServerName)
				}
				defaults[l] = i
			}
		}
		v.Listen = listeners
		if err := c.checkVHostTLS(i); err != nil {
			return err
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
	pc := pool.Config{Name: name}
	for _, layer := range []PoolConfig{c.Pool, id.Pool} {
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
		set(&pc.MinSpare, layer.MinSpare)
		set(&pc.MaxSpare, layer.MaxSpare)
		set(&pc.Max, layer.Max)
		set(&pc.MaxRequests, layer.MaxRequests)
		setd(&pc.IdleTimeout, layer.IdleTimeout)
		setd(&pc.ExpireTimeout, layer.ExpireTimeout)
		setd(&pc.QueueTimeout, layer.QueueTimeout)
	}
	pc.Role = roleWorker
	return pc, pc.Check()
}

// lineIndex maps a table or key path ("server.listen", "identity.alice",
// "vhost.0.document_root") to the line it is on, for error messages.
type lineIndex map[string]int

func indexLines(b []byte) lineIndex {
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
					idx[strings.Join(table, ".")] = l
				}
			}
		case unstable.KeyValue:
			k := keyPath(e)
			it := e.Key()
			if it.Next() {
				if l := line(it.Node()); l > 0 {
					idx[strings.Join(append(slices.Clone(table), k...), ".")] = l
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
