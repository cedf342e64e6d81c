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

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

// fpmSites starts a daemon with sites alice and bob (uids 2351 and 2352,
// multiplexer 2353), both with php_mode = "fpm".
func fpmSites(t *testing.T, aliceExtra, aliceIdentity string) (*daemon, []testSite, string) {
	testenv.RequireRoot(t)
	requirePHP(t)
	requireFPM(t)
	addr := freePort(t)
	pages := func() map[string]string {
		return map[string]string{
			"index.php":  uidPage,
			"pid.php":    `<?php echo getmypid(), " ", PHP_SAPI;`,
			"ini.php":    `<?php echo ini_get("memory_limit");`,
			"set.php":    `<?php ini_set("memory_limit", "1G"); echo ini_get("memory_limit"), " ", ini_get("precision");`,
			"env.php":    `<?php foreach (["SCRIPT_FILENAME","SCRIPT_NAME","PATH_INFO","REDIRECT_STATUS","REQUEST_SCHEME","SERVER_NAME","SERVER_PORT","REMOTE_ADDR","QUERY_STRING","REQUEST_METHOD","HTTP_X_TEST","APP_ENV"] as $k) echo $k, "=", $_SERVER[$k] ?? "", "\n";`,
			"post.php":   `<?php echo strtoupper(file_get_contents("php://input"));`,
			"fds.php":    `<?php foreach (scandir("/proc/self/fd") as $f) { if (is_numeric($f) && $f > 2) echo $f, "=", @readlink("/proc/self/fd/$f"), "\n"; }`,
			"error.php":  `<?php error_log("alice was here"); echo "logged";`,
			"secret.txt": "secret\n",
		}
	}
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2351), extra: "php_mode = \"fpm\"\n" + aliceExtra, idExtra: aliceIdentity, pages: pages()},
		{name: "bob", uid: testenv.FreeID(t, 2352), extra: "php_mode = \"fpm\"\n", pages: pages()},
	}
	testenv.FreeID(t, 2353)
	server := "multiplexer_user = \"2353\"\nmultiplexer_group = \"2353\"\n"
	path := writeSites(t, addr, server, sites)
	run := filepath.Join(filepath.Dir(path), "run")
	steal := fmt.Sprintf(`<?php $s = @file_get_contents(%q); echo $s === false ? "denied" : "READ: ".$s;`, filepath.Join(sites[0].root, "secret.txt"))
	os.WriteFile(filepath.Join(sites[1].root, "steal.php"), []byte(steal), 0o600)
	os.Chown(filepath.Join(sites[1].root, "steal.php"), 2352, 2352)
	return startDaemon(t, addr, "-config", path), sites, run
}

func requireFPM(t testing.TB) {
	t.Helper()
	if m, _ := filepath.Glob("/usr/sbin/php-fpm*"); len(m) == 0 {
		requireTool(t, "php-fpm")
	}
}

// TestFPMSites: with php_mode = "fpm" each vhost's PHP runs as its own
// uid in PHP-FPM run as that uid, isolation holds, php_admin_value cannot
// be changed by a script or a .user.ini, php_value can, and the CGI
// environment is the one CGI mode gives.
func TestFPMSites(t *testing.T) {
	d, sites, run := fpmSites(t, `php_admin_value = { memory_limit = "77M" }
php_value = { precision = "7" }
env = { APP_ENV = "prod" }`, "")
	checkTwoSites(t, d, sites)
	if _, body := d.get("bob.test", "/ini.php"); body == "77M" {
		t.Errorf("alice's php_admin_value reached bob's PHP")
	}
	if code, body := d.get("alice.test", "/set.php"); code != 200 || body != "77M 7" {
		t.Errorf("ini_set of an admin value: %d %q, want it unchanged (77M) and the php_value (precision 7)", code, body)
	}
	userIni := filepath.Join(sites[0].root, ".user.ini")
	os.WriteFile(userIni, []byte("memory_limit = 1G\n"), 0o644)
	os.Chown(userIni, 2351, 2351)
	if _, body := d.get("alice.test", "/ini.php"); body != "77M" {
		t.Errorf("a .user.ini changed an admin value: %q", body)
	}
	// Persistent PHP-FPM children: one request after another reuses
	// them (FPM may start a second while the first marks itself idle).
	pids := map[string]bool{}
	var p1 string
	for range 6 {
		_, p := d.get("alice.test", "/pid.php")
		p1 = p
		if !strings.HasSuffix(p, " fpm-fcgi") {
			t.Errorf("pid.php: %q, want an fpm-fcgi process", p)
		}
		pids[p] = true
	}
	if len(pids) > 2 {
		t.Errorf("six requests one after another: %d PHP processes %v, want them reused", len(pids), pids)
	}
	_, port, _ := strings.Cut(d.addr, ":")
	_, env := d.get("alice.test", "/env.php/extra/path?q=1")
	for _, want := range []string{
		"SCRIPT_FILENAME=" + filepath.Join(sites[0].root, "env.php"),
		"SCRIPT_NAME=/env.php", "PATH_INFO=/extra/path", "REDIRECT_STATUS=200", "REQUEST_SCHEME=http",
		"SERVER_NAME=alice.test", "SERVER_PORT=" + port, "REMOTE_ADDR=127.0.0.1", "QUERY_STRING=q=1", "REQUEST_METHOD=GET",
		"APP_ENV=prod",
	} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("CGI environment lacks %q:\n%s", want, env)
		}
	}
	// A chunked body would reach PHP without a CONTENT_LENGTH: 411.
	req, _ := http.NewRequest("POST", "http://"+d.addr+"/env.php", io.MultiReader(strings.NewReader("a=1")))
	req.Host = "alice.test"
	if resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req); err != nil {
		t.Errorf("chunked POST: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusLengthRequired {
			t.Errorf("chunked POST to PHP: %d, want 411", resp.StatusCode)
		}
	}
	if code, body := d.post("alice.test", "/post.php", "hello body"); code != 200 || body != "HELLO BODY" {
		t.Errorf("POST: %d %q", code, body)
	}
	if code, _ := d.get("alice.test", "/missing.php"); code != 404 {
		t.Errorf("missing script: %d, want 404", code)
	}
	// The PHP process is the site's uid and holds none of the worker's
	// descriptors (scoreboard, plan, log, sockets of the daemon).
	pid, _ := strconv.Atoi(strings.Fields(p1)[0]) // the last one: still running
	st, err := procstatus.Process(pid)
	if err != nil || st.UID != [4]uint32{2351, 2351, 2351, 2351} || !st.NoNewPrivs || st.CapBnd != 0 {
		t.Errorf("PHP-FPM child %d: %+v %v, want uid 2351, no capabilities, no_new_privs", pid, st, err)
	}
	if _, fds := d.get("alice.test", "/fds.php"); strings.Contains(fds, "memfd:") || strings.Contains(fds, ".log") {
		t.Errorf("descriptors the PHP-FPM child holds:\n%s", fds)
	}
	// PHP's error log is the site's own file.
	d.get("alice.test", "/error.php")
	elog := filepath.Join(run, "php", "alice", "alice.test.error.log")
	var b []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(string(b), "alice was here"); time.Sleep(50 * time.Millisecond) {
		b, _ = os.ReadFile(elog)
	}
	if fi, err := os.Stat(elog); err != nil || !strings.Contains(string(b), "alice was here") || fi.Sys().(*syscall.Stat_t).Uid != 2351 {
		t.Errorf("PHP error log %s: %v %q, want alice's message in alice's file", elog, err, b)
	}
	if strings.Contains(d.out.String(), "alice was here") {
		t.Errorf("alice's PHP error reached the daemon's log")
	}
	// bob's PHP cannot reach alice's FPM: its socket is in alice's 0700
	// directory, and 0600.
	socks, _ := filepath.Glob(filepath.Join(run, "php", "alice", "g*-v0.sock"))
	if len(socks) != 1 {
		t.Fatalf("alice's FPM sockets: %v", socks)
	}
	code := fmt.Sprintf(`<?php $s = @stream_socket_client("unix://%s", $e, $m, 2); echo $s === false ? "denied" : "CONNECTED";`, socks[0])
	os.WriteFile(filepath.Join(sites[1].root, "fpm.php"), []byte(code), 0o600)
	os.Chown(filepath.Join(sites[1].root, "fpm.php"), 2352, 2352)
	if _, body := d.get("bob.test", "/fpm.php"); body != "denied" {
		t.Errorf("bob's PHP connecting to alice's PHP-FPM socket: %q", body)
	}
}

// TestFPMRecycleAndRestart: a PHP process is replaced after
// php_max_requests; a killed PHP process, and a killed FPM master, are
// replaced with no failed request.
func TestFPMRecycleAndRestart(t *testing.T) {
	d, _, _ := fpmSites(t, "", "[identity.alice.pool]\nphp_max_requests = 3\nphp_max = 1\n")
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
		t.Fatalf("three requests, pids %d %d %d: want one PHP process", a, b, c)
	}
	e := pidOf()
	if e == a {
		t.Fatalf("pid %d served a 4th request with php_max_requests = 3", e)
	}
	// Kill the idle PHP process: the next request succeeds, on a new one.
	syscall.Kill(e, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	if f := pidOf(); f == e {
		t.Errorf("killed PHP process %d answered", e)
	}
	// Kill FPM's master: it is started again (a request that its
	// children took as they were being killed may fail meanwhile).
	st, _ := procstatus.Process(pidOf())
	syscall.Kill(st.PPid, syscall.SIGKILL)
	start := time.Now()
	for time.Since(start) < 5*time.Second && running(st.PPid) {
		time.Sleep(10 * time.Millisecond)
	}
	code := 0
	for time.Since(start) < 10*time.Second && code != 200 {
		code, _ = d.get("alice.test", "/pid.php")
	}
	if code != 200 {
		t.Errorf("after FPM's master was killed: %d", code)
	}
	t.Logf("first answer %v after FPM's master was killed", time.Since(start).Round(time.Millisecond))
	if pid := pidOf(); running(st.PPid) || pid == 0 {
		t.Errorf("the killed master %d still runs", st.PPid)
	}
}

// running reports whether pid is alive (a zombie, dead but not reaped,
// is not).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
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
