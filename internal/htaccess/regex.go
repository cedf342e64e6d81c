package htaccess

import (
	"fmt"
	"regexp"
)

// regex is an Apache regular expression (PCRE syntax). Go's regexp runs
// it when RE2 accepts it, which is almost always, in time linear in the
// input; otherwise the bounded backtracking matcher of backtrack.go
// does.
type regex struct {
	src string
	re  *regexp.Regexp
	bt  *btRegexp
}

// compileRegex compiles an Apache pattern; fold makes it case-insensitive
// (Apache's [NC] and "nocase").
func compileRegex(src string, fold bool) (*regex, error) {
	goSrc := src
	if fold {
		goSrc = "(?i)" + src
	}
	if re, err := regexp.Compile(goSrc); err == nil {
		return &regex{src: src, re: re}, nil
	}
	bt, err := compileBacktrack(src, fold)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %v", src, err)
	}
	return &regex{src: src, bt: bt}, nil
}

// find returns the submatch indices of the leftmost match in s, as
// regexp.FindStringSubmatchIndex does, or nil. The error is errBudget
// when the backtracking matcher gave up; callers decide whether that
// counts as a match (a deny does: it fails closed) or not.
func (r *regex) find(s string) ([]int, error) {
	if r.re != nil {
		return r.re.FindStringSubmatchIndex(s), nil
	}
	return r.bt.find(s)
}

// captures turns submatch indices into the strings $0..$9 (or %0..%9):
// groups that did not take part are empty.
func captures(s string, idx []int) [10]string {
	var c [10]string
	for g := 0; g < 10 && 2*g+1 < len(idx); g++ {
		if idx[2*g] >= 0 {
			c[g] = s[idx[2*g]:idx[2*g+1]]
		}
	}
	return c
}
