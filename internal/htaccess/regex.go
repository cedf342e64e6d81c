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

// requestBudget bounds the work of one request's rules (see budget): a
// step is about 6 ns, so the allowance is some 25 ms. The application
// files in testdata spend under 0.05% of it on a request and its
// internal redirect; a file with a few hundred conditions (caching and
// firewall plugins) would spend a few percent.
const requestBudget = 4_000_000

// Step costs of what is not a backtracking step, measured against it.
const (
	costRule    = 40 // evaluating a rule or a condition, besides its match
	costPerByte = 2  // an RE2 match, per byte of input
)

// A budget is what is left of a request's allowance of work. A
// backtracking match spends its steps; an RE2 match, which is linear,
// two steps per byte of input; every rule and condition evaluated, a few
// more. A request that exhausts it fails with 500, so that no .htaccess
// file, however written ([N] loops, thousands of rules, a pattern that
// backtracks), holds a worker for long.
type budget struct{ steps int }

func newBudget() *budget { return &budget{steps: requestBudget} }

func (b *budget) spend(n int) {
	if b != nil {
		b.steps -= n
	}
}

func (b *budget) exhausted() bool { return b != nil && b.steps <= 0 }

// find returns the submatch indices of the leftmost match in s, as
// regexp.FindStringSubmatchIndex does, or nil, spending b (which may be
// nil). The error is errBudget when the backtracking matcher gave up on
// this match, or when b is exhausted; callers decide whether that counts
// as a match (a deny does: it fails closed) or not.
func (r *regex) find(s string, b *budget) ([]int, error) {
	if b.exhausted() {
		return nil, errBudget
	}
	if r.re != nil {
		b.spend(costPerByte*len(s) + 1)
		return r.re.FindStringSubmatchIndex(s), nil
	}
	limit := btBudget
	if b != nil && b.steps < limit {
		limit = b.steps
	}
	idx, used, err := r.bt.find(s, limit)
	b.spend(used)
	return idx, err
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
