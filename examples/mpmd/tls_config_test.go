package main

import (
	"strings"
	"testing"
)

// TestTLSConfigErrors: TLS settings are checked like the rest, with the
// file and line; the key files are not opened here (see TestTLSCheck).
func TestTLSConfigErrors(t *testing.T) {
	const server = "[server]\nlisten = [\"127.0.0.1:8080\"]\ntls_listen = [\"127.0.0.1:8443\"]\n"
	const site = "\n[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"a\"\n"
	const pair = "tls_certificate = \"/etc/a.crt\"\ntls_key = \"/etc/a.key\"\n"
	for _, c := range []struct {
		name, text, want string
	}{
		{"bad tls_listen", "[server]\ntls_listen = [\"8443\"]\n" + site, `f.toml:2: tls_listen address "8443"`},
		{"address in both", "[server]\nlisten = [\"127.0.0.1:8443\"]\ntls_listen = [\"127.0.0.1:8443\"]\n" + site, `f.toml:3: address "127.0.0.1:8443" is in both listen and tls_listen`},
		{"certificate without key", server + site + "tls_certificate = \"/etc/a.crt\"\n", `f.toml:13: vhost "a.example" has tls_certificate but no tls_key`},
		{"key without certificate", server + site + "tls_key = \"/etc/a.key\"\n", `f.toml:13: vhost "a.example" has tls_key but no tls_certificate`},
		{"relative key", server + site + "tls_certificate = \"/etc/a.crt\"\ntls_key = \"a.key\"\n", `f.toml:14: vhost "a.example": tls_key "a.key" is not an absolute path`},
		{"TLS listener without certificate", server + site + "listen = [\"127.0.0.1:8443\"]\n", `f.toml:13: vhost "a.example" listens on TLS listener 127.0.0.1:8443 but has no tls_certificate`},
		{"certificate without TLS listener", site + pair, `f.toml:10: vhost "a.example" has a certificate but is on no TLS listener`},
		{"unknown key", server + site + pair + "tls_ciphers = \"x\"\n", `unknown key "vhost.tls_ciphers"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("f.toml", []byte(c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "f.toml:") {
				t.Errorf("got %v\nwant an error containing %q", err, c.want)
			}
		})
	}
	cfg, err := ParseConfig("f.toml", []byte(server+site+pair))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.VHosts[0].Listen, " "); got != "127.0.0.1:8080 127.0.0.1:8443" {
		t.Errorf("listeners of a vhost with a certificate: %s, want the plain and the TLS one", got)
	}
}
