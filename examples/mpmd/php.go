package main

// PHP, as the worker's identity, in one of two modes per vhost:
//
//   - cgi: php-cgi started for each request (internal/cgirun), in a
//     process group of its own that ends with the request. Its settings
//     (php_value, and the identity's session and temporary directories)
//     are in an ini file the worker writes into the identity's private
//     directory and names in PHP_INI_SCAN_DIR: never on a command line,
//     where every user's ps would show them.
//   - fpm: PHP-FPM, run as the identity by a "php" process the master
//     starts for it (php_fpm.go), with a pool per vhost; the worker
//     speaks FastCGI (internal/fcgi) to the pool's socket, in the
//     identity's private directory.
//
// Both get the environment built by internal/cgienv, and PHP's response
// goes through internal/cgiresp.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gompm/mpm/internal/cgienv"
	"github.com/gompm/mpm/internal/cgiresp"
	"github.com/gompm/mpm/internal/cgirun"
	"github.com/gompm/mpm/internal/fcgi"
)

// phpSettings are the php.ini settings of vhost v: the identity's own
// session and temporary directories (defaults), its error log, and its
// php_value and php_admin_value settings: as php_value (defaults a script
// may change) or php_admin_value (not), in two maps.
func phpSettings(v *VHost, defaults map[string]string) (values, admin map[string]string) {
	values, admin = maps.Clone(defaults), maps.Clone(v.PHPAdminValue)
	if values == nil {
		values = map[string]string{}
	}
	if admin == nil {
		admin = map[string]string{}
	}
	maps.Copy(values, v.PHPValue)
	if v.PHPErrorLog != "" {
		admin["error_log"] = v.PHPErrorLog
		admin["log_errors"] = "On"
	}
	if v.SendmailPath != "" {
		admin["sendmail_path"] = v.SendmailPath
	}
	return values, admin
}

// cgiValues are php-cgi's settings for v: it has no admin level, so all
// are values.
func cgiValues(v *VHost, defaults map[string]string) map[string]string {
	values, admin := phpSettings(v, defaults)
	maps.Copy(values, admin)
	return values
}

// phpBackend runs a PHP script for a request.
type phpBackend interface {
	serve(w http.ResponseWriter, r *http.Request, env map[string]string) error
}

// cgiPHP runs php-cgi per request.
type cgiPHP struct {
	runner cgirun.Runner
	iniDir string // PHP_INI_SCAN_DIR, after the system's own
	env    []string
}

// newCGIPHP sets up vhost v's php-cgi: its ini file, in dir (private to
// the identity), with values.
func newCGIPHP(v *workerVHost, dir string, values map[string]string, procs *cgirun.Group, log *slog.Logger) (*cgiPHP, error) {
	iniDir := filepath.Join(dir, fmt.Sprintf("cgi-%d", v.N))
	if err := os.MkdirAll(iniDir, 0o700); err != nil {
		return nil, fmt.Errorf("vhost %s: php-cgi settings: %w", v.ServerName, err)
	}
	var b strings.Builder
	b.WriteString("; written by mpmd for this vhost's php-cgi\n")
	for _, k := range slices.Sorted(maps.Keys(values)) {
		fmt.Fprintf(&b, "%s = \"%s\"\n", k, values[k])
	}
	tmp := filepath.Join(iniDir, "mpmd.ini.new")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("vhost %s: php-cgi settings: %w", v.ServerName, err)
	}
	if err := os.Rename(tmp, filepath.Join(iniDir, "mpmd.ini")); err != nil {
		return nil, fmt.Errorf("vhost %s: php-cgi settings: %w", v.ServerName, err)
	}
	p := &cgiPHP{iniDir: iniDir}
	p.runner = cgirun.Runner{Path: v.PHPCGI, Group: procs, Stderr: phpStderr(log, v.ServerName)}
	return p, nil
}

func (p *cgiPHP) serve(w http.ResponseWriter, r *http.Request, env map[string]string) error {
	list := cgienv.List(env)
	// A leading ':' keeps the system's scan directory (the extensions
	// Debian enables) and adds this vhost's after it.
	list = append(list, "PHP_INI_SCAN_DIR=:"+p.iniDir, "PATH=/usr/local/bin:/usr/bin:/bin")
	p.runner.Dir = filepath.Dir(env["SCRIPT_FILENAME"])
	return p.runner.Serve(w, r, list)
}

// fpmPHP sends requests to the vhost's PHP-FPM pool.
type fpmPHP struct {
	client  fcgi.Client
	socket  string
	timeout time.Duration // how long a request waits for FPM to listen
}

func newFPMPHP(v *workerVHost, socket string, wait time.Duration, log *slog.Logger) *fpmPHP {
	p := &fpmPHP{socket: socket, timeout: wait}
	p.client = fcgi.Client{
		Dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		Stderr: phpStderr(log, v.ServerName),
	}
	return p
}

func (p *fpmPHP) serve(w http.ResponseWriter, r *http.Request, env map[string]string) error {
	var body = r.Body
	if r.ContentLength <= 0 {
		body = nil
	}
	// FPM may be starting (with the pool's first worker), or starting
	// again: a request that reached no byte of it waits and tries again.
	// One that did is never sent twice (it may have run: a script that
	// appended to a file and died would append twice).
	deadline := time.Now().Add(p.timeout)
	wait := 5 * time.Millisecond
	for {
		out := cgiresp.NewWriter(w)
		err := p.client.Do(r.Context(), env, body, max(r.ContentLength, 0), out)
		if errors.Is(err, fcgi.ErrNotSent) && time.Now().Before(deadline) && r.Context().Err() == nil {
			time.Sleep(wait)
			wait = min(2*wait, 200*time.Millisecond)
			continue
		}
		switch {
		case err == nil:
			return out.Close()
		case errors.Is(err, fcgi.ErrNotSent):
			http.Error(w, "PHP is not available; try again", http.StatusServiceUnavailable)
		case r.Context().Err() != nil:
			if !out.Started() {
				http.Error(w, "PHP did not answer in time", http.StatusGatewayTimeout)
			}
		case !out.Started():
			http.Error(w, "PHP failed", http.StatusBadGateway)
		default:
			// The response has begun and cannot be turned into an
			// error page: end the connection, so the client sees it
			// cut short rather than complete.
			out.Close()
			panic(http.ErrAbortHandler)
		}
		return fmt.Errorf("php-fpm %s: %w", p.socket, err)
	}
}

// phpStderr logs PHP's stderr lines.
func phpStderr(log *slog.Logger, vhost string) func([]byte) {
	return func(line []byte) {
		log.Warn("php", "vhost", vhost, "stderr", strings.TrimRight(string(line), "\n"))
	}
}
