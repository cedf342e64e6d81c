package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// includeSite is one site's file as a hosting panel writes it: its
// identity and its vhost.
func includeSite(name, uid string) string {
	return "[identity." + name + "]\nuser = \"" + uid + "\"\ngroup = \"" + uid + "\"\n\n[[vhost]]\nserver_name = \"" + name + ".example\"\ndocument_root = \"/srv/" + name + "\"\nidentity = \"" + name + "\"\n"
}

// writeFiles writes name -> text under dir, making directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInclude: the sites of sites.d are added in sorted order, a relative
// pattern is relative to the main file, and the main file's own vhosts
// come first.
func TestInclude(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"mpmd.toml":           "include = [\"sites.d/*.toml\", \"" + dir + "/more/*.toml\"]\n\n" + includeSite("main", "2451"),
		"sites.d/20-b.toml":   includeSite("b", "2453"),
		"sites.d/10-a.toml":   includeSite("a", "2452"),
		"sites.d/readme.txt":  "not a site",
		"more/c.toml":         includeSite("c", "2454"),
		"sites.d/sub/x.toml":  "not matched: * does not cross a /",
		"sites.d/empty.toml":  "# a site file emptied by a panel\n",
		"sites.d/zz-tls.toml": "[[vhost]]\nserver_name = \"d.example\"\ndocument_root = \"/srv/d\"\nidentity = \"a\"\n",
	})
	cfg, err := LoadConfig(filepath.Join(dir, "mpmd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range cfg.VHosts {
		got = append(got, v.ServerName+"="+v.Identity)
	}
	want := "main.example=main a.example=a b.example=b d.example=a c.example=c"
	if strings.Join(got, " ") != want {
		t.Errorf("vhosts %v, want %s", got, want)
	}
	if w := cfg.VHosts[1].where; w != filepath.Join(dir, "sites.d/10-a.toml")+":5" {
		t.Errorf("vhost a.example is from %q, want its own file and line", w)
	}
}

// TestIncludeNoMatch: an empty sites.d is a configuration without sites
// from it, not an error.
func TestIncludeNoMatch(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"mpmd.toml": "include = [\"sites.d/*.toml\"]\n\n" + includeSite("main", "2451")})
	if _, err := LoadConfig(filepath.Join(dir, "mpmd.toml")); err != nil {
		t.Fatal(err)
	}
}

// TestIncludeErrors: each mistake names the file it is in and the line.
func TestIncludeErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string // after "<dir>/"
	}{
		{"bad pattern", map[string]string{"mpmd.toml": "include = [\"sites.d/[*.toml\"]\n" + includeSite("main", "2451")},
			`mpmd.toml:1: include "DIR/sites.d/[*.toml": syntax error in pattern`},
		{"error in an included file", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": strings.Replace(includeSite("a", "2452"), "/srv/a", "rel", 1)},
			`s/a.toml:7: vhost "a.example": document_root "rel" is not an absolute path`},
		{"unknown key in an included file", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": includeSite("a", "2452") + "docroot = \"/x\"\n"},
			`s/a.toml:9: unknown key "vhost.docroot"`},
		{"syntax in an included file", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": "\n[identity.a\n"},
			`s/a.toml:2:`},
		{"undefined identity across files", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": "\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"nobody-here\"\n"},
			`s/a.toml:5: vhost "a.example": identity "nobody-here" is not defined`},
		{"identity twice", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": includeSite("a", "2452"), "s/b.toml": "\n\n" + includeSite("a", "2453")},
			`s/b.toml:3: identity "a" is defined twice: here and in DIR/s/a.toml:1`},
		{"identity of the main file", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": includeSite("main", "2452")},
			`s/a.toml:1: identity "main" is defined twice: here and in DIR/mpmd.toml:2`},
		{"same name in two files", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": includeSite("a", "2452") + "aliases = [\"main.example\"]\n"},
			`mpmd.toml: routing: vhostroute: name "main.example" on 127.0.0.1:8080 is claimed by both "vhost main.example (DIR/mpmd.toml:6)" and "vhost a.example (DIR/s/a.toml:5)"`},
		{"nested include", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": "include = [\"more/*.toml\"]\n" + includeSite("a", "2452")},
			`s/a.toml:1: include in an included file: includes do not nest`},
		{"server in an included file", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml": includeSite("a", "2452") + "\n[server]\nlisten = [\"0.0.0.0:80\"]\n"},
			`s/a.toml:10: [server] in an included file: an included file holds [identity.NAME] and [[vhost]] only`},
		{"unreadable include", map[string]string{"mpmd.toml": "include = [\"s/*.toml\"]\n" + includeSite("main", "2451"),
			"s/a.toml/x": ""},
			`mpmd.toml:1: include: read DIR/s/a.toml: is a directory`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, c.files)
			_, err := LoadConfig(filepath.Join(dir, "mpmd.toml"))
			want := dir + "/" + strings.ReplaceAll(c.want, "DIR", dir)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %v\nwant an error starting %q", err, want)
			}
		})
	}
}
