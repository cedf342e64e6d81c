package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gompm/mpm/internal/cgienv"
)

// site serves one vhost's document root: static files, and PHP when
// enabled. It runs in a worker, as the vhost's identity.
type site struct {
	name    string
	root    string
	docroot *os.Root   // confines every lookup to the document root
	php     phpBackend // nil when PHP is off
	phpExt  []string   // extensions that run as PHP, lower case
	env     map[string]string
	index   []string
	follow  bool // follow symbolic links out of the document root
	body    bodyLimits
	// admit takes the request's place among the identity's requests in
	// progress (the pool's max) once its body is in; nil admits all.
	admit func(*http.Request) bool
	log   *slog.Logger
}

func newSite(v *VHost, php phpBackend, log *slog.Logger) (*site, error) {
	r, err := os.OpenRoot(v.DocumentRoot)
	if err != nil {
		return nil, fmt.Errorf("vhost %s: open document root: %w", v.ServerName, err)
	}
	s := &site{name: v.ServerName, root: v.DocumentRoot, docroot: r, php: php, phpExt: v.PHPExtensions, env: v.Env, index: v.Index, follow: v.FollowSymlinks, log: log}
	if len(s.phpExt) == 0 {
		s.phpExt = []string{".php"}
	}
	return s, nil
}

func (s *site) close() { s.docroot.Close() }

// phpLike are extensions of files that hold PHP source (or are run as
// PHP by some server): never served as they are, whether or not this site
// runs them, because their source is not the site's to publish (database
// passwords, often).
var phpLike = []string{".php", ".php3", ".php4", ".php5", ".php7", ".php8", ".phtml", ".pht", ".phps", ".phar", ".inc"}

// ext is name's extension, lower case.
func ext(name string) string { return strings.ToLower(path.Ext(name)) }

// isPHP reports whether name runs as PHP on this site: its extension is
// one of php_extensions, in the same case (PHP-FPM's
// security.limit_extensions compares them so; a.PHP is refused, in
// both modes, as PHP source this site does not run).
func (s *site) isPHP(name string) bool {
	return s.php != nil && slices.Contains(s.phpExt, path.Ext(name))
}

// ServeHTTP serves a request for this site.
func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	if s.php != nil {
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
				if s.isPHP(idx) {
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
	if s.isPHP(rel) {
		s.servePHP(w, r, rel, "")
		return
	}
	if slices.Contains(phpLike, ext(rel)) {
		// PHP source this site does not run (PHP off, or an extension
		// it does not run as PHP): not shown either.
		http.Error(w, "forbidden", http.StatusForbidden)
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

// splitPHP finds the first path element that runs as PHP and is a
// regular file, and returns it and the rest as PATH_INFO.
func (s *site) splitPHP(rel string) (script, info string, ok bool) {
	parts := strings.Split(rel, "/")
	for i, p := range parts[:len(parts)-1] {
		if !s.isPHP(p) {
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
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !s.admitted(w, r) {
		return
	}
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

// servePHP runs script as PHP, as this worker's identity.
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
	// The whole body first: PHP starts only when it has arrived.
	release, err := s.body.readBody(w, r)
	defer release()
	if err != nil {
		w.Header().Set("Connection", "close")
		if errors.Is(err, errSlowBody) {
			http.Error(w, "request body too slow", http.StatusRequestTimeout)
		} else {
			s.log.Info("request body", "vhost", s.name, "err", err)
			http.Error(w, "bad request body", http.StatusBadRequest)
		}
		return
	}
	// One connection runs at most its share of the identity's PHP at
	// once; its other streams wait here, holding no PHP process.
	releaseConn, err := connPHPSlot(r)
	if err != nil {
		busy(w) // the request's time ran out while it waited (or its client went)
		return
	}
	defer releaseConn()
	if !s.admitted(w, r) {
		return
	}
	var leaf *x509.Certificate
	if ti, ok := r.Context().Value(tlsInfoKey{}).(*tlsRequest); ok {
		leaf = ti.cert.cert.Leaf
	}
	env := cgienv.Build(r, cgienv.Vars{
		DocumentRoot:   s.root,
		ScriptFilename: filepath.Join(s.root, script),
		ScriptName:     "/" + script,
		PathInfo:       pathInfo,
		Software:       "mpmd",
		ServerCert:     leaf,
		Extra:          s.env,
	})
	if err := s.php.serve(w, r, env); err != nil && r.Context().Err() == nil {
		s.log.Warn("php request failed", "vhost", s.name, "script", script, "err", err)
	}
}

type connPHPKey struct{}

// withConnPHP gives a connection's requests a share of n PHP requests
// at once (see workerPlan.ConnPHP); n < 1 leaves them unbounded.
func withConnPHP(ctx context.Context, n int) context.Context {
	if n < 1 {
		return ctx
	}
	return context.WithValue(ctx, connPHPKey{}, make(chan struct{}, n))
}

// connPHPSlot waits for a place among r's connection's PHP requests and
// returns its release, or the request context's error.
func connPHPSlot(r *http.Request) (release func(), err error) {
	sem, _ := r.Context().Value(connPHPKey{}).(chan struct{})
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

// admitted takes r's place among the identity's requests in progress
// (the pool's max), or answers 503 when none came in time.
func (s *site) admitted(w http.ResponseWriter, r *http.Request) bool {
	if s.admit == nil || s.admit(r) {
		return true
	}
	busy(w)
	return false
}

func busy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "the site is busy; try again in a while", http.StatusServiceUnavailable)
}
