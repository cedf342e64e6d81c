package htaccess

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
)

// accessConf is the access control of one layer: a file's directory
// level, or one <Files> section. As in Apache 2.4, mod_authz_core's
// Require and mod_access_compat's Order/Allow/Deny/Satisfy are two
// separate configurations: each is taken from the deepest layer that has
// any of its directives (for the request's method), and both must allow
// the request (unless Satisfy Any).
type accessConf struct {
	authz  []*authzNode  // top level: an implicit <RequireAny>
	compat []*compatRule // in file order
}

// methodSet is the method restriction of <Limit> or <LimitExcept>.
type methodSet struct {
	methods []string
	except  bool
}

func (m *methodSet) has(method string) bool {
	if m == nil {
		return true
	}
	return slices.Contains(m.methods, strings.ToUpper(method)) != m.except
}

type authzKind uint8

const (
	authzLeaf authzKind = iota
	authzAll            // <RequireAll>
	authzAny            // <RequireAny>
	authzNone           // <RequireNone>
)

// authzNode is a Require line or a <RequireAll|Any|None> section.
type authzNode struct {
	kind     authzKind
	d        Directive
	negate   bool       // Require not ...
	limit    *methodSet // the enclosing <Limit>, if any
	children []*authzNode

	// For a Require line:
	provider string // all, ip, local, method, user (any provider that needs a user), never
	grant    bool   // Require all granted
	hosts    []hostMatch
	methods  []string
}

type authzResult uint8

const (
	authzNeutral authzResult = iota
	authzGranted
	authzDenied
	authzDeniedNoUser // a user is needed: in Apache a 401 challenge; mpmd cannot authenticate
)

type orderKind uint8

const (
	denyAllow orderKind = iota // Apache's default
	allowDeny
	mutualFailure
)

type compatKind uint8

const (
	compatOrder compatKind = iota
	compatAllow
	compatDeny
	compatSatisfy
)

// compatRule is an Order, Allow, Deny or Satisfy line.
type compatRule struct {
	kind       compatKind
	d          Directive
	limit      *methodSet
	order      orderKind
	hosts      []hostMatch
	satisfyAny bool
}

// filesSection is a <Files> or <FilesMatch> section.
type filesSection struct {
	d      Directive
	glob   string // <Files name>, in path.Match syntax
	re     *regex // <FilesMatch>, <Files ~>
	access accessConf
}

// matches reports whether the section applies to a file of base name
// base. A regular expression that gives up on its step budget counts as
// a match: the section holds access control, and that fails closed.
func (s *filesSection) matches(base string, b *budget) bool {
	if s.re != nil {
		idx, err := s.re.find(base, b)
		return idx != nil || err != nil
	}
	ok, _ := path.Match(s.glob, base)
	return ok
}

func (p *parser) require(n *node, sc scope) {
	if sc.unknown != nil {
		p.failClosed(n, fmt.Sprintf("access control inside <%s>, which mpmd cannot evaluate", sc.unknown.name))
		return
	}
	w := words(n.args)
	leaf := &authzNode{kind: authzLeaf, d: n.directive(), limit: sc.limit}
	if len(w) > 0 && strings.EqualFold(w[0], "not") {
		leaf.negate, w = true, w[1:]
	}
	if len(w) == 0 {
		p.errorf(n.line, "Require needs a provider (all, ip, ...)")
		return
	}
	provider, args := strings.ToLower(w[0]), w[1:]
	switch provider {
	case "all":
		if len(args) != 1 || (!strings.EqualFold(args[0], "granted") && !strings.EqualFold(args[0], "denied")) {
			p.errorf(n.line, "Require all takes granted or denied")
			return
		}
		leaf.provider, leaf.grant = "all", strings.EqualFold(args[0], "granted")
	case "ip":
		if len(args) == 0 {
			p.errorf(n.line, "Require ip needs an address")
			return
		}
		leaf.provider = "ip"
		for _, a := range args {
			pfx, ok, err := parseIP(a)
			if err != nil || !ok {
				p.errorf(n.line, "Require ip: %q is not an IP address or network", a)
				return
			}
			leaf.hosts = append(leaf.hosts, hostMatch{prefix: pfx})
		}
	case "local":
		leaf.provider = "local"
	case "method":
		if len(args) == 0 {
			p.errorf(n.line, "Require method needs a method")
			return
		}
		leaf.provider = "method"
		for _, m := range args {
			leaf.methods = append(leaf.methods, strings.ToUpper(m))
		}
	case "host", "forward-dns":
		leaf.provider = "never"
		p.notApplied(n, "host names need DNS lookups, which mpmd does not do: this Require never grants")
	case "env", "expr":
		leaf.provider = "never"
		p.notApplied(n, fmt.Sprintf("mpmd does not evaluate Require %s: it never grants", provider))
	case "valid-user", "user", "group", "file-owner", "file-group", "dbd-group", "dbm-group",
		"ldap-user", "ldap-group", "ldap-dn", "ldap-attribute", "ldap-filter", "ldap-search":
		leaf.provider = "user"
		p.notApplied(n, "mpmd does not authenticate users (AuthType, AuthUserFile): where this Require decides, the request is denied with 403 (fail closed), never served without the password")
	default:
		p.errorf(n.line, "unknown authorization provider %q", w[0])
		return
	}
	if leaf.negate && (sc.authz == nil || sc.authz.kind != authzAll) {
		p.errorf(n.line, "a negated Require has no effect outside <RequireAll>")
		return
	}
	p.addAuthz(leaf, sc)
}

func (p *parser) addAuthz(n *authzNode, sc scope) {
	if sc.authz != nil {
		sc.authz.children = append(sc.authz.children, n)
		return
	}
	c := sc.conf(p.f)
	c.authz = append(c.authz, n)
}

func (p *parser) requireSection(n *node, sc scope) {
	kinds := map[string]authzKind{"requireall": authzAll, "requireany": authzAny, "requirenone": authzNone}
	c := &authzNode{kind: kinds[strings.ToLower(n.name)], d: n.directive(), limit: sc.limit}
	inner := sc
	inner.authz = c
	p.interpret(n, inner)
	if sc.unknown != nil {
		return // its Require lines made the file fail closed
	}
	if len(c.children) == 0 {
		p.notApplied(n, "holds no Require: ignored, as Apache ignores it")
		return
	}
	if c.kind == authzNone && (sc.authz == nil || sc.authz.kind != authzAll) {
		p.errorf(n.line, "<RequireNone> has no effect outside <RequireAll>")
		return
	}
	p.addAuthz(c, sc)
}

func (p *parser) compat(n *node, sc scope) {
	if sc.unknown != nil {
		p.failClosed(n, fmt.Sprintf("access control inside <%s>, which mpmd cannot evaluate", sc.unknown.name))
		return
	}
	if sc.authz != nil {
		p.notApplied(n, fmt.Sprintf("only Require belongs inside %s", sc.authz.d.Text))
		return
	}
	r := &compatRule{d: n.directive(), limit: sc.limit}
	w := words(n.args)
	switch strings.ToLower(n.name) {
	case "order":
		// One argument in Apache; "Deny, Allow" with a space is common
		// enough, and unambiguous, to accept.
		v := strings.ToLower(strings.Join(w, ""))
		switch v {
		case "deny,allow":
			r.order = denyAllow
		case "allow,deny":
			r.order = allowDeny
		case "mutual-failure":
			r.order = mutualFailure
		default:
			p.errorf(n.line, "Order takes allow,deny or deny,allow or mutual-failure, not %q", n.args)
			return
		}
		r.kind = compatOrder
	case "satisfy":
		if len(w) != 1 || (!strings.EqualFold(w[0], "any") && !strings.EqualFold(w[0], "all")) {
			p.errorf(n.line, "Satisfy takes any or all")
			return
		}
		r.kind, r.satisfyAny = compatSatisfy, strings.EqualFold(w[0], "any")
	default: // allow, deny
		r.kind = compatAllow
		if strings.EqualFold(n.name, "deny") {
			r.kind = compatDeny
		}
		if len(w) < 2 || !strings.EqualFold(w[0], "from") {
			p.errorf(n.line, "%s must be followed by 'from' and at least one host", n.name)
			return
		}
		var never []string
		for _, h := range w[1:] {
			switch {
			case strings.EqualFold(h, "all"):
				r.hosts = append(r.hosts, hostMatch{all: true})
				continue
			case strings.HasPrefix(strings.ToLower(h), "env="):
				never = append(never, h)
				r.hosts = append(r.hosts, hostMatch{never: true})
				continue
			}
			pfx, ok, err := parseIP(h)
			if err != nil {
				p.errorf(n.line, "%s from: %v", n.name, err)
				return
			}
			if !ok {
				never = append(never, h)
				r.hosts = append(r.hosts, hostMatch{never: true})
				continue
			}
			r.hosts = append(r.hosts, hostMatch{prefix: pfx})
		}
		if len(never) > 0 {
			p.notApplied(n, fmt.Sprintf("mpmd matches addresses only (no DNS, no environment): %s never match", strings.Join(never, ", ")))
		}
	}
	c := sc.conf(p.f)
	c.compat = append(c.compat, r)
}

// applies reports whether a Require line or section is limited to
// methods that include method: a line by its <Limit>, a section by its
// lines (as mod_authz_core ORs its children's limits into a section).
func (n *authzNode) applies(method string) bool {
	if n.kind == authzLeaf {
		return n.limit.has(method)
	}
	for _, c := range n.children {
		if c.applies(method) {
			return true
		}
	}
	return false
}

// evalAuthz evaluates a layer's Require lines as mod_authz_core's
// authorize_user_core does: as an implicit <RequireAny> under an AND.
// So lines none of which applies to the request's method grant it.
func evalAuthz(top []*authzNode, req *Request) (authzResult, *authzNode) {
	root := &authzNode{kind: authzAny, children: top}
	return root.eval(req, true)
}

// eval is mod_authz_core's apply_authz_sections: a line or section not
// limited to the request's method is granted under an AND parent and
// neutral under an OR one; a section combines its children as AND
// (<RequireAll>) or OR (<RequireAny>, and <RequireNone>, which is a
// negated OR); a negation turns a grant into a denial and a denial into
// neutral. The node returned is the line behind a result that is not a
// grant.
func (n *authzNode) eval(req *Request, parentAnd bool) (authzResult, *authzNode) {
	if !n.applies(req.method()) {
		if parentAnd {
			return authzGranted, nil
		}
		return authzNeutral, nil
	}
	res, culprit := authzNeutral, n
	switch n.kind {
	case authzLeaf:
		res = n.evalLeaf(req)
	case authzAll:
		res, culprit = combineAuthz(n.children, req, true)
	default: // authzAny, authzNone
		res, culprit = combineAuthz(n.children, req, false)
	}
	if n.negate || n.kind == authzNone {
		if res = negateAuthz(res); res != authzGranted {
			culprit = n
		}
	}
	if culprit == nil {
		culprit = n
	}
	return res, culprit
}

func combineAuthz(kids []*authzNode, req *Request, and bool) (authzResult, *authzNode) {
	res := authzNeutral
	var culprit *authzNode
	for _, c := range kids {
		r, why := c.eval(req, and)
		switch {
		case r == authzNeutral:
		case and && r == authzDenied:
			return r, why
		case !and && r == authzGranted:
			return r, nil
		case res == authzNeutral,
			and && r == authzDeniedNoUser && res != authzDenied,
			!and && r == authzDeniedNoUser && res == authzDenied:
			res, culprit = r, why
		}
	}
	return res, culprit
}

// negateAuthz is "not": a negated line can deny, never grant.
func negateAuthz(r authzResult) authzResult {
	switch r {
	case authzGranted:
		return authzDenied
	case authzDenied, authzDeniedNoUser:
		return authzNeutral
	}
	return r
}

func (n *authzNode) evalLeaf(req *Request) authzResult {
	switch n.provider {
	case "all":
		if n.grant {
			return authzGranted
		}
		return authzDenied
	case "ip":
		for _, h := range n.hosts {
			if h.match(req.Remote.Addr()) {
				return authzGranted
			}
		}
		return authzDenied
	case "local":
		if a := req.Remote.Addr(); a.IsValid() && a.Unmap().IsLoopback() {
			return authzGranted
		}
		return authzDenied
	case "method":
		if slices.Contains(n.methods, strings.ToUpper(req.method())) {
			return authzGranted
		}
		return authzDenied
	case "user":
		return authzDeniedNoUser
	}
	return authzDenied
}

// evalCompat evaluates Order, Allow and Deny (and reads Satisfy) as
// mod_access_compat's check_dir_access does, for the request's method:
// each line inside a <Limit> counts for its methods only. Without
// lines for the method, it allows (the default order is deny,allow).
func evalCompat(rules []*compatRule, req *Request) (allowed, satisfyAny bool, culprit *compatRule) {
	order := denyAllow
	var allowHit, denyHit, orderRule *compatRule
	addr, method := req.Remote.Addr(), req.method()
	for _, r := range rules {
		if !r.limit.has(method) {
			continue
		}
		switch r.kind {
		case compatOrder:
			order, orderRule = r.order, r
		case compatSatisfy:
			satisfyAny = r.satisfyAny
		case compatAllow, compatDeny:
			for _, h := range r.hosts {
				if !h.match(addr) {
					continue
				}
				if r.kind == compatAllow && allowHit == nil {
					allowHit = r
				} else if r.kind == compatDeny && denyHit == nil {
					denyHit = r
				}
				break
			}
		}
	}
	switch order {
	case denyAllow:
		return denyHit == nil || allowHit != nil, satisfyAny, denyHit
	default: // allow,deny and mutual-failure
		if allowHit == nil {
			// Nothing allowed it: a Deny that matched, or else the
			// Order line's default, is why.
			if denyHit != nil {
				return false, satisfyAny, denyHit
			}
			return false, satisfyAny, orderRule
		}
		return denyHit == nil, satisfyAny, denyHit
	}
}

// layerSource is where an access layer comes from, for reasons.
type layerSource struct {
	f *File
	s *filesSection // nil: the directory level
}

func (l layerSource) where(d Directive) string {
	w := l.f.where(d)
	if l.s != nil {
		name, _, _ := strings.Cut(strings.TrimPrefix(l.s.d.Text, "<"), " ")
		w += fmt.Sprintf(" (in the <%s> of line %d)", name, l.s.d.Line)
	}
	return w
}

// denial is why access control refused a request.
type denial struct {
	status int
	reason string
}

// decideAccess evaluates the access control of the files of the
// directories on a request's path (chain, from the document root down;
// nil entries for directories without a file) for a request naming a
// file of base name base. It returns nil to allow.
func decideAccess(chain []*File, base string, req *Request, b *budget) *denial {
	if strings.HasPrefix(base, ".ht") {
		return &denial{http.StatusForbidden, fmt.Sprintf("%q: files named .ht* are never served (as Apache's default configuration denies them)", base)}
	}
	var (
		authz             []*authzNode
		authzAt, compatAt layerSource
		compatRules       []*compatRule
	)
	// A layer with any Require replaces the Require lines before it,
	// whatever their methods (AuthMerging Off, the default); one with
	// any Order, Allow, Deny or Satisfy replaces those (mod_access_compat
	// has no merge function).
	layer := func(f *File, c *accessConf, s *filesSection) {
		if len(c.authz) > 0 {
			authz, authzAt = c.authz, layerSource{f, s}
		}
		if len(c.compat) > 0 {
			compatRules, compatAt = c.compat, layerSource{f, s}
		}
	}
	for _, f := range chain {
		if f == nil {
			continue
		}
		if f.closed != nil {
			return &denial{http.StatusForbidden, f.where(*f.closed) + ": " + f.closed.Why}
		}
		layer(f, &f.dir, nil)
	}
	// Apache merges <Files> sections after every directory: all of them,
	// from the top file down, in file order.
	for _, f := range chain {
		if f == nil {
			continue
		}
		for _, s := range f.files {
			if s.matches(base, b) {
				layer(f, &s.access, s)
			}
		}
	}

	compatOK, satisfyAny, compatWhy := evalCompat(compatRules, req)
	authzRes, authzWhy := authzGranted, (*authzNode)(nil)
	if authz != nil {
		authzRes, authzWhy = evalAuthz(authz, req)
	}
	granted := authzRes == authzGranted
	if (satisfyAny && (compatOK || granted)) || (compatOK && granted) {
		return nil
	}
	if !compatOK {
		if compatWhy == nil { // unreachable: a refusal always has its line
			return &denial{http.StatusForbidden, "denied by " + compatAt.f.Name}
		}
		return &denial{http.StatusForbidden, "denied by " + compatAt.where(compatWhy.d)}
	}
	why := "denied by " + authzAt.f.Name + ": no Require grants access"
	if authzWhy != nil && authzWhy.d.Line > 0 {
		why = "denied by " + authzAt.where(authzWhy.d)
	}
	if authzRes == authzDeniedNoUser {
		why += ": needs a user name and password, which mpmd does not check (denied: fail closed)"
	}
	return &denial{http.StatusForbidden, why}
}
