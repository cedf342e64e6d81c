// Package htaccess applies the part of Apache's .htaccess files that
// shared-hosting PHP applications rely on: access control, front
// controllers through mod_rewrite, and redirects. Everything else is
// reported, line by line, as not applied, with what mpmd does instead.
//
// The package does no I/O of its own. The caller hands it a document
// root as an fs.FS (opened as the site's user: os.Root.FS keeps every
// name inside it) and the parsed files; a [Cache] reads them through
// that fs.FS with a size bound and parses a file again only when its
// modification time or size changes.
//
// # The flow
//
//	files := &htaccess.Cache{FS: root, Parsed: logNotAppliedOnce}
//	tree := &htaccess.Tree{FS: root, Htaccess: files.Get, DocumentRoot: "/home/alice/www"}
//	res := tree.Resolve(&htaccess.Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ...})
//	switch {
//	case res.Status == 0:       serve res.Path with res.Query (keep the client's REQUEST_URI for PHP)
//	case res.Location != "":    redirect with res.Status to res.Location
//	default:                    answer res.Status; log res.Reason
//	}
//
// A served path that is a directory ends in '/': the caller picks its
// index file and checks that with [Tree.Access] (a <Files index.php>
// may deny it).
//
// [Tree.Resolve] does what Apache does for one request. It walks the
// URL path through the directories that exist, loading each one's
// .htaccess; checks access control; runs the rewrite rules of the
// deepest directory that has any; applies Redirect lines. A rewrite to
// another URL is an internal redirect: everything starts over with the
// new URL, access control included, at most Tree.MaxRedirects (10)
// times, as Apache's LimitInternalRecursion. The result never names a
// path outside the document root: a rewrite that would leave it is
// answered 400.
//
// A file with a syntax error that Apache would refuse (an unclosed
// <IfModule>, an unknown RewriteRule flag) fails every request under its
// directory with 500, as in Apache; [Parse] returns every such error,
// each with its line.
//
// # Access control
//
// Applied as Apache 2.4 applies it:
//
//   - Require all granted|denied, ip (addresses, partial addresses,
//     networks as /bits or /mask, IPv6), local, method, and not;
//     <RequireAll>, <RequireAny>, <RequireNone>. The deepest file with a
//     Require replaces its parents' (a deeper Require all granted
//     re-opens what a parent denied).
//   - Order, Allow from, Deny from, Satisfy, with the same address forms
//     and "all". The deepest file with any of them replaces its parents'
//     (so "Order deny,allow / Deny from all / Allow from 127.0.0.1" is an
//     allow list, evaluated against Request.Remote; a client of unknown
//     address matches no address). These and Require are separate
//     mechanisms, both of which must allow, unless Satisfy Any: a Require
//     all granted does not lift a parent's Deny from all (an Allow from
//     all does).
//   - <Files name>, <Files ~ regex> and <FilesMatch regex>, matched
//     against the base name of the requested file, in the file's
//     directory and every directory below, after the directory-level
//     configuration; a later matching section replaces an earlier one.
//   - <Limit> and <LimitExcept>, for the methods they name.
//   - Files named .ht* are never served, as Apache's default
//     configuration denies them.
//
// Decisions where mpmd cannot do what Apache does, all failing closed:
//
//   - Authentication (AuthType Basic, AuthUserFile, Require valid-user,
//     user or group): mpmd does not check passwords. Where such a
//     Require decides, the request is denied with 403, never served
//     without the password. (A Satisfy Any with an Allow from that
//     matches still lets that client in, as in Apache.)
//   - Require host and Allow/Deny from a host name need DNS lookups,
//     which mpmd does not make; Require env, Require expr and
//     Allow from env= need what mpmd does not have. They never match:
//     as a grant they grant nothing, as a Deny they deny nothing.
//   - Access control that mpmd cannot evaluate denies every request
//     under the file's directory, and a deeper file cannot re-open it: a
//     <Files> or <FilesMatch> pattern that neither engine below compiles,
//     and access directives inside <If>, <ElseIf>, <Else>, <IfFile>,
//     <IfDirective> or <IfSection>, which mpmd does not evaluate.
//
// # <IfModule>
//
// <IfModule name> is true for the modules mpmd provides: rewrite,
// authz_core, authz_host, access_compat, alias, dir, mime, version, core,
// and every authentication and authorization module (auth_basic,
// authn_file, authz_user, ... — so that a password-protected
// directory's Require stays in force and denies, instead of vanishing
// with the block). It is false for every other module (headers,
// expires, deflate, php, negotiation, ssl, security, ...): their blocks
// are skipped, as Apache without the module skips them, and reported
// once. <IfModule !name> is the opposite. So the DokuWiki pattern
//
//	<IfModule mod_authz_core.c>
//	    Require all denied
//	</IfModule>
//	<IfModule !mod_authz_core.c>
//	    Order allow,deny
//	    Deny from all
//	</IfModule>
//
// denies through its first block. mod_headers is absent on purpose:
// Drupal's rules that serve .css.gz files need it to set
// Content-Encoding, which mpmd does not do from .htaccess. <IfDefine
// name> is false (mpmd defines no parameters); <IfVersion> compares
// with Apache 2.4.62.
//
// # mod_rewrite
//
// RewriteEngine, RewriteBase, RewriteCond and RewriteRule are applied
// with Apache's per-directory semantics, checked against httpd's
// mod_rewrite.c: the pattern is matched against the URL path relative to
// the directory of the file (with no leading slash and no query string;
// after a file, the path info is part of it); a relative substitution is
// relative to that directory, or to RewriteBase for the URL it becomes;
// a substitution without '?' keeps the query string, one with '?'
// replaces it, unless QSA appends the old one; a rewrite to the same
// file is served without a redirect. The deepest file with mod_rewrite
// directives has the rules; RewriteEngine is inherited from above,
// RewriteBase is not.
//
// Conditions: regular expressions, = < > <= >= (with "" for the empty
// string), -eq -ne -lt -le -gt -ge, -f -d -s -l -L -h -x, each negated
// with '!', with [NC], [OR] and [NV]; $0..$9 from the rule and %0..%9
// from the last matched condition; %{VARIABLE} for REQUEST_URI,
// REQUEST_FILENAME, SCRIPT_FILENAME, QUERY_STRING, PATH_INFO,
// THE_REQUEST, REQUEST_METHOD, REQUEST_SCHEME, HTTPS, HTTP_HOST,
// HTTP_USER_AGENT, HTTP_REFERER, HTTP_COOKIE, HTTP_ACCEPT,
// HTTP_FORWARDED, HTTP_PROXY_CONNECTION, HTTP:Any-Header, ENV:name,
// SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, SERVER_SOFTWARE,
// DOCUMENT_ROOT, CONTEXT_DOCUMENT_ROOT, CONTEXT_PREFIX, REMOTE_ADDR,
// REMOTE_HOST, REMOTE_PORT, CONN_REMOTE_ADDR, REMOTE_USER, AUTH_TYPE,
// IS_SUBREQ and IPV6. As in Apache, an unknown name is empty.
//
// Flags: L, END, N (bounded), C, S, F, G, R (301, 302, 303, 307, 308, or
// an error status, which drops the substitution), NC, QSA, QSD, QSL, NE,
// B, BNP, BCTLS, BNE, DPI, E (the variables rules read as %{ENV:...},
// and which Result.Env gives the caller for PHP), UnsafeAllow3F; NS,
// PT, UNC and UnsafePrefixStat change nothing in mpmd. An absolute URL
// as substitution redirects. After an internal redirect, the variables
// come back prefixed REDIRECT_, with REDIRECT_STATUS=200, as Symfony's
// rules expect.
//
// Rules are never applied in part. A rule that mpmd cannot evaluate —
// a flag it does not support (T, H, CO, P), a variable it does not have
// (TIME*, SSL:*, LA-U:*), a RewriteMap, a pattern neither engine
// compiles — is skipped and reported, unless it denies (F, G, R=4xx):
// then it fails closed, its pattern counting as matched and such
// conditions as true.
//
// # Redirect and RedirectMatch
//
// Redirect, RedirectMatch, RedirectPermanent and RedirectTemp (mod_alias)
// apply with Apache's matching: a Redirect path matches whole path
// segments and the rest is appended; RedirectMatch substitutes $N and &;
// the query string is appended unless the target has one. Every file on
// the path contributes, the deepest first. They come after the rewrite
// rules in each pass, as in Apache.
//
// # Regular expressions
//
// Apache's are PCRE. Go's regexp runs every pattern it accepts (in time
// linear in the input); for the rest, a backtracking matcher handles the
// PCRE features real files use and RE2 refuses — lookahead
// ("^\.(?!well-known)" in Drupal's deny rules), lookbehind,
// backreferences ("^(/.+)/(.*)::\2$" in Symfony's), atomic groups,
// possessive quantifiers. Where both accept a pattern, they agree on
// every match (a differential test and fuzz target hold the fallback to
// that). Every request has a work budget (some 25 ms) over all its
// matches and rules; a request that exhausts it fails with 500. One
// match that exceeds its own share counts as not matching, or, for a
// rule or section that denies, as matching.
//
// # Where mpmd differs from Apache on purpose
//
//   - A query string that a rewrite fills with spaces or control
//     characters (a back-reference of "my page") is percent-encoded;
//     Apache 2.4.60 and later answer 403.
//   - A '?' that a back-reference or variable brings into the path of a
//     substitution (from a %3F in the request) is refused with 403 unless
//     UnsafeAllow3F, as Apache 2.4.60 and later refuse it.
//   - A relative redirect target without RewriteBase is relative to the
//     directory's URL path; Apache puts the directory's file system path
//     in the Location.
//   - A Location is an absolute path or the absolute URL of the rule,
//     never qualified with the Host header, and never holds a control
//     character or a space, even with NE.
//   - A rewritten path is not decoded a second time (Apache parses the
//     internal redirect's URL again, decoding a %25 that the first pass
//     decoded once).
//   - %{ENV:name} reads the variables rules set, not the server's
//     process environment.
//   - An unknown directive is reported, not an error (Apache answers 500
//     when no module provides it).
//
// # Not applied: what mpmd does instead
//
// Each of these is reported in File.NotApplied with its line:
//
//   - php_value, php_flag, php_admin_*: PHP runs as CGI or FastCGI,
//     which ignores them. Put the setting in a .user.ini file in the
//     directory (PHP reads it), or in the vhost's php_admin_value.
//   - AddHandler, SetHandler, Action (choosing a PHP version): mpmd
//     runs files ending in .php with the vhost's PHP.
//   - Options: mpmd never lists directories (Indexes), has no
//     MultiViews, SSI or CGI scripts, and follows symbolic links out of
//     the document root only when the vhost sets follow_symlinks.
//   - DirectoryIndex: the vhost's index setting (index.php, index.html,
//     index.htm by default). FallbackResource: use a RewriteRule front
//     controller.
//   - ErrorDocument: mpmd's own error pages; the application renders
//     its own for what it handles.
//   - Header, RequestHeader, Expires*, AddOutputFilterByType and
//     compression: the application sends its headers; mpmd adds none
//     from .htaccess.
//   - AddType, AddCharset, AddDefaultCharset, AddEncoding, ForceType:
//     mpmd chooses content types by extension.
//   - SetEnv, SetEnvIf, BrowserMatch, PassEnv: not applied. PHP
//     receives the request's headers as HTTP_*, HTTP_AUTHORIZATION
//     included (which is what most such lines were for).
//   - AuthType, AuthName, AuthUserFile, AuthGroupFile: see above; the
//     directory is denied. Protect it in the application, or move it
//     out of the document root.
//   - RewriteOptions (Inherit, MergeBase, ...): not applied; each
//     directory's rules replace its parent's, Apache's default.
//   - SSLRequireSSL, SSLOptions: TLS is set per vhost.
//   - AllowOverride, Alias, ScriptAlias and other server-only
//     directives: Apache refuses them in .htaccess; mpmd ignores them.
package htaccess
