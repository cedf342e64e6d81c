package htaccess

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// scope is where in a file a node is.
type scope struct {
	files   *filesSection // inside <Files> or <FilesMatch>
	limit   *methodSet    // inside <Limit> or <LimitExcept>
	authz   *authzNode    // inside <RequireAll>, <RequireAny> or <RequireNone>
	unknown *node         // inside a section whose condition mpmd cannot evaluate
}

// conf is the access configuration that directives in sc add to.
func (sc scope) conf(f *File) *accessConf {
	if sc.files != nil {
		return &sc.files.access
	}
	return &f.dir
}

func (p *parser) interpret(n *node, sc scope) {
	for _, c := range n.children {
		if c.section {
			p.section(c, sc)
		} else {
			p.directive(c, sc)
		}
	}
}

// failClosed records that the file denies every request under its
// directory, because it holds access control that mpmd cannot evaluate.
func (p *parser) failClosed(n *node, why string) {
	why += ": every request under this directory is denied (fail closed)"
	if p.f.closed == nil {
		d := n.directive()
		d.Why = why
		p.f.closed = &d
	}
	p.notApplied(n, why)
}

// The Apache version that <IfVersion> compares with: the 2.4 series,
// whose semantics mpmd follows.
var emulatedVersion = [3]int{2, 4, 62}

// presentModules are the modules <IfModule> finds: those whose
// directives mpmd applies (rewrite, authz_core, authz_host,
// access_compat, alias), those whose job mpmd does its own way (dir:
// index files; mime: content types; version: <IfVersion>). Every
// authentication and authorization module (auth_basic, authn_file,
// authz_user, ...) is present as well, so that a Require valid-user
// inside <IfModule mod_auth_basic.c> stays in force and denies, rather
// than vanishing with the block and leaving the directory open. Every
// other module (headers, expires, deflate, php, negotiation, ssl, ...)
// is absent: its blocks are skipped, as Apache without the module would
// skip them; a <IfModule !...> block is applied for those, and skipped
// for present ones.
var presentModules = map[string]bool{
	"rewrite":       true,
	"authz_core":    true,
	"authz_host":    true,
	"access_compat": true,
	"alias":         true,
	"dir":           true,
	"mime":          true,
	"version":       true,
	"core":          true,
}

// modulePresent answers <IfModule name>. Apache accepts a module's
// source file name (mod_rewrite.c) or its identifier (rewrite_module).
func modulePresent(name string) bool {
	n := strings.ToLower(name)
	n = strings.TrimSuffix(n, ".c")
	n = strings.TrimPrefix(n, "mod_")
	n = strings.TrimSuffix(n, "_module")
	return presentModules[n] || strings.HasPrefix(n, "auth")
}

// absentModuleHint says what to do instead of an absent module's block.
func absentModuleHint(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "php"):
		return "mpmd runs PHP as CGI or FastCGI, not as an Apache module: put php_value and php_flag settings in a .user.ini file"
	case strings.Contains(n, "headers"):
		return "mpmd does not set response headers from .htaccess: the application must send them"
	case strings.Contains(n, "expires"):
		return "mpmd does not add Expires or Cache-Control headers from .htaccess"
	case strings.Contains(n, "deflate"), strings.Contains(n, "brotli"), strings.Contains(n, "gzip"):
		return "mpmd does not compress responses from .htaccess settings"
	case strings.Contains(n, "negotiation"):
		return "mpmd has no content negotiation (MultiViews)"
	}
	return "mpmd does not provide this module"
}

func (p *parser) section(n *node, sc scope) {
	switch strings.ToLower(n.name) {
	case "ifmodule":
		w := words(n.args)
		if len(w) != 1 || strings.TrimPrefix(w[0], "!") == "" {
			p.errorf(n.line, "<IfModule> takes one module name")
			return
		}
		mod, neg := strings.CutPrefix(w[0], "!")
		present := modulePresent(mod)
		if present != neg {
			p.interpret(n, sc)
		} else if !neg {
			inside := "the directive inside is"
			if c := countDirectives(n); c != 1 {
				inside = fmt.Sprintf("the %d directives inside are", c)
			}
			p.notApplied(n, fmt.Sprintf("%s; %s skipped, as Apache without the module skips them", absentModuleHint(mod), inside))
		}
	case "ifdefine":
		arg := strings.TrimSpace(n.args)
		if arg == "" {
			p.errorf(n.line, "<IfDefine> takes one parameter name")
			return
		}
		if strings.HasPrefix(arg, "!") { // mpmd defines no parameters
			p.interpret(n, sc)
		}
	case "ifversion":
		ok, err := versionMatches(n.args)
		if err != nil {
			p.errorf(n.line, "<IfVersion %s>: %v", n.args, err)
			return
		}
		if ok {
			p.interpret(n, sc)
		}
	case "if", "elseif", "else", "iffile", "ifdirective", "ifsection":
		p.notApplied(n, fmt.Sprintf("mpmd does not evaluate <%s>: the directives inside are not applied", n.name))
		inner := sc
		inner.unknown = n
		p.interpret(n, inner)
	case "files", "filesmatch":
		p.filesSection(n, sc)
	case "limit", "limitexcept":
		if sc.limit != nil {
			p.errorf(n.line, "<%s> inside <Limit> or <LimitExcept>", n.name)
			return
		}
		ms := &methodSet{except: strings.EqualFold(n.name, "LimitExcept")}
		for _, m := range words(n.args) {
			ms.methods = append(ms.methods, strings.ToUpper(m))
		}
		if len(ms.methods) == 0 {
			p.errorf(n.line, "<%s> needs at least one method", n.name)
			return
		}
		inner := sc
		inner.limit = ms
		p.interpret(n, inner)
	case "requireall", "requireany", "requirenone":
		p.requireSection(n, sc)
	case "directory", "directorymatch", "location", "locationmatch", "virtualhost", "proxy", "proxymatch", "macro":
		p.errorf(n.line, "<%s> is not allowed in .htaccess files", n.name)
	default:
		p.errorf(n.line, "unknown section <%s>", n.name)
	}
}

func countDirectives(n *node) int {
	c := 0
	for _, ch := range n.children {
		if ch.section {
			c += countDirectives(ch)
		} else {
			c++
		}
	}
	return c
}

// versionMatches evaluates the argument of <IfVersion>: [[!]op] version,
// op one of = == < <= > >= (a regular expression, ~ or /re/, is
// matched against the version string).
func versionMatches(arg string) (bool, error) {
	w := words(arg)
	neg := false
	if len(w) > 0 && strings.HasPrefix(w[0], "!") {
		neg = true
		w[0] = w[0][1:]
		if w[0] == "" {
			w = w[1:]
		}
	}
	op, want := "=", ""
	switch len(w) {
	case 1:
		want = w[0]
		if len(want) > 1 && strings.HasPrefix(want, "/") && strings.HasSuffix(want, "/") {
			op, want = "~", want[1:len(want)-1]
		}
	case 2:
		op, want = w[0], w[1]
	default:
		return false, fmt.Errorf("takes [operator] version")
	}
	have := fmt.Sprintf("%d.%d.%d", emulatedVersion[0], emulatedVersion[1], emulatedVersion[2])
	if op == "~" {
		re, err := compileRegex(want, false)
		if err != nil {
			return false, err
		}
		idx, _ := re.find(have, nil)
		return (idx != nil) != neg, nil
	}
	parts := strings.Split(want, ".")
	if len(parts) > 3 {
		return false, fmt.Errorf("bad version %q", want)
	}
	cmp := 0
	for i, s := range parts {
		v, err := strconv.Atoi(s)
		if err != nil {
			return false, fmt.Errorf("bad version %q", want)
		}
		if emulatedVersion[i] != v {
			if emulatedVersion[i] < v {
				cmp = -1
			} else {
				cmp = 1
			}
			break
		}
	}
	var ok bool
	switch op {
	case "=", "==":
		ok = cmp == 0
	case "<":
		ok = cmp < 0
	case "<=":
		ok = cmp <= 0
	case ">":
		ok = cmp > 0
	case ">=":
		ok = cmp >= 0
	default:
		return false, fmt.Errorf("unknown operator %q", op)
	}
	return ok != neg, nil
}

// filesSection handles <Files name>, <Files ~ regex> and <FilesMatch
// regex>: the access directives inside apply to requests for files of
// that base name in this directory and every directory under it.
func (p *parser) filesSection(n *node, sc scope) {
	if sc.limit != nil || sc.authz != nil {
		p.errorf(n.line, "<%s> is not allowed here", n.name)
		return
	}
	args := words(n.args)
	isRegex := strings.EqualFold(n.name, "FilesMatch")
	if !isRegex && len(args) == 2 && args[0] == "~" {
		isRegex, args = true, args[1:]
	}
	if len(args) != 1 || args[0] == "" {
		p.errorf(n.line, "<%s> takes one name or pattern", n.name)
		return
	}
	s := &filesSection{d: n.directive()}
	var bad error
	if isRegex {
		s.re, bad = compileRegex(args[0], false)
	} else {
		s.glob = fnmatchToGo(args[0])
		if _, err := path.Match(s.glob, ""); err != nil {
			bad = fmt.Errorf("bad pattern %q", args[0])
		}
	}
	inner := sc
	inner.files = s
	if sc.files != nil {
		p.notApplied(n, fmt.Sprintf("<%s> inside <Files> is not evaluated", n.name))
		inner.unknown = n
	} else if bad != nil {
		p.notApplied(n, fmt.Sprintf("%v: the directives inside are not applied", bad))
		inner.unknown = n
	} else if sc.unknown == nil {
		p.f.files = append(p.f.files, s)
	}
	p.interpret(n, inner)
}

// fnmatchToGo turns a <Files> wildcard into path.Match syntax, which
// spells a negated class [^...] where fnmatch spells it [!...].
func fnmatchToGo(glob string) string {
	return strings.ReplaceAll(glob, "[!", "[^")
}

func (p *parser) directive(n *node, sc scope) {
	name := strings.ToLower(n.name)
	switch name {
	case "require":
		p.require(n, sc)
		return
	case "order", "allow", "deny", "satisfy":
		p.compat(n, sc)
		return
	case "rewriteengine", "rewritebase", "rewritecond", "rewriterule", "rewriteoptions", "rewritemap":
		p.rewriteDirective(n, sc)
		return
	case "redirect", "redirectmatch", "redirectpermanent", "redirecttemp":
		p.redirectDirective(n, sc)
		return
	}
	if sc.authz != nil {
		p.notApplied(n, fmt.Sprintf("only Require belongs inside %s", sc.authz.d.Text))
		return
	}
	if why, ok := notAppliedWhy[name]; ok {
		p.notApplied(n, why)
		return
	}
	p.notApplied(n, "unknown directive (Apache answers 500 when no module provides it); ignored")
}

const (
	whyPHP      = "mpmd runs PHP as CGI or FastCGI, which ignores php_value and php_flag: put the setting in a .user.ini file in this directory, or in the vhost's php_admin_value"
	whyHandler  = "mpmd runs files ending in .php as PHP, with the vhost's PHP; handlers from .htaccess are not applied"
	whyType     = "mpmd chooses content types and charsets itself (by file extension)"
	whyOptions  = "mpmd never lists directories, has no MultiViews, SSI or CGI scripts, and follows symbolic links out of the document root only when the vhost sets follow_symlinks"
	whyIndex    = "mpmd's index files are set per vhost (index, by default index.php, index.html, index.htm)"
	whyErrorDoc = "mpmd answers errors with its own pages; the application can render its own for what it handles"
	whyHeader   = "mpmd does not set response headers from .htaccess: the application must send them"
	whyExpires  = "mpmd does not add Expires or Cache-Control headers from .htaccess"
	whyEnv      = "mpmd does not set environment variables from .htaccess; PHP receives the request headers as HTTP_* (HTTP_AUTHORIZATION included)"
	whyAuth     = "mpmd does not authenticate users; a Require that needs a user denies every request (fail closed)"
	whyFilter   = "mpmd does not filter or compress responses from .htaccess settings"
	whyServer   = "allowed only in Apache's server configuration (Apache answers 500 for it here); ignored"
	whyFallback = "not applied: use a RewriteRule front controller (RewriteCond %{REQUEST_FILENAME} !-f, RewriteRule ^ index.php [L])"
	whySSL      = "mpmd's TLS is configured per vhost; SSL directives in .htaccess are not applied"
	whyMisc     = "not applied by mpmd"
)

var notAppliedWhy = map[string]string{
	"php_value": whyPHP, "php_flag": whyPHP, "php_admin_value": whyPHP, "php_admin_flag": whyPHP,

	"addhandler": whyHandler, "sethandler": whyHandler, "removehandler": whyHandler, "action": whyHandler,
	"scriptalias": whyServer, "suphp_configpath": whyHandler, "fcgidwrapper": whyHandler,

	"addtype": whyType, "removetype": whyType, "forcetype": whyType, "defaulttype": whyType,
	"adddefaultcharset": whyType, "addcharset": whyType, "addencoding": whyType, "removeencoding": whyType,
	"addlanguage": whyType, "defaultlanguage": whyType, "languagepriority": whyType, "forcelanguagepriority": whyType,

	"options": whyOptions, "indexoptions": whyOptions, "indexignore": whyOptions, "headername": whyOptions,
	"readmename": whyOptions, "adddescription": whyOptions, "addicon": whyOptions, "addiconbytype": whyOptions,
	"addiconbyencoding": whyOptions, "defaulticon": whyOptions, "indexorderdefault": whyOptions,

	"directoryindex": whyIndex, "directoryslash": "mpmd always redirects a directory named without its trailing slash",
	"directorycheckhandler": whyIndex, "fallbackresource": whyFallback,

	"errordocument": whyErrorDoc,

	"header": whyHeader, "requestheader": whyHeader,
	"expiresactive": whyExpires, "expiresbytype": whyExpires, "expiresdefault": whyExpires,
	"fileetag": whyMisc, "contentdigest": whyMisc, "serversignature": whyMisc,

	"setenv": whyEnv, "unsetenv": whyEnv, "passenv": whyEnv, "setenvif": whyEnv, "setenvifnocase": whyEnv,
	"setenvifexpr": whyEnv, "browsermatch": whyEnv, "browsermatchnocase": whyEnv, "cgipassauth": whyEnv,

	"authtype": whyAuth, "authname": whyAuth, "authuserfile": whyAuth, "authgroupfile": whyAuth,
	"authbasicprovider": whyAuth, "authbasicauthoritative": whyAuth, "authdigestprovider": whyAuth,
	"authdigestdomain": whyAuth, "authdbmuserfile": whyAuth, "authdbmgroupfile": whyAuth,
	"authzuserauthoritative": whyAuth, "authmerging": whyAuth, "authbasicfake": whyAuth,
	"authformprovider": whyAuth, "authldapurl": whyAuth,

	"addoutputfilter": whyFilter, "addoutputfilterbytype": whyFilter, "setoutputfilter": whyFilter,
	"setinputfilter": whyFilter, "removeoutputfilter": whyFilter, "deflatecompressionlevel": whyFilter,
	"brotlicompressionquality": whyFilter,

	"allowoverride": whyServer, "allowoverridelist": whyServer, "documentroot": whyServer,
	"serveralias": whyServer, "servername": whyServer, "alias": whyServer, "aliasmatch": whyServer,
	"loadmodule": whyServer, "listen": whyServer, "include": whyServer, "limitinternalrecursion": whyServer,

	"checkspelling": whyMisc, "checkcaseonly": whyMisc, "limitrequestbody": whyMisc,
	"limitxmlrequestbody": whyMisc, "acceptpathinfo": whyMisc, "modmimeusepathinfo": whyMisc,
	"sslrequiressl": whySSL, "ssloptions": whySSL, "sslrequire": whySSL, "sslverifyclient": whySSL,
	"xbithack": whyMisc, "usecanonicalname": whyServer,
}
