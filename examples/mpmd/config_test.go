package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestExampleConfig(t *testing.T) {
	cfg, err := LoadConfig("mpmd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printSummary(&out, cfg)
	for _, want := range []string{"alice.example www.alice.example -> identity alice", "carol.example -> identity uid-2703-gid-2703", "alice: uid 2701 gid 2701",
		// The values that will run, defaults filled in (alice sets max).
		"pool: max 8 requests at once, workers 0 to 2 of 256 connections each, max_requests 10000, idle_timeout 30s, expire_timeout 5m0s, queue_timeout 10s",
		"0.0.0.0:80 http (every address of this host)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// A limit above mpmd's own hard limit is refused at load: a worker, which
// sets its limits without CAP_SYS_RESOURCE, could only fail to start.
func TestConfigRlimitAboveOwn(t *testing.T) {
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err != nil || own.Max == unix.RLIM_INFINITY {
		t.Skipf("skipped: this process's nofile hard limit (%d, %v) cannot be exceeded", own.Max, err)
	}
	text := fmt.Sprintf("[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\nrlimits = { nofile = %d }\n", own.Max+1)
	_, err := ParseConfig("f.toml", []byte(text))
	want := fmt.Sprintf("f.toml:4: identity \"a\": rlimits nofile = %d is above the hard limit mpmd itself runs with (%d)", own.Max+1, own.Max)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	text = fmt.Sprintf("[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\nrlimits = { nofile = %d }\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"a\"\n", own.Max)
	if _, err := ParseConfig("f.toml", []byte(text)); err != nil {
		t.Fatalf("the limit mpmd has: %v", err)
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
		{"duplicate name", site + "\n[[vhost]]\nserver_name = \"x.example\"\naliases = [\"A.example\"]\ndocument_root = \"/srv/b\"\nidentity = \"a\"\n", `name "a.example" on 127.0.0.1:8080 is claimed by both "vhost a.example (f.toml:6)" and "vhost x.example (f.toml:11)"`},
		// Spellings of one name: each passed -check before, then every
		// multiplexer failed to build its table.
		{"duplicate by trailing dot", site + "\n[[vhost]]\nserver_name = \"a.example.\"\ndocument_root = \"/srv/b\"\nidentity = \"a\"\n", `name "a.example" on 127.0.0.1:8080 is claimed by both "vhost a.example (f.toml:6)" and "vhost a.example (f.toml:11)"`},
		{"duplicate IDN", site + "aliases = [\"bücher.example\"]\n\n[[vhost]]\nserver_name = \"XN--BCHER-KVA.example\"\ndocument_root = \"/srv/b\"\nidentity = \"a\"\n", `name "xn--bcher-kva.example" on 127.0.0.1:8080 is claimed by both`},
		{"duplicate wildcard", site + "aliases = [\"*.Example\"]\n\n[[vhost]]\nserver_name = \"*.example.\"\ndocument_root = \"/srv/b\"\nidentity = \"a\"\n", `name "*.example" on 127.0.0.1:8080 is claimed by both`},
		{"same name twice in a vhost", site + "aliases = [\"A.EXAMPLE.\"]\n", `f.toml:10: vhost "a.example": name "A.EXAMPLE." is the same name as "a.example"`},
		{"name with a port", site + "aliases = [\"www.a.example:8080\"]\n", `f.toml:10: vhost "a.example": name "www.a.example:8080": a port is not allowed here`},
		{"bad wildcard", site + "aliases = [\"www.*.example\"]\n", `f.toml:10: vhost "a.example": name "www.*.example": a wildcard must be a leading`},
		{"bad cgroup_name", "[server]\ncgroup_name = \"a/b\"\n" + site, `f.toml:2: cgroup_name "a/b"`},
		{"writable outside the root", site + "writable = [\"../b\"]\n", `f.toml:10: vhost "a.example": writable "../b" is not a path inside document_root`},
		{"absolute writable", site + "writable = [\"/srv/a/up\"]\n", `writable "/srv/a/up" is not a path inside document_root`},
		{"relative read", "\n[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\nread = [\"lib\"]\n", `f.toml:5: identity "a": read path "lib" is not an absolute, clean path below /`},
		{"write of /", "\n[identity.a]\nuser = \"2001\"\ngroup = \"2001\"\nwrite = [\"/\"]\n", `identity "a": write path "/" is not an absolute, clean path below /`},
		{"relative fallback", site + "fallback = \"index.php\"\n", `f.toml:10: vhost "a.example": fallback "index.php" is not a file's URL path such as "/index.php"`},
		{"fallback with a query", site + "fallback = \"/index.php?q=$uri\"\n", `fallback "/index.php?q=$uri" is not a file's URL path`},
		{"bad deny pattern", site + "deny = [\"/a[\"]\n", `f.toml:10: vhost "a.example": deny "/a[" is not a path pattern`},
		{"two identities one uid", site + "\n[identity.b]\nuser = \"2001\"\ngroup = \"2002\"\n", `identities "a" and "b" both run as uid 2001`},
		// itk style: an implicit identity is keyed by the resolved ids,
		// and may not share a uid with a named one.
		{"itk user of an identity", site + "\n[[vhost]]\nserver_name = \"b.example\"\ndocument_root = \"/srv/b\"\nuser = \"2001\"\ngroup = \"2001\"\n", `f.toml:14: vhost "b.example": user "2001" is uid 2001, which identity "a" runs as: set identity = "a"`},
		{"itk same uid other group", "[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"b.example\"\ndocument_root = \"/srv/b\"\nuser = \"2001\"\ngroup = \"2002\"\n", `vhost "b.example": user "2001" is uid 2001, which identity "uid-2001-gid-2001" runs as`},
		{"reserved identity name", "[identity.uid-1]\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"uid-1\"\n", `identity name "uid-1": names starting with "uid-" are mpmd's own`},
		{"uid 0", "[identity.r]\nuser = \"0\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"r\"\n", `uid 0 is root's`},
		{"itk uid below minimum", "[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nuser = \"33\"\ngroup = \"33\"\n", `uid 33 is below the minimum 100`},
		{"relative docroot", strings.Replace(site, "/srv/a", "srv/a", 1), `document_root "srv/a" is not an absolute path`},
		// cgroup limits: the key and the value in the error.
		{"bad memory_max", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\nmemory_max = \"lots\"\n", 1), `identity "a": memory_max = "lots": not a number`},
		{"tiny memory_max", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\nmemory_max = \"64K\"\n", 1), `identity "a": memory_max = "64K" is below 1M`},
		{"bad pids_max", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\npids_max = -1\n", 1), `identity "a": pids_max = -1 is outside 1..4194304`},
		{"bad cpu_weight", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\ncpu_weight = 20000\n", 1), `identity "a": cpu_weight = 20000 is outside 1..10000`},
		{"bad cpu_max", strings.Replace(site, "group = \"2001\"\n", "group = \"2001\"\ncpu_max = \"0.5\"\n", 1), `identity "a": cpu_max = "0.5" is not a percentage of one CPU`},
		{"identity name not a cgroup", "[identity.\"cpu.a\"]\nuser = \"2001\"\ngroup = \"2001\"\n\n[[vhost]]\nserver_name = \"a.example\"\ndocument_root = \"/srv/a\"\nidentity = \"cpu.a\"\n", `identity name "cpu.a" cannot name its cgroup`},
		{"bad duration", "[pool]\nidle_timeout = \"soon\"\n" + site, `bad duration "soon"`},
		{"bad pool sizes", "[pool]\nmin = 5\nworkers = 2\n" + site, `min 5 is above max 2`},
		{"min_spare", "[pool]\nmin_spare = 1\n" + site, `min_spare and max_spare are gone`},
		{"no requests", "[pool]\nmax = 0\n" + site, `max 0: want at least 1 request in progress at once`},
		{"no vhosts", "[server]\n", "no [[vhost]] entries"},
		{"two defaults", site + "default = true\n\n[[vhost]]\nserver_name = \"b.example\"\ndocument_root = \"/srv/b\"\nidentity = \"a\"\ndefault = true\n", `"vhost a.example (f.toml:6)" and "vhost b.example (f.toml:12)" are both the default for 127.0.0.1:8080`},
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

// Vhosts that name a user and group get one implicit identity per uid and
// gid. Named "user-<user>-<group>" before, "a-b" and "a"/"b" were one
// identity, and so were user 2001 and a named identity that happened to
// be called "user-2001-2001": the vhost silently ran as that one's uid.
func TestImplicitIdentities(t *testing.T) {
	const text = `
[identity.user-2001-2001]
user = "2005"
group = "2005"

[[vhost]]
server_name = "four.example"
document_root = "/srv/four"
identity = "user-2001-2001"

[[vhost]]
server_name = "one.example"
document_root = "/srv/one"
user = "2001"
group = "2001"

[[vhost]]
server_name = "two.example"
document_root = "/srv/two"
user = "2002"
group = "2002"

[[vhost]]
server_name = "three.example"
document_root = "/srv/three"
user = "2001"
group = "2001"
`
	cfg, err := ParseConfig("f.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint32{}
	for _, v := range cfg.VHosts {
		got[v.ServerName] = cfg.Identities[v.Identity].resolved.UID
	}
	want := map[string]uint32{"one.example": 2001, "two.example": 2002, "three.example": 2001, "four.example": 2005}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uid by vhost (-want +got):\n%s", diff)
	}
	if v := cfg.VHosts; v[1].Identity != v[3].Identity || v[1].Identity == v[2].Identity {
		t.Errorf("identities %q %q %q: want one for uid 2001 and another for 2002", v[1].Identity, v[2].Identity, v[3].Identity)
	}
}
