package cgienv

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func request(t *testing.T, target string, local string, header map[string][]string) *http.Request {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = "192.0.2.7:4321"
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	ctx := context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local)))
	return r.WithContext(ctx)
}

func TestBuild(t *testing.T) {
	r := request(t, "http://shop.example:8080/app/index.php/extra?a=1&b=2", "198.51.100.1:8080", map[string][]string{
		"X-Forwarded-For": {"203.0.113.1"},
		"X_Forwarded_For": {"10.6.6.6"}, // an impostor of the one above
		"Proxy":           {"http://evil:3128"},
		"Cookie":          {"a=1", "b=2"},
		"Accept":          {"text/html", "*/*"},
		"Content-Type":    {"application/json"},
	})
	r.ContentLength = 42
	env := Build(r, Vars{
		DocumentRoot: "/srv/shop", ScriptFilename: "/srv/shop/app/index.php", ScriptName: "/app/index.php", PathInfo: "/extra",
		RequestURI: "/pretty/url?a=1&b=2", Software: "mpmd",
		Extra: map[string]string{"APP_ENV": "prod", "REMOTE_ADDR": "10.0.0.1", "DOCUMENT_ROOT": "/"},
	})
	want := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "mpmd", "SERVER_NAME": "shop.example",
		"SERVER_ADDR": "198.51.100.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
		"REQUEST_METHOD": "GET", "REQUEST_URI": "/pretty/url?a=1&b=2", "QUERY_STRING": "a=1&b=2",
		"DOCUMENT_ROOT": "/srv/shop", "SCRIPT_FILENAME": "/srv/shop/app/index.php", "SCRIPT_NAME": "/app/index.php",
		"PATH_INFO": "/extra", "PATH_TRANSLATED": "/srv/shop/extra", "REDIRECT_STATUS": "200",
		"REMOTE_ADDR": "192.0.2.7", "REMOTE_PORT": "4321", "REQUEST_SCHEME": "http",
		"CONTENT_LENGTH": "42", "CONTENT_TYPE": "application/json",
		"HTTP_X_FORWARDED_FOR": "203.0.113.1", "HTTP_COOKIE": "a=1; b=2", "HTTP_ACCEPT": "text/html, */*",
		"HTTP_CONTENT_TYPE": "application/json", "HTTP_HOST": "shop.example:8080",
		"APP_ENV": "prod",
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
}

// A header spelled with '_' never becomes a variable, even alone: it
// would pass for the one spelled with '-' (which a proxy in front may
// have set, and which the application trusts).
func TestUnderscoreHeaderAlone(t *testing.T) {
	r := request(t, "http://a.example/", "127.0.0.1:80", map[string][]string{"X_Forwarded_For": {"10.6.6.6"}, "X_Real_IP": {"10.6.6.6"}})
	env := Build(r, Vars{ScriptName: "/index.php"})
	for _, k := range []string{"HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %q from a header spelled with '_', want it unset", k, v)
		}
	}
}

// SERVER_PORT is the port the client reached, not 80 whatever the port.
func TestServerPortFromConnection(t *testing.T) {
	r := request(t, "http://a.example/", "127.0.0.1:8443", nil)
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: "a.example"}
	env := Build(r, Vars{})
	for k, v := range map[string]string{"SERVER_PORT": "8443", "HTTPS": "on", "REQUEST_SCHEME": "https", "SSL_PROTOCOL": "TLSv1.3", "SSL_CIPHER": "TLS_AES_128_GCM_SHA256", "SSL_TLS_SNI": "a.example"} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, kv := range List(env) {
		if !strings.Contains(kv, "=") {
			t.Errorf("List: %q", kv)
		}
	}
}
