package htaccess

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is a small backtracking matcher for the Perl-compatible
// syntax that Go's RE2 refuses and that real .htaccess files use:
// lookahead and lookbehind ("^\.(?!well-known/)" in Drupal's),
// backreferences ("^(/.+)/(.*)::\2$" in Symfony's), atomic groups and
// possessive quantifiers. It runs only when regexp.Compile has refused a
// pattern, and every match has a step budget: a pattern that backtracks
// catastrophically fails with errBudget instead of holding the worker.
//
// Where both accept a pattern, it means what it means to Go (the
// differential fuzz test holds it to that), so a pattern does not change
// meaning with the engine that runs it.

// btBudget bounds the work of one match: calls into the matcher, plus
// the bytes compared by backreferences.
const btBudget = 100_000

// Limits on what the parser accepts.
const (
	btMaxRepeat = 1000 // as Go's regexp
	btMaxDepth  = 200  // group nesting
	btMaxNodes  = 10_000
)

var errBudget = errors.New("regular expression needs too many steps on this input")

type btOp uint8

const (
	btEmpty      btOp = iota
	btLit             // one rune
	btAny             // .
	btClass           // [...], \d, \w, ...
	btBOL             // ^
	btEOL             // $
	btBOT             // \A
	btEOT             // \z
	btEOTNL           // \Z
	btWordB           // \b
	btNonWordB        // \B
	btConcat          //
	btAlt             // |
	btRepeat          // * + ? {n,m}
	btGroup           // (...), (?:...)
	btLookahead       // (?=...), (?!...)
	btLookbehind      // (?<=...), (?<!...)
	btBackref         // \1
	btAtomic          // (?>...), and possessive quantifiers
)

type btNode struct {
	op     btOp
	r      rune         // btLit
	fold   bool         // btLit: case-insensitive
	dotAll bool         // btAny: matches \n too
	multi  bool         // btBOL, btEOL: at line breaks too
	cls    *btCharClass // btClass
	subs   []*btNode
	min    int  // btRepeat
	max    int  // btRepeat; < 0: no bound
	greedy bool // btRepeat
	cap    int  // btGroup: capture index, 0 if none; btBackref: the group
	neg    bool // lookaround: negative
	width  int  // btLookbehind: length in runes
}

// btRegexp is a compiled pattern.
type btRegexp struct {
	root     *btNode
	ncap     int
	anchored bool // starts with ^ or \A: try position 0 only
}

type btFlags struct {
	fold, dotAll, multi bool
}

type btParser struct {
	src   string
	pos   int
	ncap  int
	depth int
	nodes int
	flags btFlags
	refs  []int // backreferences seen, checked against ncap at the end
}

// compileBacktrack parses a Perl-compatible pattern; fold makes the whole
// of it case-insensitive, as Apache's [NC] does.
func compileBacktrack(src string, fold bool) (*btRegexp, error) {
	p := &btParser{src: src, flags: btFlags{fold: fold}}
	root, err := p.parseAlt()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		return nil, fmt.Errorf("unmatched ')' at offset %d", p.pos)
	}
	for _, r := range p.refs {
		if r > p.ncap {
			return nil, fmt.Errorf("backreference \\%d to a group that does not exist", r)
		}
	}
	re := &btRegexp{root: root, ncap: p.ncap}
	first := root
	for first.op == btConcat && len(first.subs) > 0 {
		first = first.subs[0]
	}
	re.anchored = first.op == btBOT || (first.op == btBOL && !first.multi)
	return re, nil
}

func (p *btParser) node(n *btNode) (*btNode, error) {
	p.nodes++
	if p.nodes > btMaxNodes {
		return nil, errors.New("pattern too large")
	}
	return n, nil
}

func (p *btParser) more() bool { return p.pos < len(p.src) }

func (p *btParser) parseAlt() (*btNode, error) {
	var alts []*btNode
	for {
		c, err := p.parseConcat()
		if err != nil {
			return nil, err
		}
		alts = append(alts, c)
		if p.more() && p.src[p.pos] == '|' {
			p.pos++
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return p.node(&btNode{op: btAlt, subs: alts})
}

func (p *btParser) parseConcat() (*btNode, error) {
	var items []*btNode
	for p.more() {
		c := p.src[p.pos]
		if c == '|' || c == ')' {
			break
		}
		atom, err := p.parseAtom()
		if err != nil {
			return nil, err
		}
		if atom == nil { // a comment or a flag group: nothing to match
			continue
		}
		if atom, err = p.parseQuant(atom); err != nil {
			return nil, err
		}
		items = append(items, atom)
	}
	switch len(items) {
	case 0:
		return p.node(&btNode{op: btEmpty})
	case 1:
		return items[0], nil
	}
	return p.node(&btNode{op: btConcat, subs: items})
}

// braces parses {n}, {n,} or {n,m} at p.pos; ok is false (and nothing
// consumed) if the text there is not one, and then '{' is a literal.
func (p *btParser) braces() (min, max int, ok bool, err error) {
	s := p.src[p.pos:]
	end := strings.IndexByte(s, '}')
	if len(s) < 3 || s[0] != '{' || end < 0 {
		return 0, 0, false, nil
	}
	body := s[1:end]
	lo, hi, comma := strings.Cut(body, ",")
	if !repeatCount(lo) || (comma && hi != "" && !repeatCount(hi)) {
		return 0, 0, false, nil
	}
	min, err = strconv.Atoi(lo)
	if err != nil || min > btMaxRepeat {
		return 0, 0, false, fmt.Errorf("repeat count %q over %d", body, btMaxRepeat)
	}
	max = min
	if comma {
		max = -1
		if hi != "" {
			max, err = strconv.Atoi(hi)
			if err != nil || max > btMaxRepeat {
				return 0, 0, false, fmt.Errorf("repeat count %q over %d", body, btMaxRepeat)
			}
			if max < min {
				return 0, 0, false, fmt.Errorf("repeat count %q out of order", body)
			}
		}
	}
	p.pos += end + 1
	return min, max, true, nil
}

// repeatCount reports whether s is a repeat count as Go's regexp reads
// one: digits without a leading zero.
func repeatCount(s string) bool {
	return allDigits(s) && (len(s) == 1 || s[0] != '0')
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (p *btParser) parseQuant(atom *btNode) (*btNode, error) {
	if !p.more() {
		return atom, nil
	}
	min, max := 0, 0
	switch p.src[p.pos] {
	case '*':
		min, max = 0, -1
		p.pos++
	case '+':
		min, max = 1, -1
		p.pos++
	case '?':
		min, max = 0, 1
		p.pos++
	case '{':
		lo, hi, ok, err := p.braces()
		if err != nil {
			return nil, err
		}
		if !ok {
			return atom, nil
		}
		min, max = lo, hi
	default:
		return atom, nil
	}
	n := &btNode{op: btRepeat, subs: []*btNode{atom}, min: min, max: max, greedy: true}
	possessive := false
	if p.more() {
		switch p.src[p.pos] {
		case '?':
			n.greedy = false
			p.pos++
		case '+':
			possessive = true
			p.pos++
		}
	}
	if p.more() {
		switch p.src[p.pos] {
		case '*', '+', '?':
			return nil, fmt.Errorf("nested repetition at offset %d", p.pos)
		case '{':
			if _, _, ok, _ := p.braces(); ok {
				return nil, fmt.Errorf("nested repetition at offset %d", p.pos)
			}
		}
	}
	n, err := p.node(n)
	if err != nil || !possessive {
		return n, err
	}
	return p.node(&btNode{op: btAtomic, subs: []*btNode{n}})
}

func (p *btParser) parseAtom() (*btNode, error) {
	c := p.src[p.pos]
	switch c {
	case '(':
		return p.parseGroup()
	case '[':
		return p.parseClass()
	case '.':
		p.pos++
		return p.node(&btNode{op: btAny, dotAll: p.flags.dotAll})
	case '^':
		p.pos++
		return p.node(&btNode{op: btBOL, multi: p.flags.multi})
	case '$':
		p.pos++
		return p.node(&btNode{op: btEOL, multi: p.flags.multi})
	case '\\':
		return p.parseEscape()
	case '*', '+', '?':
		return nil, fmt.Errorf("nothing to repeat at offset %d", p.pos)
	case '{':
		if _, _, ok, err := p.braces(); ok || err != nil {
			return nil, fmt.Errorf("nothing to repeat at offset %d", p.pos)
		}
	}
	r, w := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += w
	return p.node(&btNode{op: btLit, r: r, fold: p.flags.fold})
}

func (p *btParser) parseGroup() (*btNode, error) {
	start := p.pos
	p.pos++ // '('
	kind := btGroup
	capture := true
	neg := false
	rest := p.src[p.pos:]
	if strings.HasPrefix(rest, "?") {
		capture = false
		switch {
		case strings.HasPrefix(rest, "?:"):
			p.pos += 2
		case strings.HasPrefix(rest, "?="), strings.HasPrefix(rest, "?!"):
			kind, neg = btLookahead, rest[1] == '!'
			p.pos += 2
		case strings.HasPrefix(rest, "?<="), strings.HasPrefix(rest, "?<!"):
			kind, neg = btLookbehind, rest[2] == '!'
			p.pos += 3
		case strings.HasPrefix(rest, "?>"):
			kind = btAtomic
			p.pos += 2
		case strings.HasPrefix(rest, "?#"):
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return nil, fmt.Errorf("unterminated comment at offset %d", start)
			}
			p.pos += end + 1
			return nil, nil
		case strings.HasPrefix(rest, "?P<"), strings.HasPrefix(rest, "?<"), strings.HasPrefix(rest, "?'"):
			open := 2
			if rest[1] == 'P' {
				open = 3
			}
			closer := byte('>')
			if rest[open-1] == '\'' {
				closer = '\''
			}
			end := strings.IndexByte(rest[open:], closer)
			if end <= 0 || !isWordString(rest[open:open+end]) {
				return nil, fmt.Errorf("bad group name at offset %d", start)
			}
			p.pos += open + end + 1
			capture = true
		default:
			// Flags: (?i) (?-i) (?i:...) with i, s, m.
			i := 1
			on := true
			f := p.flags
			for ; i < len(rest); i++ {
				switch rest[i] {
				case 'i':
					f.fold = on
					continue
				case 's':
					f.dotAll = on
					continue
				case 'm':
					f.multi = on
					continue
				case '-':
					if !on {
						return nil, fmt.Errorf("bad flags at offset %d", start)
					}
					on = false
					continue
				}
				break
			}
			if i == len(rest) || (rest[i] != ')' && rest[i] != ':') || i == 1 {
				return nil, fmt.Errorf("unsupported group syntax at offset %d", start)
			}
			p.pos += i + 1
			if rest[i] == ')' {
				p.flags = f // for the rest of the enclosing group
				return nil, nil
			}
			saved := p.flags
			p.flags = f
			sub, err := p.groupBody(start)
			p.flags = saved
			return sub, err
		}
	}
	index := 0
	if capture {
		p.ncap++
		index = p.ncap
	}
	saved := p.flags
	sub, err := p.groupBody(start)
	p.flags = saved
	if err != nil {
		return nil, err
	}
	switch kind {
	case btLookahead:
		return p.node(&btNode{op: btLookahead, subs: []*btNode{sub}, neg: neg})
	case btLookbehind:
		return p.lookbehind(sub, neg)
	case btAtomic:
		return p.node(&btNode{op: btAtomic, subs: []*btNode{sub}})
	}
	if index == 0 {
		return sub, nil
	}
	return p.node(&btNode{op: btGroup, subs: []*btNode{sub}, cap: index})
}

// groupBody parses up to and including the ')' that closes a group
// opened at offset start.
func (p *btParser) groupBody(start int) (*btNode, error) {
	p.depth++
	if p.depth > btMaxDepth {
		return nil, errors.New("groups nested too deeply")
	}
	sub, err := p.parseAlt()
	p.depth--
	if err != nil {
		return nil, err
	}
	if !p.more() || p.src[p.pos] != ')' {
		return nil, fmt.Errorf("missing ')' for the group at offset %d", start)
	}
	p.pos++
	return sub, nil
}

// lookbehind builds (?<=sub) or (?<!sub). Each alternative must have a
// fixed length, as in PCRE; alternatives of different lengths become
// separate assertions.
func (p *btParser) lookbehind(sub *btNode, neg bool) (*btNode, error) {
	alts := []*btNode{sub}
	if sub.op == btAlt {
		alts = sub.subs
	}
	var parts []*btNode
	for _, a := range alts {
		w, ok := fixedWidth(a)
		if !ok {
			return nil, errors.New("lookbehind is not of fixed length")
		}
		n, err := p.node(&btNode{op: btLookbehind, subs: []*btNode{a}, neg: neg, width: w})
		if err != nil {
			return nil, err
		}
		parts = append(parts, n)
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	if neg { // none of them may match
		return p.node(&btNode{op: btConcat, subs: parts})
	}
	return p.node(&btNode{op: btAlt, subs: parts})
}

// fixedWidth reports the length in runes of every match of n.
func fixedWidth(n *btNode) (int, bool) {
	switch n.op {
	case btLit, btAny, btClass:
		return 1, true
	case btEmpty, btBOL, btEOL, btBOT, btEOT, btEOTNL, btWordB, btNonWordB, btLookahead, btLookbehind:
		return 0, true
	case btGroup, btAtomic:
		return fixedWidth(n.subs[0])
	case btConcat:
		total := 0
		for _, s := range n.subs {
			w, ok := fixedWidth(s)
			if !ok {
				return 0, false
			}
			total += w
		}
		return total, true
	case btAlt:
		w0, ok := fixedWidth(n.subs[0])
		if !ok {
			return 0, false
		}
		for _, s := range n.subs[1:] {
			if w, ok := fixedWidth(s); !ok || w != w0 {
				return 0, false
			}
		}
		return w0, true
	case btRepeat:
		if n.min != n.max {
			return 0, false
		}
		w, ok := fixedWidth(n.subs[0])
		return w * n.min, ok
	}
	return 0, false
}

func isWordString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func isWordByte(c byte) bool {
	return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isWordRune(r rune) bool { return r < utf8.RuneSelf && isWordByte(byte(r)) }

func (p *btParser) parseEscape() (*btNode, error) {
	start := p.pos
	p.pos++ // '\\'
	if !p.more() {
		return nil, errors.New("trailing backslash")
	}
	c := p.src[p.pos]
	switch c {
	case 'b':
		p.pos++
		return p.node(&btNode{op: btWordB})
	case 'B':
		p.pos++
		return p.node(&btNode{op: btNonWordB})
	case 'A':
		p.pos++
		return p.node(&btNode{op: btBOT})
	case 'z':
		p.pos++
		return p.node(&btNode{op: btEOT})
	case 'Z':
		p.pos++
		return p.node(&btNode{op: btEOTNL})
	case 'Q':
		// Replace \Q...\E by the same characters escaped one by one, so
		// that a quantifier after it applies to the last one, as in PCRE.
		body := p.src[p.pos+1:]
		after := len(p.src)
		if end := strings.Index(body, `\E`); end >= 0 {
			after = p.pos + 1 + end + 2
			body = body[:end]
		}
		p.src = p.src[:start] + regexp.QuoteMeta(body) + p.src[after:]
		p.pos = start
		if len(p.src) > 4*btMaxNodes {
			return nil, errors.New("pattern too large")
		}
		if body == "" || !p.more() {
			return nil, nil
		}
		return p.parseAtom()
	case 'E':
		p.pos++
		return nil, nil
	case 'g':
		p.pos++
		n, ok := p.groupNumber()
		if !ok {
			return nil, fmt.Errorf("unsupported \\g form at offset %d", start)
		}
		p.refs = append(p.refs, n)
		return p.node(&btNode{op: btBackref, cap: n, fold: p.flags.fold})
	}
	if '1' <= c && c <= '9' {
		p.pos++
		if p.more() && '0' <= p.src[p.pos] && p.src[p.pos] <= '9' {
			return nil, fmt.Errorf("backreference or octal escape %q not supported", p.src[start:p.pos+1])
		}
		n := int(c - '0')
		p.refs = append(p.refs, n)
		return p.node(&btNode{op: btBackref, cap: n, fold: p.flags.fold})
	}
	if cls, ok, err := p.shorthand(); err != nil {
		return nil, err
	} else if ok {
		return p.node(&btNode{op: btClass, cls: cls})
	}
	r, err := p.escapedRune(false)
	if err != nil {
		return nil, err
	}
	return p.node(&btNode{op: btLit, r: r, fold: p.flags.fold})
}

// groupNumber reads N or {N} after \g.
func (p *btParser) groupNumber() (int, bool) {
	s := p.src[p.pos:]
	digits := s
	braced := strings.HasPrefix(s, "{")
	if braced {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return 0, false
		}
		digits = s[1:end]
	} else {
		i := 0
		for i < len(s) && i < 2 && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		digits = s[:i]
	}
	if !allDigits(digits) {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n == 0 || n > 99 {
		return 0, false
	}
	p.pos += len(digits)
	if braced {
		p.pos += 2
	}
	return n, true
}

// shorthand parses \d \D \w \W \s \S \h \H \pX \p{Name} \PX at p.pos
// (just after the backslash).
func (p *btParser) shorthand() (*btCharClass, bool, error) {
	c := p.src[p.pos]
	var fn func(rune) bool
	neg := false
	switch c {
	case 'd', 'D':
		fn, neg = isDigitRune, c == 'D'
	case 'w', 'W':
		fn, neg = isWordRune, c == 'W'
	case 's', 'S':
		fn, neg = isSpaceRune, c == 'S'
	case 'h', 'H':
		fn, neg = isHSpaceRune, c == 'H'
	case 'p', 'P':
		neg = c == 'P'
		name := ""
		rest := p.src[p.pos+1:]
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return nil, false, errors.New("unterminated \\p{")
			}
			name = rest[1:end]
			p.pos += end + 1
		case rest != "":
			name = rest[:1]
			p.pos++
		default:
			return nil, false, errors.New("\\p without a name")
		}
		if strings.HasPrefix(name, "^") {
			name, neg = name[1:], !neg
		}
		tab := unicode.Categories[name]
		if tab == nil {
			tab = unicode.Scripts[name]
		}
		if tab == nil && name == "Any" {
			fn = func(rune) bool { return true }
		} else if tab == nil {
			return nil, false, fmt.Errorf("unknown Unicode class %q", name)
		} else {
			fn = func(r rune) bool { return unicode.Is(tab, r) }
		}
	default:
		return nil, false, nil
	}
	p.pos++
	return &btCharClass{fold: p.flags.fold, fns: []btClassFn{{fn, neg}}}, true, nil
}

func isDigitRune(r rune) bool { return '0' <= r && r <= '9' }
func isSpaceRune(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\f' || r == '\r' }
func isHSpaceRune(r rune) bool {
	return r == ' ' || r == '\t' || r == 0xa0 || unicode.Is(unicode.Zs, r)
}

// escapedRune reads the character of an escape (p.pos just after the
// backslash) that stands for one rune.
func (p *btParser) escapedRune(inClass bool) (rune, error) {
	c := p.src[p.pos]
	p.pos++
	switch c {
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'f':
		return '\f', nil
	case 'v':
		return '\v', nil
	case 'a':
		return '\a', nil
	case 'e':
		return 0x1b, nil
	case 'b':
		if inClass {
			return '\b', nil
		}
	case '0':
		v := 0
		for i := 0; i < 2 && p.more() && '0' <= p.src[p.pos] && p.src[p.pos] <= '7'; i++ {
			v = v*8 + int(p.src[p.pos]-'0')
			p.pos++
		}
		return rune(v), nil
	case 'x':
		s := p.src[p.pos:]
		var hex string
		if strings.HasPrefix(s, "{") {
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return 0, errors.New("unterminated \\x{")
			}
			hex = s[1:end]
			p.pos += end + 1
		} else {
			n := 0
			for n < 2 && n < len(s) && isHex(s[n]) {
				n++
			}
			hex = s[:n]
			p.pos += n
		}
		if hex == "" {
			return 0, nil // PCRE: \x alone is NUL
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || v > unicode.MaxRune {
			return 0, fmt.Errorf("bad \\x escape %q", hex)
		}
		return rune(v), nil
	}
	if c < utf8.RuneSelf {
		if isWordByte(c) {
			return 0, fmt.Errorf("unsupported escape \\%c", c)
		}
		return rune(c), nil
	}
	p.pos--
	r, w := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += w
	return r, nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// btClass is a bracketed class or a shorthand such as \d.
type btCharClass struct {
	neg    bool
	fold   bool
	ranges []rune // pairs: lo, hi
	fns    []btClassFn
}

type btClassFn struct {
	f   func(rune) bool
	neg bool
}

func (c *btCharClass) has(r rune) bool {
	for i := 0; i+1 < len(c.ranges); i += 2 {
		if c.ranges[i] <= r && r <= c.ranges[i+1] {
			return true
		}
	}
	for _, f := range c.fns {
		if f.f(r) != f.neg {
			return true
		}
	}
	return false
}

// matches reports whether r is in the class. Case-insensitive, as in
// Go's regexp, every item is folded before any negation: r is in \W
// only if no case of r is a word character (so (?i)\W refuses 'k' and
// the Kelvin sign alike).
func (c *btCharClass) matches(r rune) bool {
	if !c.fold {
		return c.has(r) != c.neg
	}
	in := false
	for f := r; ; {
		for i := 0; i+1 < len(c.ranges); i += 2 {
			if c.ranges[i] <= f && f <= c.ranges[i+1] {
				in = true
			}
		}
		for _, fn := range c.fns {
			if !fn.neg && fn.f(f) {
				in = true
			}
		}
		if f = unicode.SimpleFold(f); f == r {
			break
		}
	}
	for _, fn := range c.fns {
		if !fn.neg || in {
			continue
		}
		any := false
		for f := r; ; {
			if fn.f(f) {
				any = true
				break
			}
			if f = unicode.SimpleFold(f); f == r {
				break
			}
		}
		in = !any
	}
	return in != c.neg
}

var posixClasses = map[string]func(rune) bool{
	"alnum": func(r rune) bool { return isDigitRune(r) || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') },
	"alpha": func(r rune) bool { return ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') },
	"ascii": func(r rune) bool { return r < 0x80 },
	"blank": func(r rune) bool { return r == ' ' || r == '\t' },
	"cntrl": func(r rune) bool { return r < 0x20 || r == 0x7f },
	"digit": isDigitRune,
	"graph": func(r rune) bool { return '!' <= r && r <= '~' },
	"lower": func(r rune) bool { return 'a' <= r && r <= 'z' },
	"print": func(r rune) bool { return ' ' <= r && r <= '~' },
	"punct": func(r rune) bool {
		return ('!' <= r && r <= '/') || (':' <= r && r <= '@') || ('[' <= r && r <= '`') || ('{' <= r && r <= '~')
	},
	"space":  func(r rune) bool { return isSpaceRune(r) || r == '\v' },
	"upper":  func(r rune) bool { return 'A' <= r && r <= 'Z' },
	"word":   isWordRune,
	"xdigit": func(r rune) bool { return r < utf8.RuneSelf && isHex(byte(r)) },
}

func (p *btParser) parseClass() (*btNode, error) {
	start := p.pos
	p.pos++ // '['
	cls := &btCharClass{fold: p.flags.fold}
	if p.more() && p.src[p.pos] == '^' {
		cls.neg = true
		p.pos++
	}
	first := true
	for {
		if !p.more() {
			return nil, fmt.Errorf("missing ']' for the class at offset %d", start)
		}
		c := p.src[p.pos]
		if c == ']' && !first {
			p.pos++
			break
		}
		first = false
		if c == '[' && strings.HasPrefix(p.src[p.pos:], "[:") {
			end := strings.Index(p.src[p.pos:], ":]")
			if end > 2 {
				name := p.src[p.pos+2 : p.pos+end]
				neg := strings.HasPrefix(name, "^")
				if fn := posixClasses[strings.TrimPrefix(name, "^")]; fn != nil {
					cls.fns = append(cls.fns, btClassFn{fn, neg})
					p.pos += end + 2
					continue
				}
				return nil, fmt.Errorf("unknown POSIX class %q", name)
			}
		}
		lo, sub, err := p.classAtom()
		if err != nil {
			return nil, err
		}
		if sub != nil {
			cls.fns = append(cls.fns, sub.fns...)
			continue
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			var sub2 *btCharClass
			hi, sub2, err = p.classAtom()
			if err != nil {
				return nil, err
			}
			if sub2 != nil {
				return nil, fmt.Errorf("bad range in the class at offset %d", start)
			}
			if hi < lo {
				return nil, fmt.Errorf("range out of order in the class at offset %d", start)
			}
		}
		cls.ranges = append(cls.ranges, lo, hi)
	}
	return p.node(&btNode{op: btClass, cls: cls})
}

// classAtom reads one character of a class, or a shorthand class.
func (p *btParser) classAtom() (rune, *btCharClass, error) {
	if p.src[p.pos] != '\\' {
		r, w := utf8.DecodeRuneInString(p.src[p.pos:])
		p.pos += w
		return r, nil, nil
	}
	p.pos++
	if !p.more() {
		return 0, nil, errors.New("trailing backslash")
	}
	if cls, ok, err := p.shorthand(); err != nil || ok {
		return 0, cls, err
	}
	r, err := p.escapedRune(true)
	return r, nil, err
}

// btMatcher is the state of one match.
type btMatcher struct {
	s     string
	caps  []int
	steps int
	limit int
	over  bool
}

// find returns the leftmost match as regexp.FindStringSubmatchIndex
// does, nil if there is none, or errBudget if it needs more than limit
// steps; and the steps it took.
func (re *btRegexp) find(s string, limit int) (idx []int, steps int, err error) {
	m := &btMatcher{s: s, caps: make([]int, 2*(re.ncap+1)), limit: limit}
	idx, err = re.search(m)
	return idx, m.steps, err
}

func (re *btRegexp) search(m *btMatcher) ([]int, error) {
	s := m.s
	for start := 0; start <= len(s); {
		for i := range m.caps {
			m.caps[i] = -1
		}
		if m.match(re.root, start, func(j int) bool {
			m.caps[0], m.caps[1] = start, j
			return true
		}) {
			return m.caps, nil
		}
		if m.over {
			return nil, errBudget
		}
		if re.anchored || start == len(s) {
			break
		}
		_, w := utf8.DecodeRuneInString(s[start:])
		start += w
	}
	return nil, nil
}

func (m *btMatcher) spend(n int) bool {
	m.steps += n
	if m.steps > m.limit {
		m.over = true
	}
	return !m.over
}

func foldEq(a, b rune) bool {
	if a == b {
		return true
	}
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

// match matches n at i and calls k with the end of each way it matches,
// in order of preference, until k returns true.
func (m *btMatcher) match(n *btNode, i int, k func(int) bool) bool {
	if !m.spend(1) {
		return false
	}
	s := m.s
	switch n.op {
	case btEmpty:
		return k(i)
	case btLit:
		if i >= len(s) {
			return false
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r != n.r && !(n.fold && foldEq(r, n.r)) {
			return false
		}
		return k(i + w)
	case btAny:
		if i >= len(s) {
			return false
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == '\n' && !n.dotAll {
			return false
		}
		return k(i + w)
	case btClass:
		if i >= len(s) {
			return false
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if !n.cls.matches(r) {
			return false
		}
		return k(i + w)
	case btBOL:
		if i == 0 || (n.multi && s[i-1] == '\n') {
			return k(i)
		}
		return false
	case btEOL:
		if i == len(s) || (n.multi && s[i] == '\n') {
			return k(i)
		}
		return false
	case btBOT:
		return i == 0 && k(i)
	case btEOT:
		return i == len(s) && k(i)
	case btEOTNL:
		return (i == len(s) || (i == len(s)-1 && s[i] == '\n')) && k(i)
	case btWordB, btNonWordB:
		before := i > 0 && isWordByte(s[i-1])
		after := i < len(s) && isWordByte(s[i])
		if (before != after) == (n.op == btWordB) {
			return k(i)
		}
		return false
	case btConcat:
		return m.seq(n.subs, i, k)
	case btAlt:
		for _, sub := range n.subs {
			if m.match(sub, i, k) {
				return true
			}
			if m.over {
				return false
			}
		}
		return false
	case btGroup:
		c := 2 * n.cap
		return m.match(n.subs[0], i, func(j int) bool {
			os, oe := m.caps[c], m.caps[c+1]
			m.caps[c], m.caps[c+1] = i, j
			if k(j) {
				return true
			}
			m.caps[c], m.caps[c+1] = os, oe
			return false
		})
	case btRepeat:
		return m.repeat(n, 0, i, false, k)
	case btLookahead, btLookbehind, btAtomic:
		return m.assert(n, i, k)
	case btBackref:
		c := 2 * n.cap
		if c+1 >= len(m.caps) || m.caps[c] < 0 {
			return false // an unset group matches nothing, as in PCRE
		}
		ref := s[m.caps[c]:m.caps[c+1]]
		if !m.spend(len(ref)) {
			return false
		}
		if n.fold {
			j := i
			for _, r := range ref {
				if j >= len(s) {
					return false
				}
				r2, w := utf8.DecodeRuneInString(s[j:])
				if !foldEq(r, r2) {
					return false
				}
				j += w
			}
			return k(j)
		}
		if !strings.HasPrefix(s[i:], ref) {
			return false
		}
		return k(i + len(ref))
	}
	return false
}

func (m *btMatcher) seq(subs []*btNode, i int, k func(int) bool) bool {
	if len(subs) == 0 {
		return k(i)
	}
	return m.match(subs[0], i, func(j int) bool { return m.seq(subs[1:], j, k) })
}

// repeat matches the count-th and later iterations of a btRepeat.
//
// Iterations that match the empty string follow Go's regexp, which
// compiles x{n,} as n-1 copies of x and then x+ (x* as (x+)? when x can
// be empty), and whose loop drops a thread that comes back to a state it
// has already been in at the same position. So below the minimum, in a
// bounded repeat and as the first iteration of the loop, an empty
// iteration is allowed; in the loop after that, an empty iteration is
// refused, and none starts where an empty one did: the loop ends with
// the captures of the iteration before. (PCRE would keep the empty
// iteration's captures.)
func (m *btMatcher) repeat(n *btNode, count, i int, prevEmpty bool, k func(int) bool) bool {
	sub := n.subs[0]
	loop := max(n.min-1, 0) // the iteration that enters Go's x+ loop
	inLoop := n.max < 0 && count > loop
	next := func(j int) bool {
		if j == i && inLoop {
			return false
		}
		return m.repeat(n, count+1, j, j == i, k)
	}
	if count < n.min {
		return m.match(sub, i, next)
	}
	more := (n.max < 0 || count < n.max) && !(inLoop && prevEmpty)
	if n.greedy {
		if more && m.match(sub, i, next) {
			return true
		}
		return !m.over && k(i)
	}
	if k(i) {
		return true
	}
	return !m.over && more && m.match(sub, i, next)
}

// assert runs lookarounds and atomic groups: the inside is matched once,
// its first way only, and never backtracked into.
func (m *btMatcher) assert(n *btNode, i int, k func(int) bool) bool {
	saved := append([]int(nil), m.caps...)
	restore := func() { copy(m.caps, saved) }
	end := -1
	var ok bool
	switch n.op {
	case btLookahead:
		ok = m.match(n.subs[0], i, func(int) bool { return true })
		end = i
	case btLookbehind:
		start := i
		for w := 0; w < n.width; w++ {
			if start == 0 {
				start = -1
				break
			}
			_, size := utf8.DecodeLastRuneInString(m.s[:start])
			start -= size
		}
		if start >= 0 {
			ok = m.match(n.subs[0], start, func(j int) bool { return j == i })
		}
		end = i
	case btAtomic:
		ok = m.match(n.subs[0], i, func(j int) bool { end = j; return true })
	}
	if m.over {
		return false
	}
	if n.neg {
		restore()
		if ok {
			return false
		}
		return k(i)
	}
	if !ok {
		return false
	}
	if k(end) {
		return true
	}
	restore()
	return false
}
