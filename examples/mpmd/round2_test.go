//go:build !cgo

package main

// Findings 7, 9 and 12 of the second security round, from the tenant's
// and the client's position, in both PHP modes.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

// Another tenant's PHP settings (a database password, a Redis auth=)
// were on php-cgi's command line, which every tenant's ps shows. Now no
// site's settings are on a command line or anywhere another site's PHP
// can read, while that site's PHP runs.
func TestSecretsNotVisibleToOtherSites(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	requireFPM(t)
	addr := freePort(t)
	slow := `<?php echo ini_get("user_agent"), " ", getenv("DB_PASSWORD"); sleep(3);`
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2481), pages: map[string]string{"slow.php": slow},
			extra: "php_value = { user_agent = \"alice-cgi-value-7f3a\" }\nenv = { DB_PASSWORD = \"alice-cgi-env-91c2\" }\n"},
		{name: "carol", uid: testenv.FreeID(t, 2482), pages: map[string]string{"slow.php": slow},
			extra: "php_mode = \"fpm\"\nphp_admin_value = { user_agent = \"carol-fpm-admin-5d0e\" }\nenv = { DB_PASSWORD = \"carol-fpm-env-2b77\" }\n"},
		// bob without Landlock, which closes /proc to him altogether:
		// this tests the layer beneath, that no secret is on a command
		// line or in an environment a process of another uid can read.
		{name: "bob", uid: testenv.FreeID(t, 2483), idExtra: "landlock = false\n", pages: map[string]string{"scan.php": `<?php
foreach (glob("/proc/[0-9]*") as $p) {
	foreach (["cmdline", "environ"] as $f) {
		$s = @file_get_contents("$p/$f");
		if ($s !== false && $s !== "") echo str_replace("\0", " ", $s), "\n";
	}
}`}},
	}
	testenv.FreeID(t, 2484)
	path := writeSites(t, addr, "multiplexer_user = \"2484\"\nmultiplexer_group = \"2484\"\n", sites)
	d := startDaemon(t, addr, "-config", path)
	secrets := []string{"alice-cgi-value-7f3a", "alice-cgi-env-91c2", "carol-fpm-admin-5d0e", "carol-fpm-env-2b77"}
	done := make(chan [2]string, 2)
	for _, host := range []string{"alice.test", "carol.test"} {
		go func() { _, body := d.get(host, "/slow.php"); done <- [2]string{host, body} }()
	}
	time.Sleep(time.Second) // both scripts are running
	_, scan := d.get("bob.test", "/scan.php")
	if !strings.Contains(scan, "php") {
		t.Fatalf("bob's scan saw no PHP process at all:\n%s", scan)
	}
	for _, s := range secrets {
		if strings.Contains(scan, s) {
			t.Errorf("bob's PHP read %q from /proc", s)
		}
	}
	for range 2 {
		r := <-done
		want := map[string]string{"alice.test": "alice-cgi-value-7f3a alice-cgi-env-91c2", "carol.test": "carol-fpm-admin-5d0e carol-fpm-env-2b77"}[r[0]]
		if r[1] != want {
			t.Errorf("%s's own settings: %q, want %q", r[0], r[1], want)
		}
	}
}

// FastCGI mode ran a request twice when PHP died partway through it: a
// script that appended a line and was then killed left two lines. Now a
// request is tried again only when no byte of it reached PHP; in both
// modes the script runs once and the client gets 502.
func TestPHPDiesMidRequestRunsOnce(t *testing.T) {
	for _, mode := range []string{"cgi", "fpm"} {
		t.Run(mode, func(t *testing.T) {
			testenv.RequireRoot(t)
			requirePHP(t)
			requireFPM(t)
			addr := freePort(t)
			uid := testenv.FreeID(t, 2485)
			testenv.FreeID(t, 2486)
			sites := []testSite{{name: "alice", uid: uid, extra: fmt.Sprintf("php_mode = %q\n", mode), pages: map[string]string{
				"die.php": `<?php file_put_contents(__DIR__ . "/ran.txt", "ran\n", FILE_APPEND); posix_kill(getmypid(), 9);`,
			}}}
			path := writeSites(t, addr, "multiplexer_user = \"2486\"\nmultiplexer_group = \"2486\"\n", sites)
			d := startDaemon(t, addr, "-config", path)
			if code, body := d.get("alice.test", "/die.php"); code != http.StatusBadGateway {
				t.Errorf("a script that killed its PHP: %d %q, want 502", code, body)
			}
			b, _ := os.ReadFile(filepath.Join(sites[0].root, "ran.txt"))
			if string(b) != "ran\n" {
				t.Errorf("the script ran %d times, want once", strings.Count(string(b), "ran"))
			}
		})
	}
}

// The CGI variables: SERVER_PORT was 80 on any port and SERVER_ADDR
// missing; a header X_Forwarded_For overrode X-Forwarded-For; .phtml,
// .php5 and .PHP were served as source.
func TestCGIVariablesAndSource(t *testing.T) {
	for _, mode := range []string{"cgi", "fpm"} {
		t.Run(mode, func(t *testing.T) {
			testenv.RequireRoot(t)
			requirePHP(t)
			requireFPM(t)
			addr := freePort(t)
			uid := testenv.FreeID(t, 2487)
			testenv.FreeID(t, 2488)
			src := `<?php echo "ran"; /* SOURCE-MARKER */`
			sites := []testSite{{name: "alice", uid: uid, extra: fmt.Sprintf("php_mode = %q\n", mode), pages: map[string]string{
				"env.php":   `<?php foreach (["SERVER_PORT", "SERVER_ADDR", "HTTP_X_FORWARDED_FOR"] as $k) echo $k, "=", $_SERVER[$k] ?? "(unset)", "\n";`,
				"a.phtml":   src,
				"a.php5":    src,
				"a.PHP":     src,
				"a.phar":    src,
				"a.inc.php": src,
			}}}
			path := writeSites(t, addr, "multiplexer_user = \"2488\"\nmultiplexer_group = \"2488\"\n", sites)
			startDaemon(t, addr, "-config", path)
			_, port, _ := net.SplitHostPort(addr)
			r, err := rawRequest(t, addr, "GET /env.php HTTP/1.1\r\nHost: alice.test\r\nX-Forwarded-For: 192.0.2.1\r\nX_Forwarded_For: 10.6.6.6\r\nConnection: close\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			resp := string(b)
			for _, want := range []string{"SERVER_PORT=" + port + "\n", "SERVER_ADDR=127.0.0.1\n", "HTTP_X_FORWARDED_FOR=192.0.2.1\n"} {
				if !strings.Contains(resp, want) {
					t.Errorf("CGI environment lacks %q:\n%s", want, resp)
				}
			}
			for _, name := range []string{"a.phtml", "a.php5", "a.PHP", "a.phar"} {
				code, body := newClientGet(t, addr, "alice.test", "/"+name)
				if strings.Contains(body, "SOURCE-MARKER") || code != http.StatusForbidden {
					t.Errorf("%s: %d %q, want 403 and never the source", name, code, body)
				}
			}
			if code, body := newClientGet(t, addr, "alice.test", "/a.inc.php"); code != 200 || body != "ran" {
				t.Errorf("a.inc.php: %d %q, want it run", code, body)
			}
		})
	}
}
