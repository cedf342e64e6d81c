package htaccess

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The patterns that real .htaccess files use and RE2 refuses.
func TestBacktrackPCRE(t *testing.T) {
	tests := []struct {
		pattern string
		fold    bool
		in      string
		want    []string // $0, $1, ...; nil: no match
	}{
		// Drupal's FilesMatch and its hidden-directory RewriteRule.
		{`^(\.(?!well-known).*|Entries.*|composer\.(json|lock))$`, false, ".env", []string{".env", ".env", ""}},
		{`^(\.(?!well-known).*|Entries.*|composer\.(json|lock))$`, false, ".well-known", nil},
		{`^(\.(?!well-known).*|Entries.*|composer\.(json|lock))$`, false, "composer.lock", []string{"composer.lock", "composer.lock", "lock"}},
		{`/\.|^\.(?!well-known/)`, false, ".well-known/acme-challenge/x", nil},
		{`/\.|^\.(?!well-known/)`, false, ".git/config", []string{"."}},
		{`/\.|^\.(?!well-known/)`, false, "sites/.git/config", []string{"/."}},
		{`/\.|^\.(?!well-known/)`, false, "index.php", nil},
		// Symfony's and Laminas's RewriteBase detection.
		{`^(/.+)/(.*)::\2$`, false, "/app/public/blog/post::blog/post", []string{"/app/public/blog/post::blog/post", "/app/public", "blog/post"}},
		{`^(/.+)/(.*)::\2$`, false, "/blog/post::blog/post", nil},
		{`^(/.+)/(.*)::\2$`, false, "/sub/::", []string{"/sub/::", "/sub", ""}},
		// Lookbehind, fixed and alternating lengths.
		{`(?<!\.min)\.js$`, false, "app.js", []string{".js"}},
		{`(?<!\.min)\.js$`, false, "app.min.js", nil},
		{`(?<=a|bc)d`, false, "bcd", []string{"d"}},
		{`(?<!a|bc)d`, false, "bcd", nil},
		{`(?<!a|bc)d`, false, "xd", []string{"d"}},
		// Backreferences, case-insensitive too.
		{`(\w+)-\1`, false, "abc-abc", []string{"abc-abc", "abc"}},
		{`(\w+)-\1`, true, "abc-ABC", []string{"abc-ABC", "abc"}},
		{`(\w+)-\1`, false, "abc-ABC", nil},
		{`(a)?b\1`, false, "b", nil}, // an unset group matches nothing
		// Atomic groups and possessive quantifiers do not give back.
		{`(?>a+)ab`, false, "aaab", nil},
		{`a++b`, false, "aaab", []string{"aaab"}},
		{`a*+a`, false, "aaa", nil},
		// Lazy quantifiers, classes, escapes.
		{`^(.+?)(\d*)\1$`, false, "ab12ab", []string{"ab12ab", "ab", "12"}},
		{`^[\w.-]+\h*$`, false, "a.b-c \t", []string{"a.b-c \t"}},
		{`\Qa.b\E+(?=c)`, false, "a.bbbc", []string{"a.bbb"}},
		{`(?i:ABC)(?!x)\z`, false, "abc", []string{"abc"}},
		{`^\.ht(?!ml)`, true, ".HTACCESS", []string{".HT"}},
		{`(?#a comment)^x(?=y)`, false, "xy", []string{"x"}},
	}
	for _, tt := range tests {
		re, err := compileRegex(tt.pattern, tt.fold)
		if err != nil {
			t.Errorf("compile %q: %v", tt.pattern, err)
			continue
		}
		if re.bt == nil {
			t.Errorf("%q compiled with RE2: the test means the fallback", tt.pattern)
		}
		idx, err := re.find(tt.in, nil)
		if err != nil {
			t.Errorf("%q on %q: %v", tt.pattern, tt.in, err)
			continue
		}
		var got []string
		if idx != nil {
			for g := 0; 2*g < len(idx); g++ {
				if idx[2*g] < 0 {
					got = append(got, "")
				} else {
					got = append(got, tt.in[idx[2*g]:idx[2*g+1]])
				}
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q on %q = %q, want %q", tt.pattern, tt.in, got, tt.want)
		}
	}
}

func TestBacktrackRefuses(t *testing.T) {
	for _, p := range []string{
		`(?<=a+)b`,  // lookbehind of variable length
		`(a)\2`,     // no group 2
		`(?R)`,      // recursion
		`(?(1)a|b)`, // conditional
		`(?x) a b`,  // extended mode
		`\k<name>`,  // named backreference
		`a{2,1}`,    // out of order
		`(a`,        // unclosed
		`[a`,        // unclosed
		`a{1001}`,   // too many
		`\p{NoSuchOne}`,
		`(?<!\1)x`,
		strings.Repeat("(", 300) + "a" + strings.Repeat(")", 300) + `\1`,
	} {
		if re, err := compileRegex(p, false); err == nil {
			t.Errorf("compileRegex(%q) succeeded (re2=%v), want an error", p, re.re != nil)
		}
	}
}

// A pattern that backtracks exponentially stops at the budget instead of
// holding the worker.
func TestBacktrackBudget(t *testing.T) {
	re, err := compileRegex(`^(a+)+\1$`, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = re.find(strings.Repeat("a", 40)+"b", nil)
	if !errors.Is(err, errBudget) {
		t.Fatalf("err = %v, want errBudget", err)
	}
}

// Where RE2 and the backtracking matcher both accept a pattern, they
// must agree on every input: match or not, and every submatch.
func TestBacktrackAgreesWithRE2(t *testing.T) {
	patterns := []string{
		`a`, `abc`, `a|b`, `a*`, `a+?`, `(a|ab)(c|bcd)(d*)`, `^$`, `^a$`, `x*$`,
		`[a-c]+`, `[^a-c]`, `[]a]`, `[a-]`, `\d+\.\d*`, `\w+@\w+`, `\s`, `\bfoo\b`, `\Bo`,
		`(a*)*`, `(a*)+`, `(a?)*?b`, `(|a)*`, `(a|)+b`, `(?:ab)*c`, `(a)(b)?(c)`, `a{2}`, `a{2,}`, `a{1,3}?`,
		`(?i)AbC`, `(?i)[a-z]+`, `(?i)k`, `(?s).`, `.`, `(?m)^b`, `(?m)a$`, `\A\z`, `\.php$`,
		`^(.*)$`, `^([^/]+)/(.*)$`, `^_export/([^/]+)/(.*)`, `^index\.php(?:/(.*)|$)`, `(.+)/$`,
		`\.(engine|inc|install|make|module|profile|po|sh|.*sql|theme|twig|tpl(\.php)?|xtmpl|yml)(~|\.sw[op]|\.bak|\.orig|\.save)?$`,
		`^#.*#$`, `[[:alpha:]]+`, `[[:^digit:]]`, `\x41\x{263a}`, `é+`, `\pL+`, `\p{Greek}`, `\PN`,
		`(a+|b+)*c`, `((a)|b)+`, `(a|(b))+`, `x(?:y|z)*?w`, `[\d\s]+`, `[^\W_]`, `\\`, `a\.b\*`,
	}
	inputs := []string{
		"", "a", "ab", "abc", "abcd", "aaa", "b", "xyz", "foo bar", "foo.php", "ab\nb",
		"index.php/x", "index.php", "_export/raw/wiki:start", "ÉéÈ", "☺A", "κόσμε", "12.5", "x@y",
		"blog/2020/post/", "theme.tpl.php~", "#x#", "a]b-", "kK\u212a", "\xff\xfe", "aab", "yzyzw",
	}
	for _, p := range patterns {
		for _, fold := range []bool{false, true} {
			checkAgree(t, p, fold, inputs)
		}
	}
}

func checkAgree(t *testing.T, pattern string, fold bool, inputs []string) {
	t.Helper()
	goSrc := pattern
	if fold {
		goSrc = "(?i)" + pattern
	}
	re, err := regexp.Compile(goSrc)
	if err != nil {
		return
	}
	bt, err := compileBacktrack(pattern, fold)
	if err != nil {
		if !strings.Contains(pattern, `\Q`) && !strings.Contains(pattern, `\C`) {
			t.Errorf("RE2 accepts %q, the backtracking matcher does not: %v", pattern, err)
		}
		return
	}
	for _, in := range inputs {
		want := re.FindStringSubmatchIndex(in)
		got, _, err := bt.find(in, btBudget)
		if errors.Is(err, errBudget) {
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q (fold %v) on %q: backtracking %v, RE2 %v", pattern, fold, in, got, want)
		}
	}
}

// FuzzBacktrack holds the backtracking matcher to RE2's answers on the
// patterns both accept, and to never panicking on any.
func FuzzBacktrack(f *testing.F) {
	f.Add(`(a|ab)(c|bcd)(d*)`, "abcd")
	f.Add(`^(.*)/(\d+)$`, "x/12")
	f.Add(`(?i)[k-m]+`, "KLM\u212a")
	f.Add(`^(/.+)/(.*)::\2$`, "/a/b::b")
	f.Add(`x(?!y)`, "xz")
	f.Fuzz(func(t *testing.T, pattern, in string) {
		if len(pattern) > 200 || len(in) > 200 {
			return
		}
		for _, fold := range []bool{false, true} {
			if bt, err := compileBacktrack(pattern, fold); err == nil {
				bt.find(in, btBudget) // must not panic
			}
			checkAgreeOne(t, pattern, fold, in)
		}
	})
}

func checkAgreeOne(t *testing.T, pattern string, fold bool, in string) {
	goSrc := pattern
	if fold {
		goSrc = "(?i)" + pattern
	}
	re, err := regexp.Compile(goSrc)
	if err != nil {
		return
	}
	bt, err := compileBacktrack(pattern, fold)
	if err != nil {
		return // RE2 syntax we do not need (the fallback runs only on what RE2 refuses)
	}
	want := re.FindStringSubmatchIndex(in)
	got, _, err := bt.find(in, btBudget)
	if errors.Is(err, errBudget) {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%q (fold %v) on %q: backtracking %v, RE2 %v", pattern, fold, in, got, want)
	}
}
