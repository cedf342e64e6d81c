package htaccess

import (
	"fmt"
	"strconv"
	"strings"
)

// rewriteConf is a file's mod_rewrite configuration.
type rewriteConf struct {
	present   bool // the file has a mod_rewrite directive: its rules replace its parent's
	engineSet bool
	engine    bool
	base      string // RewriteBase, ending in '/'
	rules     []*rewriteRule
}

type rewriteRule struct {
	d      Directive
	conds  []*rewriteCond
	re     *regex // nil when the pattern cannot be compiled (then unevaluable is set)
	negate bool
	subst  template
	dash   bool // "-": no substitution
	flags  ruleFlags
	// unevaluable says why the rule cannot be evaluated as Apache would.
	// A rule that denies (F, G, R=4xx) then fails closed: its pattern
	// counts as matching and its unevaluable conditions as true. Any
	// other rule is skipped (counts as not matching): mpmd never applies
	// part of a rule.
	unevaluable string
}

// denies reports whether the rule ends the request with an error status.
func (r *rewriteRule) denies() bool { return r.flags.status != 0 }

type ruleFlags struct {
	chain, end, last, next, noescape bool
	qsa, qsd, qsl, dpi, unsafe3F     bool
	nextMax                          int
	redirect                         int // R: the status (3xx)
	status                           int // F (403), G (410), R=4xx/5xx
	skip                             int
	env                              []envFlag
	escape                           bool   // B, BCTLS (BNP and BNE modify them)
	escapeChars                      string // B=chars: only these
	noEscapeChars                    string // BNE=chars: never these
	escapeNoPlus                     bool   // BNP: space as %20
	escapeCtls                       bool   // BCTLS: only controls and space
}

// envFlag is an E= flag: "name:value", "name" (empty value) or "!name"
// (unset), expanded as a whole before it is split at its first ':', as
// mod_rewrite's do_expand_env does.
type envFlag struct {
	raw  string
	tmpl template
}

type condKind uint8

const (
	condRegex condKind = iota
	condFile           // -d -f -s -l -L -h -x
	condLex            // = < > <= >=
	condInt            // -eq -ne -lt -le -gt -ge
)

type rewriteCond struct {
	d                  Directive
	test               template
	kind               condKind
	op                 string
	re                 *regex
	arg                string
	negate, nocase, or bool
	unevaluable        string
}

// rewriteArgs splits the arguments of RewriteRule and RewriteCond as
// mod_rewrite's parseargline does: two or three words, each maybe quoted
// with " or ' (the matching quote ends it; there are no escapes), where
// a backslash before white space keeps that space in the word; text
// after the third word is ignored, as Apache ignores it.
func rewriteArgs(s string) []string {
	var out []string
	for len(out) < 3 {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		var quote byte
		if s[0] == '"' || s[0] == '\'' {
			quote, s = s[0], s[1:]
		}
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if (quote == 0 && (c == ' ' || c == '\t')) || (quote != 0 && c == quote) {
				break
			}
			if c == '\\' && i+1 < len(s) && (s[i+1] == ' ' || s[i+1] == '\t') {
				i++
			}
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++ // the space or quote that ended the word
		}
		s = s[i:]
	}
	return out
}

func (p *parser) rewriteDirective(n *node, sc scope) {
	name := strings.ToLower(n.name)
	if name == "rewritemap" {
		p.errorf(n.line, "RewriteMap is not allowed in .htaccess files")
		return
	}
	if sc.unknown != nil || sc.files != nil || sc.limit != nil || sc.authz != nil {
		where := "<Files>"
		switch {
		case sc.unknown != nil:
			where = "<" + sc.unknown.name + ">"
		case sc.limit != nil:
			where = "<Limit>"
		case sc.authz != nil:
			where = sc.authz.d.Text
		}
		if name == "rewriterule" && sc.unknown != nil {
			if w := rewriteArgs(n.args); len(w) == 3 {
				if f, err := parseRuleFlags(w[2]); err == nil && f.status != 0 {
					p.failClosed(n, fmt.Sprintf("a rule that denies, inside %s, which mpmd cannot evaluate", where))
					return
				}
			}
		}
		p.notApplied(n, fmt.Sprintf("mod_rewrite directives inside %s are not applied", where))
		return
	}
	rw := &p.f.rewrite
	rw.present = true
	w := words(n.args)
	switch name {
	case "rewriteengine":
		if len(w) != 1 || (!strings.EqualFold(w[0], "on") && !strings.EqualFold(w[0], "off")) {
			p.errorf(n.line, "RewriteEngine takes on or off")
			return
		}
		rw.engineSet, rw.engine = true, strings.EqualFold(w[0], "on")
	case "rewritebase":
		if len(w) != 1 || !strings.HasPrefix(w[0], "/") {
			p.errorf(n.line, "RewriteBase takes a URL path that starts with '/'")
			return
		}
		rw.base = w[0]
		if !strings.HasSuffix(rw.base, "/") {
			rw.base += "/"
		}
	case "rewriteoptions":
		p.notApplied(n, "RewriteOptions is not applied: each directory's rules replace its parent's, as with Apache's default")
	case "rewritecond":
		if c := p.rewriteCond(n); c != nil {
			p.pending = append(p.pending, c)
		}
	case "rewriterule":
		r := p.rewriteRule(n)
		p.pending = nil
		if r != nil {
			rw.rules = append(rw.rules, r)
		}
	}
}

func (p *parser) rewriteCond(n *node) *rewriteCond {
	w := rewriteArgs(n.args)
	if len(w) < 2 {
		p.errorf(n.line, "RewriteCond takes a test string, a pattern and maybe [flags]")
		return nil
	}
	c := &rewriteCond{d: n.directive()}
	if len(w) == 3 {
		body, ok := bracketed(w[2])
		if !ok {
			p.errorf(n.line, "RewriteCond: flags must be in [brackets]: %q", w[2])
			return nil
		}
		for _, f := range strings.Split(body, ",") {
			switch strings.ToLower(strings.TrimSpace(f)) {
			case "nc", "nocase":
				c.nocase = true
			case "or", "ornext":
				c.or = true
			case "nv", "novary", "":
			default:
				p.errorf(n.line, "RewriteCond: unknown flag %q", f)
				return nil
			}
		}
	}
	if strings.EqualFold(w[0], "expr") {
		c.unevaluable = "RewriteCond expr is not evaluated by mpmd"
		return c
	}
	c.test, c.unevaluable = parseTemplate(w[0])
	pat := w[1]
	if strings.HasPrefix(pat, "!") {
		c.negate, pat = true, pat[1:]
	}
	switch {
	case len(pat) == 2 && pat[0] == '-' && strings.ContainsRune("dfslLhxFU", rune(pat[1])):
		c.kind, c.op = condFile, pat
		if pat == "-F" || pat == "-U" {
			c.unevaluable = fmt.Sprintf("RewriteCond %s needs an Apache subrequest, which mpmd does not make", pat)
		}
	case len(pat) >= 4 && pat[0] == '-' && isIntOp(pat[1:3]):
		c.kind, c.op, c.arg = condInt, pat[1:3], strings.TrimSpace(pat[3:])
	case len(pat) >= 2 && (strings.HasPrefix(pat, "<=") || strings.HasPrefix(pat, ">=")):
		c.kind, c.op, c.arg = condLex, pat[:2], pat[2:]
	case len(pat) >= 2 && (strings.HasPrefix(pat, "<") || strings.HasPrefix(pat, ">") || strings.HasPrefix(pat, "=")):
		c.kind, c.op, c.arg = condLex, pat[:1], pat[1:]
		if c.op == "=" && c.arg == `""` {
			c.arg = "" // =""  tests for the empty string
		}
	default:
		re, err := compileRegex(pat, c.nocase)
		if err != nil {
			if c.unevaluable == "" {
				c.unevaluable = err.Error()
			}
		}
		c.kind, c.re = condRegex, re
	}
	return c
}

func isIntOp(s string) bool {
	switch s {
	case "eq", "ne", "lt", "le", "gt", "ge":
		return true
	}
	return false
}

func bracketed(s string) (string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return "", false
	}
	return s[1 : len(s)-1], true
}

func (p *parser) rewriteRule(n *node) *rewriteRule {
	w := rewriteArgs(n.args)
	if len(w) < 2 {
		p.errorf(n.line, "RewriteRule takes a pattern, a substitution and maybe [flags]")
		return nil
	}
	r := &rewriteRule{d: n.directive(), conds: p.pending}
	nocase := false
	if len(w) == 3 {
		f, err := parseRuleFlags(w[2])
		if err != nil {
			p.errorf(n.line, "RewriteRule: %v", err)
			return nil
		}
		r.flags, nocase = f.ruleFlags, f.nocase
		if f.ignored != "" {
			if f.status != 0 {
				p.notApplied(n, fmt.Sprintf("flag %s is not applied; the rule still denies", f.ignored))
			} else {
				r.unevaluable = fmt.Sprintf("flag %s is not supported", f.ignored)
			}
		}
	}
	pat := w[0]
	if strings.HasPrefix(pat, "!") {
		r.negate, pat = true, pat[1:]
	}
	re, err := compileRegex(pat, nocase)
	if err != nil && r.unevaluable == "" {
		r.unevaluable = err.Error()
	}
	r.re = re
	if w[1] == "-" {
		r.dash = true
	} else {
		var why string
		r.subst, why = parseTemplate(w[1])
		if why != "" && r.unevaluable == "" {
			r.unevaluable = why
		}
	}
	for _, e := range r.flags.env {
		if _, why := parseTemplate(e.raw); why != "" && r.unevaluable == "" && !r.denies() {
			r.unevaluable = why
		}
	}
	if r.flags.escapeNoPlus || r.flags.noEscapeChars != "" {
		if !r.flags.escape {
			p.notApplied(n, "BNP and BNE modify B, which the rule does not have: they do nothing (as in Apache)")
		}
	}
	for _, c := range r.conds {
		if c.unevaluable != "" && r.unevaluable == "" {
			r.unevaluable = fmt.Sprintf("its RewriteCond on line %d: %s", c.d.Line, c.unevaluable)
		}
	}
	if r.unevaluable != "" {
		if r.denies() {
			p.notApplied(n, r.unevaluable+": the rule denies as if it matched (fail closed)")
		} else {
			p.notApplied(n, r.unevaluable+": the rule is skipped")
		}
	}
	return r
}

// parsedFlags is ruleFlags plus what parsing found unsupported.
type parsedFlags struct {
	ruleFlags
	nocase  bool
	ignored string // unsupported flags, for the report
}

func parseRuleFlags(s string) (parsedFlags, error) {
	var f parsedFlags
	body, ok := bracketed(s)
	if !ok {
		return f, fmt.Errorf("flags must be in [brackets]: %q", s)
	}
	var ignored []string
	for _, item := range strings.Split(body, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		switch strings.ToLower(key) {
		case "b":
			f.escape, f.escapeChars = true, val
		case "bnp", "backrefnoplus": // modifies B
			f.escapeNoPlus = true
		case "bctls":
			f.escape, f.escapeCtls = true, true
		case "c", "chain":
			f.chain = true
		case "dpi", "discardpath":
			f.dpi = true
		case "e", "env":
			if !hasVal || val == "" {
				return f, fmt.Errorf("flag %q needs a variable", item)
			}
			e := envFlag{raw: val}
			e.tmpl, _ = parseTemplate(val)
			f.env = append(f.env, e)
		case "end":
			f.end = true
		case "f", "forbidden":
			f.status = 403
		case "g", "gone":
			f.status = 410
		case "l", "last":
			f.last = true
		case "n", "next":
			f.next = true
			if hasVal {
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 {
					return f, fmt.Errorf("bad count in %q", item)
				}
				f.nextMax = n
			}
		case "nc", "nocase":
			f.nocase = true
		case "ne", "noescape":
			f.noescape = true
		case "ns", "nosubreq", "pt", "passthrough", "unsafeprefixstat", "unc":
			// mpmd makes no subrequests; PT means nothing in .htaccess
			// (Apache ignores it there too); no prefix stat is made;
			// UNC paths are Windows's.
		case "qsa", "qsappend":
			f.qsa = true
		case "qsd", "qsdiscard":
			f.qsd = true
		case "qsl", "qslast":
			f.qsl = true
		case "r", "redirect":
			code := 302
			if hasVal {
				switch strings.ToLower(val) {
				case "permanent":
					code = 301
				case "temp":
					code = 302
				case "seeother":
					code = 303
				default:
					n, err := strconv.Atoi(val)
					if err != nil || n < 300 || n > 599 {
						return f, fmt.Errorf("invalid status %q for flag R", val)
					}
					code = n
				}
			}
			if code >= 400 {
				f.status = code // the substitution is dropped
			} else {
				f.redirect = code
			}
		case "s", "skip":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return f, fmt.Errorf("bad count in %q", item)
			}
			f.skip = n
		case "unsafeallow3f":
			f.unsafe3F = true
		case "bne": // modifies B
			if val == "" {
				return f, fmt.Errorf("flag BNE needs the characters not to escape (BNE=...)")
			}
			f.noEscapeChars = val
		case "co", "cookie", "h", "handler", "p", "proxy", "t", "type":
			ignored = append(ignored, item)
		default:
			return f, fmt.Errorf("unknown flag %q", item)
		}
	}
	f.ignored = strings.Join(ignored, ", ")
	if f.status != 0 {
		f.last = true // F, G and R=4xx end the rules
	}
	return f, nil
}

// finish ends parsing: RewriteCond lines that no RewriteRule follows are
// ignored, as Apache ignores them.
func (p *parser) finish() {
	for _, c := range p.pending {
		d := c.d
		d.Why = "RewriteCond without a RewriteRule after it: ignored (as Apache ignores it)"
		p.f.NotApplied = append(p.f.NotApplied, d)
	}
	p.pending = nil
}
