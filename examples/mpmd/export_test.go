package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportHAProxyMap: every name a node serves maps to the set of nodes
// that serve it, with the user that runs it in the comment above; the
// SNI map holds only the names on TLS listeners.
func TestExportHAProxyMap(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	web1 := write("web1.toml", `[server]
listen = ["127.0.0.2:80"]

[identity.alice]
user = "2411"
group = "2411"

[identity.shared]
user = "2413"
group = "2413"

[[vhost]]
server_name = "alice.test"
aliases = ["www.alice.test", "*.alice.test"]
document_root = "/srv/alice"
identity = "alice"
default = true

[[vhost]]
server_name = "shared.test"
document_root = "/srv/shared"
identity = "shared"
`)
	web2 := write("web2.toml", `[server]
listen = ["127.0.0.3:80"]
tls_listen = ["127.0.0.3:443"]

[identity.bob]
user = "2412"
group = "2412"

[identity.shared]
user = "2413"
group = "2413"

[[vhost]]
server_name = "bob.test"
document_root = "/srv/bob"
identity = "bob"
tls_certificate = "/etc/mpmd/bob.crt"
tls_key = "/etc/mpmd/bob.key"

[[vhost]]
server_name = "Shared.test"
document_root = "/srv/shared"
identity = "shared"
`)
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := cli(t.Context(), args, &out, &errb)
		return out.String(), errb.String(), code
	}
	out, errs, code := run("-export", "haproxy-map", "-node", "web1="+web1, "-node", "web2="+web2)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"# web1: vhost alice.test, user 2411 (uid 2411)\nalice.test web1\n",
		"# web1: vhost alice.test, user 2411 (uid 2411)\nwww.alice.test web1\n",
		"# web2: vhost bob.test, user 2412 (uid 2412)\nbob.test web2\n",
		"# web1: vhost shared.test, user 2413 (uid 2413); web2: vhost Shared.test, user 2413 (uid 2413)\nshared.test web1_web2\n",
		"#   web1_web2: web1 web2\n",
		"# default vhost (unknown names; HAProxy's default_backend): web1: vhost alice.test",
		"# wildcard, not in the map (a map matches whole names; add a rule such as hdr_end): *.alice.test on web1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("map lacks %q:\n%s", want, out)
		}
	}
	// Every line that is not a comment is "name backend".
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "#") && len(strings.Fields(l)) != 2 {
			t.Errorf("map line %q is not \"name backend\"", l)
		}
	}
	sni, errs, code := run("-export", "haproxy-sni-map", "-node", "web1="+web1, "-node", "web2="+web2)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(sni, "\nbob.test web2\n") || strings.Contains(sni, "\nalice.test ") || strings.Contains(sni, "\nshared.test ") {
		t.Errorf("SNI map: want bob.test only:\n%s", sni)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-export", "haproxy-map"}, "give the nodes with -node NAME=CONFIG"},
		{[]string{"-export", "nginx", "-node", "web1=" + web1}, `-export "nginx": want haproxy-map or haproxy-sni-map`},
		{[]string{"-export", "haproxy-map", "-node", "web1"}, `-node "web1": want NAME=CONFIG`},
		{[]string{"-export", "haproxy-map", "-node", "web_1=" + web1}, `node name "web_1"`},
		{[]string{"-export", "haproxy-map", "-node", "web1=" + web1, "-node", "web1=" + web2}, "-node web1 given twice"},
		{[]string{"-export", "haproxy-map", "-node", "web3=" + filepath.Join(dir, "none.toml")}, "node web3: read config"},
		{[]string{"-node", "web1=" + web1}, "-node is for -export"},
	} {
		if _, errs, code := run(c.args...); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want an error with %q", c.args, code, errs, c.want)
		}
	}
}
