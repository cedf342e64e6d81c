package htaccess

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultMaxRedirects is how many internal redirects Resolve follows
// when Tree.MaxRedirects is 0: Apache's LimitInternalRecursion default.
const DefaultMaxRedirects = 10

// A Request is what the .htaccess files of a site can look at.
type Request struct {
	Method string
	// Path is the decoded URL path (http.Request.URL.Path). It must
	// start with '/'; "." and ".." segments and repeated slashes are
	// resolved as Apache does, and a ".." above the root is refused
	// with 400.
	Path string
	// Query is the raw query string (http.Request.URL.RawQuery).
	Query string
	// Host is the Host header (http.Request.Host), for %{HTTP_HOST}
	// and %{SERVER_NAME}.
	Host  string
	HTTPS bool
	// Remote is the client's address, for Allow from, Require ip and
	// %{REMOTE_ADDR}. The zero value means unknown: no address rule
	// matches it.
	Remote netip.AddrPort
	// Header holds the request's headers, for %{HTTP:Name} and
	// %{HTTP_USER_AGENT} and the like. It may be nil.
	Header http.Header
	// RequestURI (http.Request.RequestURI) and Proto make up
	// %{THE_REQUEST}; without RequestURI, Path and Query are used.
	RequestURI string
	Proto      string
}

func (r *Request) method() string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

func (r *Request) proto() string {
	if r.Proto == "" {
		return "HTTP/1.1"
	}
	return r.Proto
}

// A Result is what the .htaccess files decided for a request.
type Result struct {
	// Status is 0 when the request is to be served (as Path and Query);
	// otherwise the response's status: 403, 404, 410 or 500 (and 400
	// for a path that leaves the document root), or a redirect
	// (301, 302, 303, 307, 308) to Location.
	Status int
	// Path is the URL path to serve: decoded, cleaned, always starting
	// with '/', never leaving the document root; it ends in '/' for a
	// directory (whose index file the caller picks, checking it again
	// with Access). Apache keeps the client's REQUEST_URI for PHP when
	// it rewrites, and so should the caller; SCRIPT_NAME follows Path.
	Path string
	// Query is the raw query string to serve Path with.
	Query string
	// Location is the target of a redirect: an absolute URL, or an
	// absolute path on this site.
	Location string
	// Env holds the environment variables Apache would add to the
	// CGI environment of the served request: those set by E= flags,
	// and after an internal redirect REDIRECT_STATUS, REDIRECT_URL,
	// REDIRECT_QUERY_STRING and the REDIRECT_-prefixed variables of
	// the pass before (WordPress reads REDIRECT_HTTP_AUTHORIZATION).
	// A caller that passes them on must not let them replace the
	// variables it sets itself. Nil when empty.
	Env map[string]string
	// Reason says why Status, naming the file and line, for the log.
	Reason string
}

// A Tree evaluates the .htaccess files of one document root.
// Its methods are safe for concurrent use.
type Tree struct {
	// FS is the document root. Resolve and Access stat paths in it to
	// find which directories a request walks through, and RewriteCond
	// -f, -d and -s test files in it; -l needs FS to implement
	// fs.ReadLinkFS. os.Root.FS gives one that no path or link can
	// leave. A nil FS has nothing in it.
	FS fs.FS
	// Htaccess returns the parsed .htaccess file of dir ("." for the
	// document root, "a/b" below it), or nil if dir has none. An error
	// makes the request fail with 500, as a broken .htaccess does in
	// Apache (403 for fs.ErrPermission). Nil means no files; Cache.Get
	// is one.
	Htaccess func(dir string) (*File, error)
	// DocumentRoot is the document root's file system path, as
	// %{DOCUMENT_ROOT} and %{REQUEST_FILENAME} show it to rules (which
	// may build paths for -f from it). It is never opened.
	DocumentRoot string
	// MaxRedirects bounds the internal redirects of one request; after
	// that Resolve answers 500. 0 means DefaultMaxRedirects.
	MaxRedirects int
}

func (t *Tree) docRoot() string { return strings.TrimRight(t.DocumentRoot, "/") }

// fsName turns a file system path as rules see it (DocumentRoot and a
// path under it) into a name in FS; ok is false for a path outside it.
func (t *Tree) fsName(p string) (string, bool) {
	if root := t.docRoot(); root != "" {
		rest, found := strings.CutPrefix(p, root)
		if !found || (rest != "" && rest[0] != '/') {
			return "", false
		}
		p = rest
		if p == "" {
			p = "/"
		}
	}
	u, ok := cleanURLPath(p)
	if !ok {
		return "", false
	}
	if name := strings.Trim(u, "/"); name != "" {
		return name, true
	}
	return ".", true
}

// cleanURLPath resolves "." and ".." and repeated slashes in a URL
// path, keeping a trailing slash. ok is false for a path that does not
// start with '/', that holds a NUL, or whose ".." would leave the root.
func cleanURLPath(p string) (string, bool) {
	if p == "" || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		return "", false
	}
	var out []string
	trailing := false
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
			trailing = trailing || last
		case "..":
			if len(out) == 0 {
				return "", false
			}
			out = out[:len(out)-1]
			trailing = trailing || last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	c := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		c += "/"
	}
	return c, true
}

// dirEntry is a directory a request walks through and its file.
type dirEntry struct {
	url  string // the directory's URL path, ending in '/'
	file *File  // nil: no .htaccess
}

// walked is where a URL path leads in the document root, as Apache's
// directory walk finds it.
type walked struct {
	chain    []dirEntry
	filename string // the URL path of what the request names: a directory (ending in '/'), a file, or the first element that does not exist
	pathInfo string // the rest of the URL path after filename
}

func (w *walked) files() []*File {
	fs := make([]*File, len(w.chain))
	for i, e := range w.chain {
		fs[i] = e.file
	}
	return fs
}

// base is the name that <Files> sections match: the last element of
// filename, "" for a directory.
func (w *walked) base() string {
	if strings.HasSuffix(w.filename, "/") {
		return ""
	}
	return w.filename[strings.LastIndexByte(w.filename, '/')+1:]
}

// walk finds the directories on upath (clean, from cleanURLPath) and
// their files. A non-nil *Result is a failure.
func (t *Tree) walk(upath string) (*walked, *Result) {
	w := &walked{}
	load := func(dir, url string) *Result {
		var f *File
		if t.Htaccess != nil {
			var err error
			if f, err = t.Htaccess(dir); err != nil {
				status := http.StatusInternalServerError
				if errors.Is(err, fs.ErrPermission) {
					status = http.StatusForbidden
				}
				return &Result{Status: status, Reason: fmt.Sprintf("the .htaccess of %s: %v", url, err)}
			}
		}
		w.chain = append(w.chain, dirEntry{url: url, file: f})
		return nil
	}
	if r := load(".", "/"); r != nil {
		return nil, r
	}
	rest := upath[1:]
	dir := ""
	for rest != "" {
		elem, after, more := strings.Cut(rest, "/")
		name := elem
		if dir != "" {
			name = dir + "/" + elem
		}
		if fi, err := t.stat(name); err == nil && fi.IsDir() {
			dir = name
			if r := load(dir, "/"+dir+"/"); r != nil {
				return nil, r
			}
			if !more {
				// A directory named without its trailing slash.
				w.filename = "/" + dir
				return w, nil
			}
			rest = after
			continue
		} else if errors.Is(err, fs.ErrPermission) {
			return nil, &Result{Status: http.StatusForbidden, Reason: fmt.Sprintf("%s: %v", "/"+name, err)}
		}
		// A file, or nothing: the rest is path info.
		w.filename = "/" + name
		w.pathInfo = upath[len(w.filename):]
		return w, nil
	}
	w.filename = "/"
	if dir != "" {
		w.filename = "/" + dir + "/"
	}
	return w, nil
}

func (t *Tree) stat(name string) (fs.FileInfo, error) {
	if t.FS == nil {
		return nil, fs.ErrNotExist
	}
	return fs.Stat(t.FS, name)
}

// Access applies the access control of the .htaccess files on the
// request's path (Require, Order/Allow/Deny, <Files>, <Limit>), and
// nothing else: no rewriting. Use it for what the caller serves on its
// own initiative, such as a directory's index file.
func (t *Tree) Access(req *Request) Result {
	upath, ok := cleanURLPath(req.Path)
	if !ok {
		return Result{Status: http.StatusBadRequest, Reason: fmt.Sprintf("bad path %q", req.Path)}
	}
	w, fail := t.walk(upath)
	if fail != nil {
		return *fail
	}
	b := newBudget()
	d := decideAccess(w.files(), w.base(), req, b)
	if b.exhausted() {
		return Result{Status: http.StatusInternalServerError, Reason: tooMuchWork}
	}
	if d != nil {
		return Result{Status: d.status, Reason: d.reason}
	}
	return Result{Path: upath, Query: req.Query}
}

// Resolve decides a request as Apache would with these .htaccess files:
// access control for the path, then the rewrite rules of the deepest
// directory that has them, then mod_alias redirects; a rewrite to
// another URL is an internal redirect, which starts over (access
// control included) with the new URL, at most MaxRedirects times.
func (t *Tree) Resolve(req *Request) Result {
	upath, ok := cleanURLPath(req.Path)
	if !ok {
		return Result{Status: http.StatusBadRequest, Reason: fmt.Sprintf("bad path %q", req.Path)}
	}
	max := t.MaxRedirects
	if max <= 0 {
		max = DefaultMaxRedirects
	}
	uri, query := upath, req.Query
	env := map[string]string{}
	var prevURI, prevQuery string // before the last internal redirect, if any
	redirected := false
	noRewrite := false
	b := newBudget()
	for pass := 0; ; pass++ {
		w, fail := t.walk(uri)
		if fail != nil {
			return *fail
		}
		d := decideAccess(w.files(), w.base(), req, b)
		if b.exhausted() {
			return Result{Status: http.StatusInternalServerError, Reason: tooMuchWork}
		}
		if d != nil {
			return Result{Status: d.status, Reason: d.reason}
		}
		out := rewriteOutcome{query: query}
		if !noRewrite {
			out = t.rewrite(w, req, uri, query, env, b)
		}
		if out.status == 0 {
			if st, loc, why := t.alias(w, uri, out.query, b); st != 0 {
				out = rewriteOutcome{status: st, location: loc, reason: why}
			}
		}
		if b.exhausted() {
			return Result{Status: http.StatusInternalServerError, Reason: tooMuchWork}
		}
		if out.status != 0 {
			return Result{Status: out.status, Location: safeLocation(out.location), Reason: out.reason}
		}
		if !out.changed {
			res := Result{Path: uri, Query: queryEscape(out.query), Env: env}
			if redirected {
				env["REDIRECT_URL"] = prevURI
				if prevQuery != "" {
					env["REDIRECT_QUERY_STRING"] = prevQuery
				}
			}
			if len(env) == 0 {
				res.Env = nil
			}
			return res
		}
		next, ok := cleanURLPath(out.url)
		if !ok {
			return Result{Status: http.StatusBadRequest, Reason: fmt.Sprintf("a rewrite led to %q, outside the document root", out.url)}
		}
		if pass+1 > max {
			return Result{Status: http.StatusInternalServerError, Reason: fmt.Sprintf("more than %d internal redirects (a rewrite loop?): last to %s", max, next)}
		}
		prevURI, prevQuery, redirected = uri, query, true
		renamed := map[string]string{"REDIRECT_STATUS": "200"}
		for k, v := range env {
			renamed["REDIRECT_"+k] = v
		}
		env = renamed
		uri, query = next, queryEscape(out.query)
		noRewrite = noRewrite || out.end
	}
}

// rewrite runs one pass of the rewrite rules that apply to the walked
// path: those of the deepest file on it that has mod_rewrite directives
// (its rules replace its parents'), with RewriteEngine inherited from
// above when it does not set it. RewriteBase is not inherited (Apache
// inherits it only with RewriteOptions MergeBase).
func (t *Tree) rewrite(w *walked, req *Request, uri, query string, env map[string]string, b *budget) rewriteOutcome {
	var (
		f         *File
		dir, base string
		on        bool
	)
	for _, e := range w.chain {
		if e.file == nil || !e.file.rewrite.present {
			continue
		}
		rw := &e.file.rewrite
		f, dir = e.file, e.url
		if rw.engineSet {
			on = rw.engine
		}
		base = rw.base
	}
	if f == nil || !on || len(f.rewrite.rules) == 0 {
		return rewriteOutcome{query: query}
	}
	if w.filename+"/" == dir {
		// The directory of the rules, named without its trailing slash:
		// Apache leaves it to mod_dir's redirect.
		return rewriteOutcome{query: query}
	}
	c := &rwCtx{t: t, req: req, uri: uri, query: query, filename: w.filename, pathInfo: w.pathInfo, env: env, budget: b}
	return c.run(f, dir, base)
}

// alias applies the Redirect and RedirectMatch lines of the files on
// the walked path, the deepest file's first.
func (t *Tree) alias(w *walked, uri, query string, b *budget) (int, string, string) {
	for i := len(w.chain) - 1; i >= 0; i-- {
		f := w.chain[i].file
		if f == nil {
			continue
		}
		for _, a := range f.redirects {
			if st, loc := a.apply(uri, query, b); st != 0 {
				return st, loc, f.where(a.d)
			}
		}
	}
	return 0, "", ""
}

// safeLocation escapes what may never appear in a Location header, even
// when a rule's NE flag or a Redirect's target leaves it raw: controls
// and spaces.
func safeLocation(loc string) string {
	var b strings.Builder
	for i := 0; i < len(loc); i++ {
		if c := loc[i]; c <= ' ' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// queryEscape percent-encodes what must not appear raw in a query
// string: controls, space, '#' and bytes over 0x7e. PHP decodes them
// back, so "id=hello world" from a back-reference reaches it unchanged.
func queryEscape(q string) string {
	unsafe := func(c byte) bool { return c <= ' ' || c >= 0x7f || c == '#' }
	if !strings.ContainsFunc(q, func(r rune) bool { return r >= 0x7f || unsafe(byte(r)) }) {
		return q
	}
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if c := q[i]; unsafe(c) {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
