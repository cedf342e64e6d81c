//go:build !cgo

package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/landlock"
	"github.com/gompm/mpm/internal/testenv"
)

// The isolation layers beyond Unix permissions (issue 19), attacked from
// the tenant's position: alice's PHP (as php-cgi and under PHP-FPM) and a
// program the worker starts as alice's PHP (testdata/sysprobe, configured
// as a site's php_cgi). carol is the same attacker with landlock and
// seccomp off: every attack that fails for alice succeeds for her, which
// shows that each layer, not Unix permissions, is what stops it.
func TestIsolationLayers(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	requireFPM(t)
	if _, err := landlock.ABI(); err != nil {
		if os.Getenv(testenv.RequireRootEnv) == "1" {
			t.Fatalf("this kernel has no Landlock (%v): the isolation tests need it", err)
		}
		t.Skipf("skipped: this kernel has no Landlock: %v", err)
	}
	dir := testenv.PublicDir(t, 0o755)
	probe := filepath.Join(dir, "sysprobe")
	build := exec.Command("go", "build", "-o", probe, "./testdata/sysprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, out)
	}

	pages := map[string]string{
		"read.php":  `<?php $r = @file_get_contents($_GET["f"]); echo $r === false ? "denied" : "read:" . $r;`,
		"write.php": `<?php echo @file_put_contents($_GET["f"], "x") === false ? "denied" : "written";`,
		"ls.php":    `<?php $d = @scandir($_GET["d"]); echo $d === false ? "denied" : "listed:" . implode(",", $d);`,
		"sys.php": `<?php
			echo posix_setuid(posix_getuid()) ? "setuid=ok" : "setuid=" . posix_get_last_error();
			echo " ";
			echo posix_setgid(posix_getgid()) ? "setgid=ok" : "setgid=" . posix_get_last_error();`,
		"sleep.php": `<?php sleep(2); echo "slept";`,
		"x.php":     "not PHP: the probe answers",
		"sess.php":  `<?php session_start(); $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1; echo "n=", $_SESSION["n"], " ", session_save_path();`,
	}
	addr := freePort(t)
	aliceUID, bobUID, carolUID := testenv.FreeID(t, 2961), testenv.FreeID(t, 2962), testenv.FreeID(t, 2963)
	muxID := testenv.FreeID(t, 2964)
	vhosts := func(name string) string {
		// A second vhost of the identity under PHP-FPM and a third
		// whose "PHP" is the probe, on the same document root.
		// (writeSites chooses the root: filled in below.)
		root := "@ROOT-" + name + "@"
		return fmt.Sprintf("writable = [\"uploads\"]\n\n[[vhost]]\nserver_name = \"fpm.%[1]s.test\"\ndocument_root = %[2]q\nidentity = %[1]q\nphp = true\nphp_mode = \"fpm\"\nwritable = [\"uploads\"]\n\n[[vhost]]\nserver_name = \"probe.%[1]s.test\"\ndocument_root = %[2]q\nidentity = %[1]q\nphp = true\nphp_cgi = %[3]q\nwritable = [\"uploads\"]\n",
			name, root, probe)
	}
	sites := []testSite{
		{name: "alice", uid: aliceUID, pages: pages, extra: vhosts("alice")},
		{name: "bob", uid: bobUID, pages: map[string]string{
			"wp-config.php": `<?php define("DB_PASSWORD", "bob-db-secret");`,
			"index.php":     uidPage,
		}},
		{name: "carol", uid: carolUID, pages: pages, extra: vhosts("carol"), idExtra: "landlock = false\nseccomp = false\n"},
	}
	path := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", muxID, muxID), sites)
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		cfg = []byte(strings.ReplaceAll(string(cfg), `"@ROOT-`+s.name+`@"`, strconv.Quote(s.root)))
	}
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// The common mistake this layer is for: a site's tree readable by
	// all, its configuration file 0644.
	for _, s := range sites {
		os.Chmod(s.root, 0o755)
		for name := range s.pages {
			os.Chmod(filepath.Join(s.root, name), 0o644)
		}
		up := filepath.Join(s.root, "uploads")
		os.Mkdir(up, 0o755)
		os.Chown(up, int(s.uid), int(s.uid))
	}
	bobConfig := filepath.Join(sites[1].root, "wp-config.php")
	// A file bob left in the shared /tmp (by cron, ssh, anything), 0644.
	bobTmp := filepath.Join(os.TempDir(), fmt.Sprintf("mpm-bob-%d.sql", os.Getpid()))
	if err := os.WriteFile(bobTmp, []byte("bob's dump"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(bobTmp, int(bobUID), int(bobUID))
	t.Cleanup(func() { os.Remove(bobTmp) })

	d := startDaemon(t, addr, "-config", path)
	q := url.QueryEscape
	type attack struct {
		path       string
		alice      string // what alice's PHP gets (a prefix)
		unconfined string // what carol's gets
	}
	for _, name := range []string{"alice", "carol"} {
		root := sites[0].root
		if name == "carol" {
			root = sites[2].root
		}
		attacks := []attack{
			// Her own files and the system's stay reachable.
			{"/read.php?f=" + q(filepath.Join(root, "sleep.php")), "read:", "read:"},
			{"/read.php?f=" + q("/etc/php/8.2/cgi/php.ini"), "read:", "read:"},
			{"/write.php?f=" + q(filepath.Join(root, "uploads", "u.txt")), "written", "written"},
			// Another site's 0644 file in its 0755 tree.
			{"/read.php?f=" + q(bobConfig), "denied", "read:<?php define(\"DB_PASSWORD\", \"bob-db-secret\")"},
			{"/ls.php?d=" + q(sites[1].root), "denied", "listed:"},
			// Outside the writable list: the document root itself.
			{"/write.php?f=" + q(filepath.Join(root, "planted.php")), "denied", "written"},
			// The shared /tmp: another's file, and a file of one's own.
			{"/read.php?f=" + q(bobTmp), "denied", "read:bob's dump"},
			{"/ls.php?d=/tmp", "denied", "listed:"},
			{"/write.php?f=" + q(filepath.Join("/tmp", "mpm-"+name+"-planted")), "denied", "written"},
			// Other processes' command lines and environments.
			{"/ls.php?d=/proc", "denied", "listed:"},
			// Identity changes, even to itself.
			{"/sys.php", "setuid=1 setgid=1", "setuid=ok setgid=ok"},
			// Sessions work (their directory is the identity's own).
			{"/sess.php", "n=1 ", "n=1 "},
		}
		for _, host := range []string{name + ".test", "fpm." + name + ".test"} {
			for _, a := range attacks {
				want := a.alice
				if name == "carol" {
					want = a.unconfined
				}
				code, body := d.get(host, a.path)
				if code != 200 || !strings.HasPrefix(body, want) {
					t.Errorf("%s%s: %d %q, want 200 %q", host, a.path, code, body, want)
				}
			}
		}
		os.Remove(filepath.Join("/tmp", "mpm-"+name+"-planted"))

		// Each refused system call answers EPERM (a clean PHP error,
		// not a killed process); unconfined, none does.
		code, body := d.get("probe."+name+".test", "/x.php")
		if code != 200 {
			t.Fatalf("probe.%s.test: %d %q\n%s", name, code, body, d.out)
		}
		lines := strings.Split(strings.TrimSpace(body), "\n")
		if len(lines) < 14 {
			t.Fatalf("probe.%s.test: %q: want a line per call", name, body)
		}
		for _, l := range lines {
			call, errno, _ := strings.Cut(l, " ")
			if denied := errno == "EPERM"; denied != (name == "alice") {
				t.Errorf("%s's %s: %s", name, call, errno)
			}
		}
	}

	// Every process of alice's (workers, php-fpm and its children, and
	// a php-cgi caught in a request) carries the filter.
	var wg sync.WaitGroup
	for _, host := range []string{"alice.test", "fpm.alice.test"} {
		wg.Add(1)
		go func() { defer wg.Done(); d.get(host, "/sleep.php") }()
	}
	time.Sleep(time.Second)
	seen := map[string]int{}
	for _, pid := range pidsOf(t, aliceUID) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue // gone
		}
		name := strings.TrimSpace(string(comm))
		if strings.HasPrefix(name, "mpmd") {
			name = "mpmd" // the tests run mpmd as mpmd.test
		}
		seen[name]++
		if !strings.Contains(string(st), "\nSeccomp:\t2\n") {
			t.Errorf("alice's %s (pid %d) has no seccomp filter:\n%s", name, pid, st)
		}
	}
	wg.Wait()
	for _, want := range []string{"mpmd", "php-cgi", "php-fpm8.2"} {
		if seen[want] == 0 && !(want == "php-fpm8.2" && seen["php-fpm"] > 0) {
			t.Errorf("no %s process of alice's seen during requests (saw %v)", want, seen)
		}
	}
}

// pidsOf lists the live processes whose real uid is uid.
func pidsOf(t *testing.T, uid uint32) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !running(pid) {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] == strconv.Itoa(int(uid)) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
