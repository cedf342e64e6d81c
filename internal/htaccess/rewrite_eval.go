package htaccess

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const tooMuchWork = "the .htaccess rules need too much work for this request"

// maxNextRounds bounds the rounds of the N flag when it gives no count,
// as Apache's REWRITE_MAX_ROUNDS.
const maxNextRounds = 10000

// rwCtx is the state of one rewriting pass over one request.
type rwCtx struct {
	t        *Tree
	req      *Request
	uri      string // REQUEST_URI: this pass's URL path
	query    string // QUERY_STRING, as rules change it
	filename string // REQUEST_FILENAME as a URL path: what the request names on disk, then what rules rewrote it to
	abs      bool   // filename came from a substitution that is an absolute URL path
	pathInfo string
	env      map[string]string
	ruleRefs [10]string // $0..$9
	condRefs [10]string // %0..%9
	budget   *budget
}

// rewriteOutcome is what one pass of a directory's rules decided.
type rewriteOutcome struct {
	status   int    // an error status or a redirect; 0 otherwise
	location string // for a redirect
	reason   string
	changed  bool   // an internal redirect to url?query
	url      string // decoded, not yet cleaned
	query    string // the query string after the rules (even when not changed)
	end      bool   // the END flag: no rewriting in later passes
}

// run applies the rules of the file f, which is in the directory whose
// URL path is dir (ending in '/'), to the request, as mod_rewrite does
// in a per-directory context: each rule's pattern is matched against
// the path relative to dir; a relative substitution is relative to dir
// (or to RewriteBase, for the URL it becomes); the first pass that
// changes the URL ends with an internal redirect, which the caller runs
// as a new pass.
func (c *rwCtx) run(f *File, dir, base string) rewriteOutcome {
	rules := f.rewrite.rules
	st := runState{origFilename: c.filename, origQuery: c.query}
	round := 1
	for i := 0; i < len(rules); i++ {
		r := rules[i]
		c.budget.spend(costRule)
		if c.budget.exhausted() {
			return rewriteOutcome{status: http.StatusInternalServerError, reason: tooMuchWork}
		}
		subject := c.filename + c.pathInfo
		if !c.abs {
			subject = strings.TrimPrefix(subject, dir)
		}
		if !c.matchRule(r, subject) || !c.condsHold(r) {
			if r.flags.chain { // skip the rest of the chain
				for i < len(rules) && rules[i].flags.chain {
					i++
				}
			}
			continue
		}
		if out, stop := c.apply(f, r, dir, &st); stop {
			return out
		}
		if r.flags.end {
			st.end = true
			break
		}
		if r.flags.last {
			break
		}
		if r.flags.next {
			limit := r.flags.nextMax
			if limit == 0 {
				limit = maxNextRounds
			}
			if round++; round >= limit {
				return rewriteOutcome{status: http.StatusInternalServerError, reason: fmt.Sprintf("%s: the N flag reached its limit of %d rounds", f.where(r.d), limit)}
			}
			i = -1
			continue
		}
		i += r.flags.skip
	}
	return c.outcome(dir, base, &st)
}

// runState is what a pass's rules have done so far.
type runState struct {
	origFilename, origQuery string
	changed, end, noescape  bool
	redirect                int // the status of a pending redirect
	redirectRule            Directive
}

// apply applies a rule that matched: its E= flags, then its status or
// its substitution. stop is true when the rule ends the pass with out.
func (c *rwCtx) apply(f *File, r *rewriteRule, dir string, st *runState) (out rewriteOutcome, stop bool) {
	for _, e := range r.flags.env {
		s, _ := c.expand(e.tmpl, nil)
		if name, ok := strings.CutPrefix(s, "!"); ok {
			delete(c.env, name)
		} else if name, val, _ := strings.Cut(s, ":"); name != "" {
			c.env[name] = val
		}
	}
	if r.flags.status != 0 {
		return rewriteOutcome{status: r.flags.status, reason: f.where(r.d)}, true
	}
	if r.dash {
		return rewriteOutcome{}, false
	}
	s, literalQ := c.expand(r.subst, r.escaper())
	p, q, ok := splitQuery(s, literalQ, r.flags, c.query)
	if !ok {
		return rewriteOutcome{status: http.StatusForbidden, reason: f.where(r.d) + ": a '?' from a back-reference or variable would split the rewritten URL (Apache 2.4.60 and later refuse it too; flag UnsafeAllow3F allows it)"}, true
	}
	c.query = q
	switch {
	case isAbsoluteURL(p):
		c.filename, c.abs = p, true
		if st.redirect == 0 { // an absolute URL is always an external redirect
			st.redirect, st.redirectRule = http.StatusFound, r.d
		}
	case strings.HasPrefix(p, "/"):
		c.filename, c.abs = p, true
	default:
		c.filename, c.abs = dir+p, false
	}
	if r.flags.dpi {
		c.pathInfo = ""
	}
	st.changed = true
	if r.flags.redirect != 0 {
		st.redirect, st.redirectRule = r.flags.redirect, r.d
	}
	st.noescape = st.noescape || r.flags.noescape
	return rewriteOutcome{}, false
}

// outcome turns what the rules did into a redirect, an internal
// redirect, or nothing.
func (c *rwCtx) outcome(dir, base string, st *runState) rewriteOutcome {
	if !st.changed {
		return rewriteOutcome{query: c.query}
	}
	url := c.filename
	if !c.abs {
		rest := strings.TrimPrefix(c.filename, dir)
		url = dir + rest
		if base != "" {
			url = base + rest
		}
	}
	if st.redirect != 0 {
		loc := url
		if !st.noescape {
			loc = escapeLocation(loc)
		}
		if c.query != "" {
			if st.noescape || c.query == st.origQuery {
				loc += "?" + c.query
			} else {
				loc += "?" + apEscape(c.query)
			}
		}
		return rewriteOutcome{status: st.redirect, location: loc, reason: fmt.Sprintf("line %d: %s", st.redirectRule.Line, st.redirectRule.Text)}
	}
	if !c.abs && c.filename == st.origFilename {
		// Rewritten to itself: Apache serves it, without a redirect
		// (only the query string may have changed).
		return rewriteOutcome{query: c.query, end: st.end}
	}
	return rewriteOutcome{changed: true, url: url, query: c.query, end: st.end}
}

// matchRule matches a rule's pattern, setting $0..$9.
func (c *rwCtx) matchRule(r *rewriteRule, subject string) bool {
	c.ruleRefs = [10]string{}
	if r.unevaluable != "" && !r.denies() {
		return false
	}
	if r.re == nil {
		return true // a rule that denies, whose pattern cannot be compiled: fail closed
	}
	idx, err := r.re.find(subject, c.budget)
	if err != nil {
		return r.denies()
	}
	if r.negate {
		return idx == nil
	}
	if idx == nil {
		return false
	}
	c.ruleRefs = captures(subject, idx)
	return true
}

// condsHold evaluates a rule's conditions as mod_rewrite does: all must
// hold, except that a condition with [OR] is enough for itself and the
// conditions chained after it.
func (c *rwCtx) condsHold(r *rewriteRule) bool {
	c.condRefs = [10]string{}
	for i := 0; i < len(r.conds); i++ {
		cond := r.conds[i]
		ok := c.evalCond(cond, r.denies())
		if cond.or {
			if ok {
				for i < len(r.conds) && r.conds[i].or {
					i++
				}
			}
			continue
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c *rwCtx) evalCond(cond *rewriteCond, failClosed bool) bool {
	if cond.unevaluable != "" {
		return failClosed
	}
	s, _ := c.expand(cond.test, nil)
	c.budget.spend(costRule + len(s)/8)
	var ok bool
	switch cond.kind {
	case condRegex:
		idx, err := cond.re.find(s, c.budget)
		if err != nil {
			return failClosed
		}
		ok = idx != nil
		if ok && !cond.negate {
			c.condRefs = captures(s, idx)
		}
	case condFile:
		ok = c.fileTest(cond.op, s)
	case condLex:
		a, b := s, cond.arg
		if cond.nocase {
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
		cmp := strings.Compare(a, b)
		switch cond.op {
		case "=":
			ok = cmp == 0
		case "<":
			ok = cmp < 0
		case ">":
			ok = cmp > 0
		case "<=":
			ok = cmp <= 0
		case ">=":
			ok = cmp >= 0
		}
	case condInt:
		a, b := atoi(s), atoi(cond.arg)
		switch cond.op {
		case "eq":
			ok = a == b
		case "ne":
			ok = a != b
		case "lt":
			ok = a < b
		case "le":
			ok = a <= b
		case "gt":
			ok = a > b
		case "ge":
			ok = a >= b
		}
	}
	return ok != cond.negate
}

// atoi reads a number as C's atoi does: leading space, a sign, digits;
// anything else ends it, and nothing is 0.
func atoi(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\r\f\v")
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg, i = s[i] == '-', i+1
	}
	var v int64
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9' && v < 1<<50; i++ {
		v = v*10 + int64(s[i]-'0')
	}
	if neg {
		return -v
	}
	return v
}

// fileTest runs -d -f -s -l -L -h -x on a file system path, which must
// lie inside the document root: Tree.DocumentRoot followed by a path
// there (or, with no DocumentRoot, a path from the root). Anything else
// is not a file.
func (c *rwCtx) fileTest(op, p string) bool {
	name, ok := c.t.fsName(p)
	if !ok || c.t.FS == nil {
		return false
	}
	switch op {
	case "-l", "-L", "-h":
		rl, ok := c.t.FS.(fs.ReadLinkFS)
		if !ok {
			return false
		}
		fi, err := rl.Lstat(name)
		return err == nil && fi.Mode()&fs.ModeSymlink != 0
	}
	fi, err := fs.Stat(c.t.FS, name)
	if err != nil {
		return false
	}
	switch op {
	case "-d":
		return fi.IsDir()
	case "-f":
		return fi.Mode().IsRegular()
	case "-s":
		return fi.Mode().IsRegular() && fi.Size() > 0
	case "-x":
		return !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
	}
	return false
}

// expand expands a template. It returns the offsets in the result of
// the '?' characters that were literal in the template (rather than
// from a back-reference or a variable). escape, if not nil, is applied
// to back-references (the B flags).
func (c *rwCtx) expand(t template, escape func(string) string) (string, []int) {
	var b strings.Builder
	var literalQ []int
	for _, part := range t {
		switch part.kind {
		case tmplLit:
			for i := 0; i < len(part.lit); i++ {
				if part.lit[i] == '?' {
					literalQ = append(literalQ, b.Len()+i)
				}
			}
			b.WriteString(part.lit)
		case tmplRuleRef:
			s := c.ruleRefs[part.n]
			if escape != nil {
				s = escape(s)
			}
			b.WriteString(s)
		case tmplCondRef:
			s := c.condRefs[part.n]
			if escape != nil {
				s = escape(s)
			}
			b.WriteString(s)
		case tmplVar:
			b.WriteString(c.variable(part.name))
		}
	}
	return b.String(), literalQ
}

func (c *rwCtx) variable(name string) string {
	req := c.req
	if v, ok := strings.CutPrefix(name, "ENV:"); ok {
		return c.env[v]
	}
	if h, ok := strings.CutPrefix(name, "HTTP:"); ok {
		return c.header(h)
	}
	switch name {
	case "REQUEST_URI":
		return c.uri
	case "REQUEST_FILENAME", "SCRIPT_FILENAME":
		if c.abs {
			return c.filename
		}
		return c.t.docRoot() + c.filename
	case "QUERY_STRING":
		return c.query
	case "PATH_INFO":
		return c.pathInfo
	case "THE_REQUEST":
		target := req.RequestURI
		if target == "" {
			target = (&url.URL{Path: req.Path, RawQuery: req.Query}).RequestURI()
		}
		return req.method() + " " + target + " " + req.proto()
	case "REQUEST_METHOD":
		return req.method()
	case "REQUEST_SCHEME":
		if req.HTTPS {
			return "https"
		}
		return "http"
	case "HTTPS":
		if req.HTTPS {
			return "on"
		}
		return "off"
	case "HTTP_HOST":
		return req.Host
	case "HTTP_USER_AGENT", "HTTP_REFERER", "HTTP_COOKIE", "HTTP_ACCEPT", "HTTP_FORWARDED", "HTTP_PROXY_CONNECTION":
		return c.header(strings.ReplaceAll(strings.TrimPrefix(name, "HTTP_"), "_", "-"))
	case "SERVER_NAME":
		host, _ := splitHostPort(req.Host)
		return host
	case "SERVER_PORT":
		if _, port := splitHostPort(req.Host); port != "" {
			return port
		}
		if req.HTTPS {
			return "443"
		}
		return "80"
	case "SERVER_PROTOCOL":
		return req.proto()
	case "SERVER_SOFTWARE":
		return "mpmd"
	case "DOCUMENT_ROOT", "CONTEXT_DOCUMENT_ROOT":
		return c.t.docRoot()
	case "REMOTE_ADDR", "REMOTE_HOST", "CONN_REMOTE_ADDR":
		if a := req.Remote.Addr(); a.IsValid() {
			return a.Unmap().String()
		}
	case "REMOTE_PORT":
		if req.Remote.IsValid() {
			return strconv.Itoa(int(req.Remote.Port()))
		}
	case "IPV6":
		if a := req.Remote.Addr(); a.IsValid() && a.Is6() && !a.Is4In6() {
			return "on"
		}
		return "off"
	case "IS_SUBREQ":
		return "false"
	}
	return "" // CONTEXT_PREFIX, REMOTE_USER, AUTH_TYPE, and names Apache does not know
}

func (c *rwCtx) header(name string) string {
	if strings.EqualFold(name, "Host") {
		return c.req.Host
	}
	return strings.Join(c.req.Header.Values(name), ", ")
}

// splitHostPort splits a Host header value: "example.com:8080",
// "[2001:db8::1]:443", "example.com".
func splitHostPort(hostport string) (host, port string) {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		return strings.Trim(hostport[:i], "[]"), hostport[i+1:]
	}
	return strings.Trim(hostport, "[]"), ""
}

// splitQuery splits a substitution at its query string as mod_rewrite's
// splitout_queryargs does: at the first '?' (the last with QSL); the new
// query string replaces the old one unless QSA appends the old one; a
// substitution without '?' keeps the old one, unless QSD. ok is false if
// the '?' came from a back-reference or variable (a %3F in the request),
// which Apache 2.4.60 and later refuse unless UnsafeAllow3F.
func splitQuery(s string, literalQ []int, f ruleFlags, old string) (p, q string, ok bool) {
	if f.qsd {
		old = ""
	}
	at := strings.IndexByte(s, '?')
	if f.qsl {
		at = strings.LastIndexByte(s, '?')
	}
	if at < 0 {
		return s, old, true
	}
	if !slices.Contains(literalQ, at) && !f.unsafe3F {
		return "", "", false
	}
	p, q = s[:at], s[at+1:]
	if f.qsa {
		switch {
		case q == "":
			q = old
		case old != "":
			q += "&" + old
		}
	}
	return p, strings.TrimSuffix(q, "&"), true
}

func isAbsoluteURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (j > 0 && (('0' <= c && c <= '9') || c == '+' || c == '-' || c == '.'))) {
			return false
		}
	}
	return true
}

// escapeLocation escapes the path of a redirect target, as Apache's
// escape_absolute_uri does: for an absolute URL, what follows the host.
func escapeLocation(s string) string {
	if isAbsoluteURL(s) {
		i := strings.Index(s, "://") + 3
		j := strings.IndexByte(s[i:], '/')
		if j < 0 {
			return s
		}
		return s[:i+j] + apEscape(s[i+j:])
	}
	return apEscape(s)
}

// apEscape escapes as Apache's ap_escape_uri: every byte but letters,
// digits and $-_.+!*'(),:;@&=/~ becomes %XX.
func apEscape(s string) string {
	const keep = "$-_.+!*'(),:;@&=/~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// escaper returns the escaping of back-references for the B flags.
func (r *rewriteRule) escaper() func(string) string {
	f := r.flags
	if !f.escape {
		return nil
	}
	return func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			var esc bool
			switch {
			case f.escapeCtls:
				esc = c <= ' ' || c == 0x7f
			case f.escapeChars != "":
				esc = strings.IndexByte(f.escapeChars, c) >= 0
			default:
				esc = true
			}
			if strings.IndexByte(f.noEscapeChars, c) >= 0 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '_' {
				esc = false
			}
			switch {
			case !esc:
				b.WriteByte(c)
			case c == ' ' && !f.escapeNoPlus:
				b.WriteByte('+')
			default:
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
}
