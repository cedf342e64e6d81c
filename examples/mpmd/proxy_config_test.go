package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestListenerConfig: [listener."ADDR"] names a configured address; a
// PROXY listener names its trusted proxies, each a valid range.
func TestListenerConfig(t *testing.T) {
	const head = "[server]\nlisten = [\"127.0.0.1:80\", \"0.0.0.0:81\"]\ntls_listen = [\"127.0.0.1:443\"]\n"
	const site = "\n[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"a\"\n"
	ok := head + site + "\n[listener.\"0.0.0.0:81\"]\nproxy_protocol = true\ntrusted_proxies = [\"10.0.0.5\", \"10.1.0.0/16\", \"2001:db8::/32\"]\n" +
		"\n[listener.\"127.0.0.1:443\"]\nproxy_protocol = true\ntrusted_proxies = [\"127.0.0.1\"]\n"
	cfg, err := ParseConfig("f.toml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.trustedProxies([]string{"127.0.0.1:80", "0.0.0.0:81", "127.0.0.1:443"})
	want := [][]string{nil, {"10.0.0.5", "10.1.0.0/16", "2001:db8::/32"}, {"127.0.0.1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trusted proxies by listener (-want +got):\n%s", diff)
	}
	for _, c := range []struct{ name, text, want string }{
		{"unknown address", "\n[listener.\"127.0.0.1:82\"]\nproxy_protocol = true\ntrusted_proxies = [\"10.0.0.5\"]\n", `f.toml:14: listener "127.0.0.1:82" is not one of server.listen`},
		{"no trusted proxies", "\n[listener.\"127.0.0.1:80\"]\nproxy_protocol = true\n", `f.toml:14: listener "127.0.0.1:80": proxy_protocol needs trusted_proxies`},
		{"trusted without proxy_protocol", "\n[listener.\"127.0.0.1:80\"]\ntrusted_proxies = [\"10.0.0.5\"]\n", `trusted_proxies without proxy_protocol = true does nothing`},
		{"bad range", "\n[listener.\"127.0.0.1:80\"]\nproxy_protocol = true\ntrusted_proxies = [\"10.0.0.5/24\"]\n", `f.toml:16: listener "127.0.0.1:80": trusted_proxies: vhostroute: address range "10.0.0.5/24": bits set after the prefix length`},
		{"a name", "\n[listener.\"127.0.0.1:80\"]\nproxy_protocol = true\ntrusted_proxies = [\"haproxy.lan\"]\n", `address range "haproxy.lan"`},
		{"unknown key", "\n[listener.\"127.0.0.1:80\"]\nproxy = true\n", `unknown key "listener.127.0.0.1:80.proxy"`},
	} {
		_, err := ParseConfig("f.toml", []byte(head+site+c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
