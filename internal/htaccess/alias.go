package htaccess

import (
	"strconv"
	"strings"
)

// aliasRedirect is a Redirect or RedirectMatch line (mod_alias). Unlike
// RewriteRule, it matches the whole URL path, and the lines of every
// file on the path apply (the deepest file's first).
type aliasRedirect struct {
	d      Directive
	status int
	prefix string // Redirect: a URL path
	re     *regex // RedirectMatch
	target string // a URL or an absolute path; "" for a status that is not a redirect
}

func (p *parser) redirectDirective(n *node, sc scope) {
	if sc.unknown != nil || sc.files != nil || sc.limit != nil || sc.authz != nil {
		p.notApplied(n, "Redirect inside a section is not applied")
		return
	}
	w := words(n.args)
	status := 302
	switch strings.ToLower(n.name) {
	case "redirectpermanent":
		status = 301
	case "redirecttemp":
	default:
		if len(w) > 0 {
			switch strings.ToLower(w[0]) {
			case "permanent":
				status, w = 301, w[1:]
			case "temp":
				status, w = 302, w[1:]
			case "seeother":
				status, w = 303, w[1:]
			case "gone":
				status, w = 410, w[1:]
			default:
				if v, err := strconv.Atoi(w[0]); err == nil {
					if v < 300 || v > 599 {
						p.errorf(n.line, "%s: bad status %q", n.name, w[0])
						return
					}
					status, w = v, w[1:]
				}
			}
		}
	}
	redirect := status >= 300 && status < 400
	switch {
	case redirect && len(w) != 2:
		p.errorf(n.line, "%s: a redirect takes a path and a target URL", n.name)
		return
	case !redirect && len(w) != 1:
		p.errorf(n.line, "%s: status %d takes a path and no URL", n.name, status)
		return
	}
	a := &aliasRedirect{d: n.directive(), status: status}
	if redirect {
		a.target = w[1]
		if !isAbsoluteURL(a.target) && !strings.HasPrefix(a.target, "/") {
			p.errorf(n.line, "%s: the target %q is neither a URL nor an absolute path", n.name, a.target)
			return
		}
	}
	if strings.EqualFold(n.name, "RedirectMatch") {
		re, err := compileRegex(w[0], false)
		if err != nil {
			if !redirect {
				p.failClosed(n, err.Error())
			} else {
				p.notApplied(n, err.Error()+": not applied")
			}
			return
		}
		a.re = re
	} else {
		a.prefix = w[0]
		if !strings.HasPrefix(a.prefix, "/") {
			p.errorf(n.line, "%s: the path %q must start with '/'", n.name, a.prefix)
			return
		}
	}
	p.f.redirects = append(p.f.redirects, a)
}

// aliasMatch matches a Redirect path against a URL path as mod_alias's
// alias_matches does: a run of slashes matches a run of slashes, and the
// match ends at a path segment boundary. It returns how much of uri
// matched, or -1.
func aliasMatch(uri, alias string) int {
	u, a := 0, 0
	for a < len(alias) {
		if alias[a] == '/' {
			if u >= len(uri) || uri[u] != '/' {
				return -1
			}
			for a < len(alias) && alias[a] == '/' {
				a++
			}
			for u < len(uri) && uri[u] == '/' {
				u++
			}
			continue
		}
		if u >= len(uri) || uri[u] != alias[a] {
			return -1
		}
		u, a = u+1, a+1
	}
	if alias[len(alias)-1] != '/' && u < len(uri) && uri[u] != '/' {
		return -1
	}
	return u
}

// apply returns the status and Location for a request with URL path uri
// and query string query, or 0 if the line does not match it. A
// RedirectMatch that denies and gives up on its step budget fails
// closed: it matches.
func (a *aliasRedirect) apply(uri, query string, b *budget) (int, string) {
	var loc string
	if a.re != nil {
		idx, err := a.re.find(uri, b)
		if err != nil && a.target == "" {
			return a.status, ""
		}
		if idx == nil {
			return 0, ""
		}
		// mod_alias escapes the path of the result, not its query
		// string or fragment.
		loc = pregsub(a.target, uri, idx)
		if i := strings.IndexAny(loc, "?#"); i >= 0 {
			loc = escapeLocation(loc[:i]) + loc[i:]
		} else {
			loc = escapeLocation(loc)
		}
	} else {
		l := aliasMatch(uri, a.prefix)
		if l < 0 {
			return 0, ""
		}
		loc = a.target + apEscape(uri[l:])
	}
	if a.target == "" {
		return a.status, ""
	}
	if query != "" && !strings.Contains(loc, "?") {
		loc += "?" + query
	}
	return a.status, loc
}

// pregsub substitutes $0..$9, and & for the whole match, in a
// RedirectMatch target, as Apache's ap_pregsub does; a backslash makes
// the next character literal.
func pregsub(target, s string, idx []int) string {
	refs := captures(s, idx)
	var b strings.Builder
	for i := 0; i < len(target); i++ {
		c := target[i]
		switch {
		case c == '\\' && i+1 < len(target) && (target[i+1] == '$' || target[i+1] == '&' || target[i+1] == '\\'):
			i++
			b.WriteByte(target[i])
		case c == '&':
			b.WriteString(refs[0])
		case c == '$' && i+1 < len(target) && '0' <= target[i+1] && target[i+1] <= '9':
			i++
			b.WriteString(refs[target[i]-'0'])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
