package htaccess

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxFileSize is the largest file Parse accepts. Real .htaccess files are
// a few KiB; Drupal's, one of the longest, is under 8.
const MaxFileSize = 64 << 10

// ErrTooLarge is returned (wrapped, with the file's name) by Parse for
// input over MaxFileSize, and by Cache for a file over its limit.
var ErrTooLarge = errors.New("htaccess: file too large")

// A File is a parsed .htaccess file. It is immutable and safe for
// concurrent use.
type File struct {
	// Name is the name Parse was given, used in reasons and errors.
	Name string
	// NotApplied lists, in file order, each directive (or block) that
	// mpmd does not honour as Apache would, with what it does instead.
	// The daemon logs them once each time it parses the file.
	NotApplied []Directive

	dir       accessConf      // access directives outside <Files>
	files     []*filesSection // <Files>, <FilesMatch>, in file order
	closed    *Directive      // non-nil: deny every request under this directory (fail closed)
	rewrite   rewriteConf
	redirects []*aliasRedirect // Redirect, RedirectMatch
}

// A Directive is one line of a file that mpmd does not apply as Apache
// would.
type Directive struct {
	Line int    // where the directive starts, from 1
	Text string // the directive as written, continuation lines joined
	Why  string // what mpmd does instead
}

func (d Directive) String() string {
	return fmt.Sprintf("line %d: %s (%s)", d.Line, d.Text, d.Why)
}

// A SyntaxError is a problem with which Apache would refuse the file
// (and answer 500 for every request under its directory).
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// where names a directive of f for a reason: "name:line: text".
func (f *File) where(d Directive) string {
	return fmt.Sprintf("%s:%d: %s", f.Name, d.Line, d.Text)
}

// node is a logical line of the file: a directive, or a section with the
// nodes inside it.
type node struct {
	line     int
	text     string // the whole logical line, for reports
	name     string // the directive or section name as written
	args     string // what follows the name (for a section, without the '>')
	section  bool
	children []*node
}

func (n *node) directive() Directive { return Directive{Line: n.line, Text: n.text} }

// Parse parses the content of a .htaccess file. name is used in errors
// and reasons only (typically the file's path).
//
// Parse reads the whole file even after an error, and returns every
// syntax error it found, joined; each is a *SyntaxError with the line.
// A file with errors gives a nil *File: Apache answers 500 Internal
// Server Error to every request under such a file's directory, and so
// should its caller (a Tree does).
func Parse(name string, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w (%d bytes, the limit is %d)", name, ErrTooLarge, len(data), MaxFileSize)
	}
	p := &parser{f: &File{Name: name}}
	root := p.build(logicalLines(string(data)))
	p.interpret(root, scope{})
	p.finish()
	slices.SortStableFunc(p.f.NotApplied, func(a, b Directive) int { return a.Line - b.Line })
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b error) int {
			return a.(*SyntaxError).Line - b.(*SyntaxError).Line
		})
		return nil, errors.Join(p.errs...)
	}
	return p.f, nil
}

type parser struct {
	f       *File
	errs    []error        // all *SyntaxError
	pending []*rewriteCond // RewriteCond lines waiting for their RewriteRule
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &SyntaxError{File: p.f.Name, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) notApplied(n *node, why string) {
	d := n.directive()
	d.Why = why
	p.f.NotApplied = append(p.f.NotApplied, d)
}

type logicalLine struct {
	n    int
	text string
}

// logicalLines splits a file as Apache's ap_cfg_getline does: a line
// ending in a single backslash continues on the next; leading and
// trailing white space is dropped; blank lines and lines starting with
// '#' are comments.
func logicalLines(s string) []logicalLine {
	phys := strings.Split(s, "\n")
	var out []logicalLine
	for i := 0; i < len(phys); i++ {
		start := i + 1
		l := strings.TrimSuffix(phys[i], "\r")
		for continues(l) && i+1 < len(phys) {
			i++
			l = l[:len(l)-1] + strings.TrimSuffix(phys[i], "\r")
		}
		l = strings.Trim(l, " \t\r\f\v")
		if l == "" || l[0] == '#' {
			continue
		}
		out = append(out, logicalLine{start, l})
	}
	return out
}

func continues(l string) bool {
	return strings.HasSuffix(l, `\`) && !strings.HasSuffix(l, `\\`)
}

// build turns lines into a tree of sections.
func (p *parser) build(lines []logicalLine) *node {
	root := &node{section: true, name: "(file)"}
	stack := []*node{root}
	for _, l := range lines {
		top := stack[len(stack)-1]
		if strings.IndexByte(l.text, 0) >= 0 {
			p.errorf(l.n, "NUL byte in line")
			continue
		}
		if strings.HasPrefix(l.text, "</") {
			name, ok := strings.CutSuffix(l.text[2:], ">")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				p.errorf(l.n, "%q: a closing tag must be </Name>", l.text)
				continue
			}
			if strings.EqualFold(name, top.name) && top != root {
				stack = stack[:len(stack)-1]
				continue
			}
			opened := -1
			for i := len(stack) - 1; i > 0; i-- {
				if strings.EqualFold(stack[i].name, name) {
					opened = i
					break
				}
			}
			if top == root {
				p.errorf(l.n, "</%s> without an opening <%s>", name, name)
			} else {
				p.errorf(l.n, "</%s> where </%s> (opened at line %d) was expected", name, top.name, top.line)
			}
			if opened > 0 {
				stack = stack[:opened]
			}
			continue
		}
		n := &node{line: l.n, text: l.text}
		if strings.HasPrefix(l.text, "<") {
			body, ok := strings.CutSuffix(l.text[1:], ">")
			n.section = true
			n.name, n.args = splitName(body)
			if n.name == "" {
				p.errorf(l.n, "%q: a section needs a name", l.text)
				continue
			}
			if !ok {
				// Still a section, so that its closing tag is not a
				// second error.
				p.errorf(l.n, "<%s> lacks its closing '>'", n.name)
			}
			top.children = append(top.children, n)
			stack = append(stack, n)
			continue
		}
		n.name, n.args = splitName(l.text)
		top.children = append(top.children, n)
	}
	for i := len(stack) - 1; i > 0; i-- {
		p.errorf(stack[i].line, "<%s> is not closed", stack[i].name)
	}
	return root
}

// splitName splits a line (or a section tag's inside) into its first
// word and the rest.
func splitName(s string) (name, args string) {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.Trim(s[i+1:], " \t")
	}
	return s, ""
}

// words splits arguments as Apache's ap_getword_conf does: white space
// separates words; a word may be quoted with " or ', in which a
// backslash escapes the quote; outside quotes, a doubled backslash is
// one.
func words(s string) []string {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out
		}
		var w strings.Builder
		if q := s[0]; q == '"' || q == '\'' {
			i := 1
			for ; i < len(s) && s[i] != q; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\') {
					i++
				}
				w.WriteByte(s[i])
			}
			if i < len(s) {
				i++
			}
			out = append(out, w.String())
			s = s[i:]
			continue
		}
		i := 0
		for ; i < len(s) && s[i] != ' ' && s[i] != '\t'; i++ {
			if s[i] == '\\' && i+1 < len(s) && s[i+1] == '\\' {
				i++
			}
			w.WriteByte(s[i])
		}
		out = append(out, w.String())
		s = s[i:]
	}
}
