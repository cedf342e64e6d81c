package htaccess

import (
	"strings"
)

// A template is a RewriteRule substitution, a RewriteCond test string or
// an E= value: literal text with $N (the rule's groups), %N (the last
// matched condition's groups) and %{VARIABLE}.
type template []tmplPart

type tmplKind uint8

const (
	tmplLit     tmplKind = iota
	tmplRuleRef          // $N
	tmplCondRef          // %N
	tmplVar              // %{NAME}
)

type tmplPart struct {
	kind tmplKind
	lit  string
	n    int
	name string // tmplVar: as written, but "ENV:", "HTTP:" (in any case) upper case
}

// The variables that mpmd provides. Apache gives the empty string for a
// name it does not know (%{HTTP_X_FORWARDED_FOR} included: that header
// is %{HTTP:X-Forwarded-For}), and so does mpmd.
var rewriteVars = map[string]bool{
	"REQUEST_URI": true, "REQUEST_FILENAME": true, "SCRIPT_FILENAME": true, "QUERY_STRING": true,
	"PATH_INFO": true, "THE_REQUEST": true, "REQUEST_METHOD": true, "REQUEST_SCHEME": true,
	"HTTPS": true, "HTTP_HOST": true, "HTTP_USER_AGENT": true, "HTTP_REFERER": true,
	"HTTP_COOKIE": true, "HTTP_ACCEPT": true, "HTTP_FORWARDED": true, "HTTP_PROXY_CONNECTION": true,
	"SERVER_NAME": true, "SERVER_PORT": true, "SERVER_PROTOCOL": true, "SERVER_SOFTWARE": true,
	"DOCUMENT_ROOT": true, "CONTEXT_DOCUMENT_ROOT": true, "CONTEXT_PREFIX": true,
	"REMOTE_ADDR": true, "REMOTE_HOST": true, "REMOTE_PORT": true, "CONN_REMOTE_ADDR": true,
	"REMOTE_USER": true, "AUTH_TYPE": true, "IS_SUBREQ": true, "IPV6": true,
}

// Variables Apache has and mpmd does not: a rule that uses one is not
// applied.
var unsupportedVars = map[string]bool{
	"TIME": true, "TIME_YEAR": true, "TIME_MON": true, "TIME_DAY": true, "TIME_HOUR": true,
	"TIME_MIN": true, "TIME_SEC": true, "TIME_WDAY": true, "API_VERSION": true,
	"SERVER_ADDR": true, "SERVER_ADMIN": true, "REMOTE_IDENT": true, "SCRIPT_USER": true,
	"SCRIPT_GROUP": true, "REQUEST_STATUS": true,
}

// parseTemplate parses s as mod_rewrite's do_expand reads it: a
// backslash makes the next character literal; $N and %N are
// back-references; %{...} is a variable; ${map:key} (RewriteMap) is
// not available in .htaccess. unsupported says why the template cannot
// be expanded as Apache would, if it cannot.
func parseTemplate(s string) (t template, unsupported string) {
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t = append(t, tmplPart{kind: tmplLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			lit.WriteByte(s[i])
		case (c == '$' || c == '%') && i+1 < len(s) && '0' <= s[i+1] && s[i+1] <= '9':
			flush()
			kind := tmplRuleRef
			if c == '%' {
				kind = tmplCondRef
			}
			t = append(t, tmplPart{kind: kind, n: int(s[i+1] - '0')})
			i++
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			end := closingCurly(s, i+2)
			if end < 0 {
				lit.WriteByte(c)
				continue
			}
			inner := s[i+2 : end]
			if c == '$' {
				if unsupported == "" {
					unsupported = "RewriteMap lookups ${...} are not available in .htaccess"
				}
				i = end
				continue
			}
			flush()
			name, why := variableName(inner)
			if why != "" && unsupported == "" {
				unsupported = why
			}
			t = append(t, tmplPart{kind: tmplVar, name: name})
			i = end
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, unsupported
}

// closingCurly finds the '}' that closes a '{' before s[from], counting
// nested braces as Apache's find_closing_curly does; -1 if none.
func closingCurly(s string, from int) int {
	depth := 1
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func variableName(inner string) (name, unsupported string) {
	if prefix, arg, ok := strings.Cut(inner, ":"); ok {
		switch p := strings.ToUpper(prefix); p {
		case "ENV", "HTTP":
			return p + ":" + arg, ""
		case "SSL", "LA-U", "LA-F":
			return p + ":" + arg, "%{" + inner + "} is not available in mpmd"
		}
	}
	name = inner // case-sensitive, as in Apache: %{http_host} is empty
	if unsupportedVars[name] {
		return name, "%{" + inner + "} is not available in mpmd"
	}
	return name, ""
}
