package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestExampleConfig(t *testing.T) {
	cfg, err := LoadConfig("mpmd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printSummary(&out, cfg)
	for _, want := range []string{"alice.example www.alice.example -> identity alice", "carol.example -> identity user-2003-2003", "alice: uid 2001 gid 2001"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// TestConfigErrors: each mistake is refused with the file, the line and
// the offending value.
func TestConfigErrors(t *testing.T) {
	const site = "\n[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"a\"\n"
	for _, c := range []struct {
		name, text, want string
	}{
		{"unknown key", "[server]\nlisten = [\"127.0.0.1:80\"]\nlisten_addr = \"x\"\n" + site, `f.toml:3: unknown key "server.listen_addr"`},
		{"unknown vhost key", site + "docroot = \"/x\"\n", `f.toml:10: unknown key "vhost.docroot"`},
		{"missing docroot", "\n[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\nidentity = \"a\"\n", `f.toml:6: vhost "a.example" has no document_root`},
		{"undefined identity", site + "\n[[vhost]]\nserver_name = \"b.example\"\ndocument_root = \"/srv/b\"\nidentity = \"bee\"\n", `f.toml:14: vhost "b.example": identity "bee" is not defined`},
		{"duplicate name", site + "\n[[vhost]]\nserver_name = \"x.example\"\naliases = [\"A.example\"]\ndocument_root = \"/srv/b\"\nidentity = \"a\"\n", `name "A.example" on 127.0.0.1:8080 is already used by vhost "a.example"`},
		{"uid 0", "[identity.r]\nuser = \"0\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"r\"\n", `uid 0 is root's`},
		{"itk uid below minimum", "[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nuser = \"33\"\ngroup = \"33\"\n", `uid 33 is below the minimum 100`},
		{"relative docroot", strings.Replace(site, "/srv/a", "srv/a", 1), `document_root "srv/a" is not an absolute path`},
		{"bad duration", "[pool]\nidle_timeout = \"soon\"\n" + site, `bad duration "soon"`},
		{"bad pool sizes", "[pool]\nmin = 5\nmax = 2\n" + site, `min 5 is above max 2`},
		{"no vhosts", "[server]\n", "no [[vhost]] entries"},
		{"two defaults", site + "default = true\n\n[[vhost]]\nserver_name = \"b.example\"\ndocument_root = \"/srv/b\"\nidentity = \"a\"\ndefault = true\n", `already has default vhost "a.example"`},
		{"syntax", "[server\n", "f.toml:1:"},
		{"bad rlimit name", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\nrlimits = { procs = 5 }\n", 1), `unknown resource limit "procs"`},
		{"bad rlimit value", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\nrlimits = { data = \"lots\" }\n", 1), `rlimit data = "lots"`},
		{"rlimit as", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\nrlimits = { as = \"1G\" }\n", 1), `limit "data" instead`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("f.toml", []byte(c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "f.toml:") {
				t.Errorf("got %v\nwant an error containing %q", err, c.want)
			}
		})
	}
}
