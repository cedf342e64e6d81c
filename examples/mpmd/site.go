package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gompm/mpm/internal/cgienv"
	"github.com/gompm/mpm/internal/htaccess"
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
	// fallback is the front controller ("/index.php"): what serves a
	// path that is neither a file nor a directory, as nginx's
	// try_files $uri $uri/ /index.php?$query_string. "" answers 404.
	fallback string
	deny     []string       // the vhost's deny list (see denied)
	ht       *htaccess.Tree // the .htaccess files; nil when ignored
	body     bodyLimits
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
	s := &site{name: v.ServerName, root: v.DocumentRoot, docroot: r, php: php, phpExt: v.PHPExtensions, env: v.Env,
		index: v.Index, follow: v.FollowSymlinks, fallback: v.Fallback, deny: v.Deny, log: log}
	if len(s.phpExt) == 0 {
		s.phpExt = []string{".php"}
	}
	if v.htaccess() {
		// Read through the same root as the files they govern, as the
		// identity (this worker), with a size bound; parsed again only
		// when a file changes, looked for again after a second (a stat
		// per directory level per request cost static files 8-15 %).
		fsys := r.FS()
		if s.follow {
			fsys = os.DirFS(v.DocumentRoot)
		}
		cache := &htaccess.Cache{FS: fsys, Root: v.DocumentRoot, Parsed: s.parsedHtaccess, Revalidate: htaccessRevalidate}
		s.ht = &htaccess.Tree{FS: fsys, Htaccess: cache.Get, DocumentRoot: v.DocumentRoot}
	}
	return s, nil
}

// htaccessRevalidate is how soon a new, changed or removed .htaccess
// applies.
const htaccessRevalidate = time.Second

// parsedHtaccess logs, once per change of a .htaccess file, what in it
// mpmd does not apply, and a file it cannot use.
func (s *site) parsedHtaccess(name string, f *htaccess.File, err error) {
	if err != nil {
		s.log.Warn("htaccess: file not usable: requests under its directory get 500", "vhost", s.name, "file", name, "err", err)
		return
	}
	for _, d := range f.NotApplied {
		s.log.Info("htaccess: directive not applied", "vhost", s.name, "file", name, "line", d.Line, "directive", d.Text, "instead", d.Why)
	}
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

// ServeHTTP serves a request for this site: the deny rules, then the
// .htaccess files (access control, rewrites, redirects), then the file
// the path names, its directory's index, or the front controller.
func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") || strings.IndexByte(upath, 0) >= 0 || aboveRoot(upath) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if why := s.denied(upath); why != "" {
		s.log.Debug("denied", "vhost", s.name, "path", upath, "rule", why)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	t := target{path: upath, query: r.URL.RawQuery}
	if s.ht != nil {
		res := s.ht.Resolve(&htaccess.Request{
			Method: r.Method, Path: upath, Query: r.URL.RawQuery, Host: r.Host,
			HTTPS: tlsState(r) != nil, Remote: remoteAddrPort(r), Header: r.Header,
			RequestURI: r.RequestURI, Proto: r.Proto,
		})
		switch {
		case res.Status == 0:
			t = target{path: res.Path, query: res.Query, env: res.Env, rewritten: res.Path != upath || res.Query != r.URL.RawQuery}
		case res.Location != "":
			http.Redirect(w, r, res.Location, res.Status)
			return
		default:
			if res.Status >= 500 {
				s.log.Warn("htaccess", "vhost", s.name, "path", upath, "status", res.Status, "reason", res.Reason)
			} else {
				s.log.Debug("htaccess", "vhost", s.name, "path", upath, "status", res.Status, "reason", res.Reason)
			}
			http.Error(w, http.StatusText(res.Status), res.Status)
			return
		}
		// A rewrite may not lead where a client may not go.
		if why := s.denied(t.path); why != "" && t.rewritten {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
	}
	s.serveTarget(w, r, t)
}

// target is what a request is served as, after the .htaccess files.
type target struct {
	path, query string
	env         map[string]string // from the rewrite rules (REDIRECT_*, E=)
	rewritten   bool
	fallback    bool // already the front controller
}

func (s *site) serveTarget(w http.ResponseWriter, r *http.Request, t target) {
	rel := strings.TrimPrefix(path.Clean(t.path), "/")
	if rel == "" {
		rel = "."
	}
	// A PHP script may be followed by PATH_INFO: /app.php/extra/path.
	if s.php != nil {
		if script, info, ok := s.splitPHP(rel); ok {
			s.servePHP(w, r, t, script, info)
			return
		}
	}
	fi, err := s.stat(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && s.fallback != "" && !t.fallback && !s.isPHP(rel) {
			s.serveTarget(w, r, target{path: s.fallback, query: t.query, env: t.env, rewritten: true, fallback: true})
			return
		}
		s.notFound(w, r, err)
		return
	}
	if fi.IsDir() {
		if !strings.HasSuffix(t.path, "/") {
			if t.rewritten {
				http.Error(w, "forbidden", http.StatusForbidden) // a rewrite to a directory without its '/'
				return
			}
			http.Redirect(w, r, t.path+"/", http.StatusMovedPermanently)
			return
		}
		for _, idx := range s.index {
			p := path.Join(rel, idx)
			if ifi, err := s.stat(p); err == nil && !ifi.IsDir() {
				if s.ht != nil {
					// A <Files index.php> may deny what the directory's
					// index would serve.
					if res := s.ht.Access(&htaccess.Request{Method: r.Method, Path: "/" + p, Host: r.Host, Remote: remoteAddrPort(r), Header: r.Header}); res.Status != 0 {
						http.Error(w, http.StatusText(res.Status), res.Status)
						return
					}
				}
				if s.isPHP(idx) {
					s.servePHP(w, r, t, p, "")
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
		s.servePHP(w, r, t, rel, "")
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

// denied says which rule refuses a URL path, or "": a name starting
// with '.' anywhere in it (.git, .env, .htaccess, .user.ini), but for
// /.well-known/ at the top (RFC 8615: ACME challenges); and the vhost's
// deny list, whose entries are path patterns ("/vendor/*", a '/' at the
// end for a whole tree: "/private/") or, without a '/', patterns for a
// name anywhere ("*.sql", "composer.json").
func (s *site) denied(upath string) string {
	clean := path.Clean(upath)
	for i, seg := range strings.Split(strings.TrimPrefix(clean, "/"), "/") {
		if strings.HasPrefix(seg, ".") && seg != "." && !(i == 0 && seg == ".well-known") {
			return "dotfile"
		}
	}
	for _, d := range s.deny {
		switch {
		case strings.HasSuffix(d, "/"):
			if clean+"/" == d || strings.HasPrefix(clean, d) {
				return d
			}
		case strings.HasPrefix(d, "/"):
			if ok, _ := path.Match(d, clean); ok {
				return d
			}
		default:
			for _, seg := range strings.Split(clean, "/") {
				if ok, _ := path.Match(d, seg); ok && seg != "" {
					return d
				}
			}
		}
	}
	return ""
}

// aboveRoot reports whether a URL path's ".." segments climb above "/"
// (/../etc/passwd): 400, as Apache answers, whether or not the site
// applies .htaccess files.
func aboveRoot(upath string) bool {
	depth := 0
	for _, seg := range strings.Split(upath, "/") {
		switch seg {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// remoteAddrPort is the client's address, for .htaccess address rules;
// the zero value (which no rule matches) when unknown.
func remoteAddrPort(r *http.Request) netip.AddrPort {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
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
func (s *site) servePHP(w http.ResponseWriter, r *http.Request, t target, script, pathInfo string) {
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
	extra := s.env
	if len(t.env) > 0 {
		// The rewrite rules' variables (REDIRECT_*, E=), under the
		// site's own env, which they never replace.
		extra = maps.Clone(t.env)
		maps.Copy(extra, s.env)
	}
	pr := r
	if t.query != r.URL.RawQuery {
		// QUERY_STRING is the rewritten one; REQUEST_URI stays the
		// client's.
		u := *r.URL
		u.RawQuery = t.query
		pr = r.Clone(r.Context())
		pr.URL = &u
	}
	env := cgienv.Build(pr, cgienv.Vars{
		DocumentRoot:   s.root,
		ScriptFilename: filepath.Join(s.root, script),
		ScriptName:     "/" + script,
		PathInfo:       pathInfo,
		RequestURI:     r.RequestURI,
		Software:       "mpmd",
		ServerCert:     leaf,
		Extra:          extra,
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
