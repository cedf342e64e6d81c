package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// site serves one vhost's document root: static files, and PHP through
// php-cgi when enabled. It runs in a worker, as the vhost's identity.
type site struct {
	name    string
	root    string
	docroot *os.Root // confines every lookup to the document root
	php     bool
	phpCGI  string
	phpArgs []string // -d key=value, from php_admin_value
	index   []string
	follow  bool      // follow symbolic links out of the document root
	fcgi    *phpChild // php_mode = "fastcgi": the persistent php-cgi; nil for CGI
	log     *slog.Logger
}

func newSite(v *VHost, phpCGI string, log *slog.Logger) (*site, error) {
	r, err := os.OpenRoot(v.DocumentRoot)
	if err != nil {
		return nil, fmt.Errorf("vhost %s: open document root: %w", v.ServerName, err)
	}
	s := &site{name: v.ServerName, root: v.DocumentRoot, docroot: r, php: v.PHP, phpCGI: phpCGI, index: v.Index, follow: v.FollowSymlinks, log: log}
	keys := make([]string, 0, len(v.PHPAdminValue))
	for k := range v.PHPAdminValue {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s.phpArgs = append(s.phpArgs, "-d", k+"="+v.PHPAdminValue[k])
	}
	if v.PHP && v.PHPMode == phpModeFastCGI {
		s.fcgi = newPHPChild(phpCGI, s.phpArgs, v.PHPMaxRequests, v.ServerName, log)
	}
	return s, nil
}

func (s *site) close() {
	s.docroot.Close()
	if s.fcgi != nil {
		s.fcgi.close()
	}
}

// ServeHTTP serves a request for this site.
func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !(s.php && r.Method == http.MethodPost) {
		w.Header().Set("Allow", "GET, HEAD"+map[bool]string{true: ", POST"}[s.php])
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") || strings.IndexByte(upath, 0) >= 0 {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	clean := path.Clean(upath)
	rel := strings.TrimPrefix(clean, "/")
	if rel == "" {
		rel = "."
	}

	// A PHP script may be followed by PATH_INFO: /app.php/extra/path.
	if s.php {
		if script, info, ok := s.splitPHP(rel); ok {
			s.servePHP(w, r, script, info)
			return
		}
	}
	fi, err := s.stat(rel)
	if err != nil {
		s.notFound(w, r, err)
		return
	}
	if fi.IsDir() {
		if !strings.HasSuffix(upath, "/") {
			http.Redirect(w, r, upath+"/", http.StatusMovedPermanently)
			return
		}
		for _, idx := range s.index {
			p := path.Join(rel, idx)
			if ifi, err := s.stat(p); err == nil && !ifi.IsDir() {
				if s.php && strings.HasSuffix(idx, ".php") {
					s.servePHP(w, r, p, "")
					return
				}
				s.serveFile(w, r, p)
				return
			}
		}
		// No directory listings: they show what the site did not mean
		// to publish.
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if strings.HasSuffix(rel, ".php") {
		if !s.php {
			// PHP is off for this site: its scripts are not run, and
			// their source (database passwords, often) is not shown.
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		s.servePHP(w, r, rel, "")
		return
	}
	s.serveFile(w, r, rel)
}

// stat looks rel up inside the document root. Through os.Root, no path
// and no symbolic link can lead outside it, unless the vhost allows
// following links.
func (s *site) stat(rel string) (fs.FileInfo, error) {
	if s.follow {
		return os.Stat(filepath.Join(s.root, rel))
	}
	return s.docroot.Stat(rel)
}

func (s *site) open(rel string) (*os.File, error) {
	if s.follow {
		return os.Open(filepath.Join(s.root, rel))
	}
	return s.docroot.Open(rel)
}

// splitPHP finds the first path element ending in .php that is a regular
// file, and returns it and the rest as PATH_INFO.
func (s *site) splitPHP(rel string) (script, info string, ok bool) {
	parts := strings.Split(rel, "/")
	for i, p := range parts[:len(parts)-1] {
		if !strings.HasSuffix(p, ".php") {
			continue
		}
		script = strings.Join(parts[:i+1], "/")
		if fi, err := s.stat(script); err == nil && fi.Mode().IsRegular() {
			return script, "/" + strings.Join(parts[i+1:], "/"), true
		}
		return "", "", false
	}
	return "", "", false
}

func (s *site) notFound(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.NotFound(w, r)
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, "forbidden", http.StatusForbidden)
	default:
		// Includes a symbolic link that leads out of the document root.
		s.log.Info("refused path", "vhost", s.name, "path", r.URL.Path, "err", err)
		http.Error(w, "forbidden", http.StatusForbidden)
	}
}

func (s *site) serveFile(w http.ResponseWriter, r *http.Request, rel string) {
	f, err := s.open(rel)
	if err != nil {
		s.notFound(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	// ServeContent handles content types, ranges and conditional
	// requests.
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// servePHP runs script through php-cgi as this worker's identity.
func (s *site) servePHP(w http.ResponseWriter, r *http.Request, script, pathInfo string) {
	fi, err := s.stat(script)
	if err != nil {
		s.notFound(w, r, err) // a missing script is a 404, not a php-cgi error
		return
	}
	if !fi.Mode().IsRegular() {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if r.ContentLength < 0 {
		// A body of unknown length (chunked). PHP reads CONTENT_LENGTH
		// bytes of its input, so it would get none of it: lost without a
		// word in FastCGI mode, a bare 400 from net/http/cgi. 411 tells
		// the client what to send instead.
		w.Header().Set("Connection", "close")
		http.Error(w, "a request body for PHP needs a Content-Length header (chunked bodies are not passed to PHP)", http.StatusLengthRequired)
		return
	}
	filename := filepath.Join(s.root, script)
	scriptName := "/" + script
	https := "off"
	if r.TLS != nil {
		https = "on"
	}
	serverName, port := r.Host, ""
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		serverName, port = h, p
	}
	env := []string{
		"SCRIPT_FILENAME=" + filename,
		"SCRIPT_NAME=" + scriptName,
		"REDIRECT_STATUS=200", // php-cgi's force-cgi-redirect check
		"SERVER_NAME=" + serverName,
		"DOCUMENT_ROOT=" + s.root,
		"HTTPS=" + https,
		"SERVER_SOFTWARE=mpmd",
	}
	if port != "" {
		env = append(env, "SERVER_PORT="+port)
	}
	env = append(env, tlsCGIEnv(r)...)
	if pathInfo != "" {
		env = append(env, "PATH_INFO="+pathInfo, "PATH_TRANSLATED="+filepath.Join(s.root, pathInfo))
	}
	if s.fcgi != nil {
		s.fcgi.serve(w, r, cgiEnv(r, scriptName, env))
		return
	}
	h := &cgi.Handler{
		Path:   s.phpCGI,
		Root:   scriptName, // net/http/cgi derives PATH_INFO from it
		Dir:    filepath.Dir(filename),
		Env:    env,
		Args:   s.phpArgs,
		Logger: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		Stderr: &logWriter{log: s.log, vhost: s.name},
	}
	h.ServeHTTP(w, r)
}

// logWriter logs php-cgi's stderr.
type logWriter struct {
	log   *slog.Logger
	vhost string
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.log.Warn("php-cgi", "vhost", l.vhost, "stderr", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
