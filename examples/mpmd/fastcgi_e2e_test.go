//go:build !cgo

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

// fastcgiSites starts a daemon with sites alice and bob (uids 2351 and
// 2352, multiplexer 2353), both with php_mode = "fastcgi", one worker
// per identity.
func fastcgiSites(t *testing.T, aliceExtra string) (*daemon, []testSite) {
	testenv.RequireRoot(t)
	requirePHP(t)
	addr := freePort(t)
	pages := func() map[string]string {
		return map[string]string{
			"index.php":  uidPage,
			"pid.php":    `<?php echo getmypid(), " ", PHP_SAPI;`,
			"ini.php":    `<?php echo ini_get("memory_limit");`,
			"env.php":    `<?php foreach (["SCRIPT_FILENAME","SCRIPT_NAME","PATH_INFO","REDIRECT_STATUS","HTTPS","SERVER_NAME","REMOTE_ADDR","QUERY_STRING","REQUEST_METHOD","HTTP_X_TEST"] as $k) echo $k, "=", $_SERVER[$k] ?? "", "\n";`,
			"post.php":   `<?php echo strtoupper(file_get_contents("php://input"));`,
			"fds.php":    `<?php foreach (scandir("/proc/self/fd") as $f) { if (is_numeric($f) && $f > 2) echo $f, "=", @readlink("/proc/self/fd/$f"), "\n"; }`,
			"secret.txt": "secret\n",
		}
	}
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2351), extra: "php_mode = \"fastcgi\"\n" + aliceExtra, pages: pages()},
		{name: "bob", uid: testenv.FreeID(t, 2352), extra: "php_mode = \"fastcgi\"\n", pages: pages()},
	}
	testenv.FreeID(t, 2353)
	server := "multiplexer_user = \"2353\"\nmultiplexer_group = \"2353\"\n\n[pool]\nmin = 1\nworkers = 1\n"
	path := writeSites(t, addr, server, sites)
	steal := fmt.Sprintf(`<?php $s = @file_get_contents(%q); echo $s === false ? "denied" : "READ: ".$s;`, filepath.Join(sites[0].root, "secret.txt"))
	os.WriteFile(filepath.Join(sites[1].root, "steal.php"), []byte(steal), 0o600)
	os.Chown(filepath.Join(sites[1].root, "steal.php"), 2352, 2352)
	return startDaemon(t, addr, "-config", path), sites
}

// TestFastCGISites: in FastCGI mode each vhost's PHP runs as its own
// uid in a persistent php-cgi, isolation holds, php_admin_value reaches
// PHP, and the CGI environment is the one CGI mode gives.
func TestFastCGISites(t *testing.T) {
	d, sites := fastcgiSites(t, `php_admin_value = { memory_limit = "77M" }`)
	checkTwoSites(t, d, sites)
	if _, body := d.get("bob.test", "/ini.php"); body == "77M" {
		t.Errorf("alice's php_admin_value reached bob's PHP")
	}
	// One persistent child: the same pid twice, in FastCGI mode.
	_, p1 := d.get("alice.test", "/pid.php")
	_, p2 := d.get("alice.test", "/pid.php")
	if p1 != p2 || !strings.HasSuffix(p1, " cgi-fcgi") {
		t.Errorf("pid.php twice: %q then %q, want one cgi-fcgi process", p1, p2)
	}
	_, env := d.get("alice.test", "/env.php/extra/path?q=1")
	for _, want := range []string{
		"SCRIPT_FILENAME=" + filepath.Join(sites[0].root, "env.php"),
		"SCRIPT_NAME=/env.php", "PATH_INFO=/extra/path", "REDIRECT_STATUS=200", "HTTPS=off",
		"SERVER_NAME=alice.test", "REMOTE_ADDR=127.0.0.1", "QUERY_STRING=q=1", "REQUEST_METHOD=GET",
	} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("CGI environment lacks %q:\n%s", want, env)
		}
	}
	// A chunked body would reach php-cgi without a CONTENT_LENGTH, and
	// PHP would read none of it: refused with 411, not lost.
	req, _ := http.NewRequest("POST", "http://"+d.addr+"/env.php", io.MultiReader(strings.NewReader("a=1")))
	req.Host = "alice.test"
	if resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req); err != nil {
		t.Errorf("chunked POST: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusLengthRequired {
			t.Errorf("chunked POST to PHP in FastCGI mode: %d, want 411", resp.StatusCode)
		}
	}
	if code, _ := d.get("alice.test", "/missing.php"); code != 404 {
		t.Errorf("missing script: %d, want 404", code)
	}
	// The child holds only its FastCGI connection beyond stdio (its
	// stdin is the listening socket): no dispatch socket, plan or log.
	_, fds := d.get("alice.test", "/fds.php")
	if strings.Count(fds, "socket:") != 1 || strings.Contains(fds, "memfd:") || strings.Contains(fds, ".log") {
		t.Errorf("descriptors php-cgi holds beyond stdio:\n%s", fds)
	}
	// The child is of the site's uid, and nobody can connect to it: the
	// path its listening socket was bound to is gone (the kernel still
	// lists the old name; connecting needs the file).
	pid, _ := strconv.Atoi(strings.Fields(p1)[0])
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil || !strings.Contains(string(st), "\nUid:\t2351\t2351\t2351\t2351\n") {
		t.Errorf("php child %d status: %v\n%s", pid, err, st)
	}
	if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid)); strings.HasPrefix(l, "socket:") {
		ino := strings.Trim(strings.TrimPrefix(l, "socket:"), "[]")
		unix, _ := os.ReadFile("/proc/net/unix")
		for _, line := range strings.Split(string(unix), "\n") {
			f := strings.Fields(line)
			if len(f) >= 8 && f[6] == ino {
				if _, err := os.Stat(f[7]); err == nil {
					t.Errorf("php child's listening socket %s can be reached", f[7])
				}
				if _, err := os.Stat(filepath.Dir(f[7])); err == nil {
					t.Errorf("php socket directory %s was left behind", filepath.Dir(f[7]))
				}
			}
		}
	} else {
		t.Errorf("php child's fd 0 is %q, want a socket", l)
	}
}

// TestFastCGIRecycleAndRestart: a php child is replaced after
// php_max_requests, and a killed one is replaced with no failed request.
func TestFastCGIRecycleAndRestart(t *testing.T) {
	d, _ := fastcgiSites(t, "php_max_requests = 3\n")
	pidOf := func() int {
		t.Helper()
		code, body := d.get("alice.test", "/pid.php")
		f := strings.Fields(body)
		if code != 200 || len(f) != 2 {
			t.Fatalf("pid.php: %d %q\n%s", code, body, d.out)
		}
		n, _ := strconv.Atoi(f[0])
		return n
	}
	a, b, c := pidOf(), pidOf(), pidOf()
	if a != b || b != c {
		t.Fatalf("three requests, pids %d %d %d: want one child", a, b, c)
	}
	e := pidOf()
	if e == a {
		t.Fatalf("pid %d served a 4th request with php_max_requests = 3", e)
	}
	if err := syscall.Kill(a, 0); err == nil {
		// Give the reaper a moment; the recycled child must be gone.
		time.Sleep(500 * time.Millisecond)
		if syscall.Kill(a, 0) == nil {
			t.Errorf("recycled php child %d still runs", a)
		}
	}
	// Kill the idle child: the next request still succeeds, on a new one.
	if err := syscall.Kill(e, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if f := pidOf(); f == e {
		t.Errorf("killed child %d answered", e)
	}
	// POST bodies reach the child.
	if code, body := d.post("alice.test", "/post.php", "hello body"); code != 200 || body != "HELLO BODY" {
		t.Errorf("POST: %d %q", code, body)
	}
}

// post sends body to path on host through the daemon.
func (d *daemon) post(host, path, body string) (int, string) {
	d.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+d.addr+path, strings.NewReader(body))
	req.Host = host
	req.Header.Set("Content-Type", "text/plain")
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatalf("POST %s%s: %v\n%s", host, path, err, d.out)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
