// Package cgienv builds the environment of a CGI or FastCGI request
// (RFC 3875, section 4.1), as PHP applications expect it: once, as one
// map, for php-cgi run per request and for PHP-FPM alike, with the TLS
// variables of Apache's mod_ssl.
//
// What it decides, where the RFC and servers differ:
//
//   - SERVER_NAME is the request's host without its port; SERVER_PORT and
//     SERVER_ADDR are the local end of the connection (the port the
//     client reached, whatever the Host header says).
//   - A header whose name holds '_' is left out, as Apache 2.4 and nginx
//     do: "X_Forwarded_For" and "X-Forwarded-For" would both be
//     HTTP_X_FORWARDED_FOR, and a client could replace what a proxy set.
//     "Proxy" is left out too (httpoxy).
//   - REQUEST_URI is the client's, even when the server rewrote the
//     request to a front controller; SCRIPT_NAME, SCRIPT_FILENAME and
//     PATH_INFO are the script's.
//   - Extra variables (a site's own environment, those set by rewrite
//     rules) never replace the server's: a site cannot make PHP believe
//     another REMOTE_ADDR or DOCUMENT_ROOT.
package cgienv

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
)

// Vars is what the server knows of a request besides the request itself.
type Vars struct {
	DocumentRoot   string // absolute
	ScriptFilename string // absolute path of the script
	ScriptName     string // its URL path, "/index.php"
	PathInfo       string // what follows the script in the URL path, "" or "/..."
	// RequestURI is the client's request target when the server changed
	// r.URL (a front controller); empty means r.RequestURI.
	RequestURI string
	Software   string // SERVER_SOFTWARE
	// ServerCert is the certificate the TLS connection was given, for
	// the SSL_SERVER_* variables; nil without TLS or when unknown.
	ServerCert *x509.Certificate
	// Extra are more variables (a site's environment); they never
	// replace one the server sets.
	Extra map[string]string
}

var tlsVersions = map[uint16]string{
	tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1",
	tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3",
}

// Build returns the environment of r.
func Build(r *http.Request, v Vars) map[string]string {
	env := make(map[string]string, 32+len(r.Header)+len(v.Extra))
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	uri := v.RequestURI
	if uri == "" {
		uri = r.RequestURI
	}
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	env["GATEWAY_INTERFACE"] = "CGI/1.1"
	env["SERVER_SOFTWARE"] = v.Software
	env["SERVER_NAME"] = host
	env["SERVER_PROTOCOL"] = r.Proto
	env["REQUEST_METHOD"] = r.Method
	env["REQUEST_URI"] = uri
	env["QUERY_STRING"] = r.URL.RawQuery
	env["DOCUMENT_ROOT"] = v.DocumentRoot
	env["SCRIPT_FILENAME"] = v.ScriptFilename
	env["SCRIPT_NAME"] = v.ScriptName
	env["REDIRECT_STATUS"] = "200" // php-cgi's force-cgi-redirect check
	if v.PathInfo != "" {
		env["PATH_INFO"] = v.PathInfo
		env["PATH_TRANSLATED"] = filepath.Join(v.DocumentRoot, filepath.FromSlash(v.PathInfo))
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if a, p, err := net.SplitHostPort(local.String()); err == nil {
			env["SERVER_ADDR"], env["SERVER_PORT"] = a, p
		}
	}
	if a, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		env["REMOTE_ADDR"], env["REMOTE_PORT"] = a, p
	} else {
		env["REMOTE_ADDR"] = r.RemoteAddr
	}
	if r.ContentLength > 0 {
		env["CONTENT_LENGTH"] = strconv.FormatInt(r.ContentLength, 10)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		env["CONTENT_TYPE"] = ct
	}
	if r.TLS != nil {
		addTLS(env, r.TLS, v.ServerCert)
	} else {
		env["REQUEST_SCHEME"] = "http"
	}
	for k, vs := range r.Header {
		if strings.IndexByte(k, '_') >= 0 {
			continue
		}
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if name == "HTTP_PROXY" {
			continue // httpoxy: HTTP_PROXY is a proxy setting to many programs
		}
		sep := ", "
		if name == "HTTP_COOKIE" {
			sep = "; "
		}
		env[name] = strings.Join(vs, sep)
	}
	if _, ok := env["HTTP_HOST"]; !ok && r.Host != "" {
		env["HTTP_HOST"] = r.Host // net/http moves Host out of the header map
	}
	for k, val := range v.Extra {
		if _, set := env[k]; !set && k != "" && strings.IndexByte(k, '=') < 0 {
			env[k] = val
		}
	}
	return env
}

// addTLS adds the variables of a request that came over TLS, with the
// names Apache's mod_ssl uses (PHP applications look for them).
// SSL_CIPHER is the IANA name (mod_ssl gives OpenSSL's).
func addTLS(env map[string]string, st *tls.ConnectionState, leaf *x509.Certificate) {
	env["HTTPS"] = "on"
	env["REQUEST_SCHEME"] = "https"
	env["SSL_PROTOCOL"] = tlsVersions[st.Version]
	env["SSL_CIPHER"] = tls.CipherSuiteName(st.CipherSuite)
	env["SSL_SESSION_RESUMED"] = "Initial"
	if st.DidResume {
		env["SSL_SESSION_RESUMED"] = "Resumed"
	}
	if st.ServerName != "" {
		env["SSL_TLS_SNI"] = st.ServerName
	}
	if leaf != nil {
		env["SSL_SERVER_S_DN"] = leaf.Subject.String()
		env["SSL_SERVER_S_DN_CN"] = leaf.Subject.CommonName
		env["SSL_SERVER_I_DN"] = leaf.Issuer.String()
		env["SSL_SERVER_M_SERIAL"] = strings.ToUpper(leaf.SerialNumber.Text(16))
		env["SSL_SERVER_V_END"] = leaf.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT")
	}
}

// List returns env as KEY=value strings, for a process's environment.
func List(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
