//go:build !cgo

// Production operations end to end: /metrics, SIGUSR1 and logrotate,
// includes and reload. Test ids: 2451-2499.

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

// promtool finds Prometheus' promtool: on PATH, or where make deps puts
// it (extracted from Debian's package, which would also start a server).
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if p, err := filepath.Abs("../../.cache/bin/promtool"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv(testenv.RequireRootEnv) == "1" {
		t.Fatal("promtool is missing (make deps extracts it into .cache/bin as root)")
	}
	t.Skip("skipped: promtool is missing (make deps extracts it into .cache/bin as root)")
	return ""
}

// checkMetrics runs promtool check metrics on text: it fails on a format
// error and on a lint problem (names, units, _total, HELP).
func checkMetrics(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out, text)
	}
}

// parseMetrics maps each sample's name and labels, as written, to its value.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsFormat: what the writer makes passes promtool, label values
// are escaped, and README.md lists every metric.
func TestMetricsFormat(t *testing.T) {
	var s snapshot
	s.Generation, s.Started, s.Reloads = 3, time.Now().Add(-90*time.Second), 2
	s.Pools = []poolSnapshot{{PHPProcesses: 2}, {}}
	s.Pools[0].Name, s.Pools[0].Idle, s.Pools[0].Served, s.Pools[0].QueueWait = "alice", 2, 17, 1500*time.Millisecond
	s.Pools[1].Name = "odd \"name\" \\ with\nnewline"
	var b bytes.Buffer
	if err := writeMetrics(&b, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	checkMetrics(t, b.String())
	m := parseMetrics(t, b.String())
	for k, want := range map[string]float64{
		`mpmd_requests_total{identity="alice"}`:                         17,
		`mpmd_workers{identity="alice",state="idle"}`:                   2,
		`mpmd_queue_wait_seconds_total{identity="alice"}`:               1.5,
		`mpmd_php_processes{identity="alice"}`:                          2,
		`mpmd_generation`:                                               3,
		`mpmd_reloads_total`:                                            2,
		`mpmd_requests_total{identity="odd \"name\" \\ with\nnewline"}`: 0,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v\n%s", k, got, ok, want, b.String())
		}
	}
	if up := m["mpmd_uptime_seconds"]; up < 89 || up > 100 {
		t.Errorf("uptime %v, want about 90", up)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(b.String()) {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			if !bytes.Contains(readme, []byte("`"+name+"`")) {
				t.Errorf("README.md does not list the metric %s", name)
			}
		}
	}
}

// statusClient talks to the status page's unix socket.
func statusClient(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func scrape(t *testing.T, sock string) (map[string]float64, string) {
	t.Helper()
	resp, err := statusClient(sock).Get("http://localhost/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != promContentType {
		t.Fatalf("GET /metrics: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return parseMetrics(t, string(b)), string(b)
}

// waitMetric polls /metrics until ok(value of key) or 10 seconds pass.
func waitMetric(t *testing.T, sock, key string, ok func(float64) bool) float64 {
	t.Helper()
	var v float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m, _ := scrape(t, sock)
		if v = m[key]; ok(v) {
			return v
		}
	}
	t.Fatalf("%s stayed %v", key, v)
	return v
}

// opsSites starts alice (max 1 request at once, queue_timeout 300ms) and
// bob, each with an access log.
func opsSites(t *testing.T) (*daemon, []testSite, string) {
	testenv.RequireRoot(t)
	requirePHP(t)
	addr := freePort(t)
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2451), idExtra: "[identity.alice.pool]\nmax = 1\nqueue_timeout = \"300ms\"\n",
			pages: map[string]string{"index.php": uidPage, "slow.php": `<?php sleep(2); echo "slow done";`, "a.txt": "static\n"}},
		{name: "bob", uid: testenv.FreeID(t, 2452), pages: map[string]string{"index.php": uidPage}},
	}
	testenv.FreeID(t, 2453)
	path := writeSites(t, addr, "multiplexer_user = \"2453\"\nmultiplexer_group = \"2453\"\n", sites)
	d := startDaemon(t, addr, "-config", path)
	// The pid file is written once mpmd handles its signals.
	pidf := filepath.Join(filepath.Dir(path), "run", "mpmd.pid")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(pidf); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(d.cmd.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid file %s with pid %d:\n%s", pidf, d.cmd.Process.Pid, d.out)
		}
	}
	return d, sites, filepath.Dir(path)
}

// TestMetrics: /metrics passes promtool on a live daemon, and its
// counters move with the traffic: requests served by the number made to
// that identity, 503s and queue waits when its pool is saturated,
// reloads; and they do not start again from zero after a reload.
func TestMetrics(t *testing.T) {
	d, _, dir := opsSites(t)
	sock := filepath.Join(dir, "run", "status.sock")
	if code, _ := d.get("alice.test", "/"); code != 200 {
		t.Fatalf("alice: %d", code)
	}
	m0, text := scrape(t, sock)
	checkMetrics(t, text)
	const served = `mpmd_requests_total{identity="alice"}`
	const bobServed = `mpmd_requests_total{identity="bob"}`
	if m0[served] < 1 || m0[`mpmd_generation`] != 1 || m0[`mpmd_worker_spawns_total{identity="alice"}`] < 1 {
		t.Errorf("after one request to alice:\n%s", text)
	}
	for range 5 {
		d.get("alice.test", "/")
	}
	waitMetric(t, sock, served, func(v float64) bool { return v >= m0[served]+5 })
	time.Sleep(200 * time.Millisecond)
	m1, _ := scrape(t, sock)
	if m1[served] != m0[served]+5 || m1[bobServed] != m0[bobServed] {
		t.Errorf("5 requests to alice: alice served %v -> %v, bob %v -> %v; want +5 and +0", m0[served], m1[served], m0[bobServed], m1[bobServed])
	}

	// Saturate alice (max = 1): a slow script holds the place, the next
	// request waits queue_timeout (300ms) and gets 503.
	slow := make(chan int, 1)
	go func() { code, _ := newClientGet(t, d.addr, "alice.test", "/slow.php"); slow <- code }()
	busy := `mpmd_workers{identity="alice",state="busy"}`
	waitMetric(t, sock, `mpmd_requests_in_progress{identity="alice"}`, func(v float64) bool { return v >= 1 })
	m2, text := scrape(t, sock)
	if m2[`mpmd_php_processes{identity="alice"}`] < 1 || m2[busy] < 1 || m2[`mpmd_php_processes{identity="bob"}`] != 0 {
		t.Errorf("during alice's slow.php: want a PHP process and a busy worker for alice, none for bob:\n%s", text)
	}
	if code, _ := newClientGet(t, d.addr, "alice.test", "/"); code != 503 {
		t.Errorf("a request while alice's one place is held: %d, want 503", code)
	}
	if code := <-slow; code != 200 {
		t.Errorf("slow.php: %d", code)
	}
	m3, _ := scrape(t, sock)
	if d := m3[`mpmd_refused_total{identity="alice"}`] - m1[`mpmd_refused_total{identity="alice"}`]; d < 1 {
		t.Errorf("503s of alice rose by %v, want 1 or more", d)
	}
	if d := m3[`mpmd_queue_waits_total{identity="alice"}`] - m1[`mpmd_queue_waits_total{identity="alice"}`]; d < 1 {
		t.Errorf("queue waits of alice rose by %v, want 1 or more", d)
	}
	if d := m3[`mpmd_queue_wait_seconds_total{identity="alice"}`] - m1[`mpmd_queue_wait_seconds_total{identity="alice"}`]; d < 0.25 {
		t.Errorf("queue wait seconds of alice rose by %v, want 0.3 or so", d)
	}
	if m3[`mpmd_refused_total{identity="bob"}`] != 0 {
		t.Errorf("bob refused %v, want 0", m3[`mpmd_refused_total{identity="bob"}`])
	}

	// A reload: a new generation, counted, and alice's counters go on
	// from where they were.
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitMetric(t, sock, "mpmd_generation", func(v float64) bool { return v == 2 })
	m4, text := scrape(t, sock)
	checkMetrics(t, text)
	if m4["mpmd_reloads_total"] != 1 || m4[served] < m3[served] {
		t.Errorf("after a reload: reloads %v, alice served %v (was %v)", m4["mpmd_reloads_total"], m4[served], m3[served])
	}
	d.get("alice.test", "/a.txt")
	waitMetric(t, sock, served, func(v float64) bool { return v == m4[served]+1 })
	if m4["mpmd_uptime_seconds"] <= 0 {
		t.Errorf("uptime %v", m4["mpmd_uptime_seconds"])
	}

	// The README's command for the metrics, on this daemon's socket.
	readme, _ := os.ReadFile("README.md")
	const cmd = "curl --unix-socket /run/mpmd/status.sock http://localhost/metrics"
	if !bytes.Contains(readme, []byte(cmd)) {
		t.Errorf("README.md lacks %q", cmd)
	}
	out, err := exec.Command("sh", "-c", strings.Replace(cmd, "/run/mpmd/status.sock", sock, 1)).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(served)) {
		t.Errorf("%s: %v\n%s", cmd, err, out)
	}
}

// workerPids returns the pids of the daemon's workers.
func workerPids(t *testing.T, d *daemon) []int {
	t.Helper()
	var out []int
	for _, pid := range children(t, d.cmd.Process.Pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.HasPrefix(cmdline, []byte("mpm-worker\x00")) {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// logPaths reads the request paths of an access log.
func logPaths(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 6 {
			out = append(out, f[6])
		}
	}
	return out
}

// rotateAndCheck makes requests to alice on one kept-alive connection,
// has rotate move alice's log away and signal the daemon, and checks
// that every request is logged once, those after the reopen in the new
// file, by the same workers.
func rotateAndCheck(t *testing.T, d *daemon, logf, rotated string, rotate func()) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(i int) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/a.txt?n=%d", d.addr, i), nil)
		req.Host = "alice.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	n := 0
	for ; n < 5; n++ {
		get(n)
	}
	before := workerPids(t, d)
	rotate()
	// The workers reopen a moment after the signal: requests go on
	// meanwhile (each logged somewhere) until one shows in the new file.
	for deadline := time.Now().Add(10 * time.Second); len(logPaths(t, logf)) == 0; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("no line in the new %s 10s after the reopen:\n%s", logf, d.out)
		}
		get(n)
		time.Sleep(20 * time.Millisecond)
	}
	first := n
	for end := n + 20; n < end; n++ {
		get(n)
	}
	time.Sleep(100 * time.Millisecond) // the last line is written after the answer
	oldPaths, newPaths := logPaths(t, rotated), logPaths(t, logf)
	seen := map[string]int{}
	for _, p := range append(oldPaths, newPaths...) {
		seen[p]++
	}
	for i := range n {
		p := fmt.Sprintf("/a.txt?n=%d", i)
		if seen[p] != 1 {
			t.Errorf("request %s logged %d times, want once", p, seen[p])
		}
		if i >= first && !slices.Contains(newPaths, p) {
			t.Errorf("request %s, after the reopen, is not in the new log", p)
		}
	}
	if !slices.Contains(oldPaths, "/a.txt?n=0") {
		t.Errorf("the rotated log lost its lines: %v", oldPaths)
	}
	if after := workerPids(t, d); !slices.Equal(before, after) || len(before) == 0 {
		t.Errorf("workers %v before the reopen, %v after: want the same ones", before, after)
	}
}

// TestLogReopen: SIGUSR1 after a rename, as logrotate does.
func TestLogReopen(t *testing.T) {
	d, _, dir := opsSites(t)
	logf := filepath.Join(dir, "log", "alice.log")
	rotateAndCheck(t, d, logf, logf+".1", func() {
		if err := os.Rename(logf, logf+".1"); err != nil {
			t.Fatal(err)
		}
		pid, err := os.ReadFile(filepath.Join(dir, "run", "mpmd.pid"))
		if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(d.cmd.Process.Pid) {
			t.Fatalf("pid file: %q %v, want %d", pid, err, d.cmd.Process.Pid)
		}
		d.cmd.Process.Signal(syscall.SIGUSR1)
	})
}

// TestLogrotate runs the shipped logrotate snippet, with this daemon's
// paths, through logrotate itself.
func TestLogrotate(t *testing.T) {
	lr, err := exec.LookPath("logrotate")
	if err != nil {
		lr = "/usr/sbin/logrotate"
	}
	if _, err := os.Stat(lr); err != nil {
		requireTool(t, "logrotate")
	}
	d, _, dir := opsSites(t)
	snippet, err := os.ReadFile("mpmd.logrotate")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.ReplaceAll(string(snippet), "/var/log/mpmd/", filepath.Join(dir, "log")+"/")
	conf = strings.ReplaceAll(conf, "/run/mpmd/", filepath.Join(dir, "run")+"/")
	if conf == string(snippet) || strings.Contains(conf, "/run/mpmd/") {
		t.Fatalf("the snippet's paths changed; update this test:\n%s", snippet)
	}
	cf := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(dir, "log", "alice.log")
	rotateAndCheck(t, d, logf, logf+".1", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, lr, "-f", "-s", filepath.Join(dir, "logrotate.state"), cf).CombinedOutput()
		if err != nil {
			t.Fatalf("logrotate: %v\n%s", err, out)
		}
	})
}

// TestIncludeReload: a site added as a file in sites.d is served after
// SIGHUP, as its own uid.
func TestIncludeReload(t *testing.T) {
	d, _, dir := opsSites(t)
	cfgPath := filepath.Join(dir, "mpmd.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// include is a top-level key: before the first table.
	if err := os.WriteFile(cfgPath, append([]byte("include = [\"sites.d/*.toml\"]\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sites.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An empty sites.d is fine: a reload with it keeps both sites.
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.out.String(), "msg=reloaded"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload with an empty sites.d:\n%s", d.out)
		}
	}
	if code, _ := d.get("carol.test", "/"); code != http.StatusMisdirectedRequest {
		t.Errorf("carol before her file: %d, want 421", code)
	}
	uid := testenv.FreeID(t, 2454)
	root := filepath.Join(dir, "carol")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "index.php"), []byte(uidPage), 0o600)
	os.Chown(filepath.Join(root, "index.php"), int(uid), int(uid))
	os.Chown(root, int(uid), int(uid))
	site := fmt.Sprintf("[identity.carol]\nuser = \"%d\"\ngroup = \"%d\"\n\n[[vhost]]\nserver_name = \"carol.test\"\ndocument_root = %q\nidentity = \"carol\"\nphp = true\n", uid, uid, root)
	if err := os.WriteFile(filepath.Join(dir, "sites.d", "carol.toml"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	want := fmt.Sprintf("carol.test uid=%d", uid)
	var code int
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, body = d.get("carol.test", "/"); code == 200 {
			break
		}
	}
	if code != 200 || body != want {
		t.Errorf("carol after her file and SIGHUP: %d %q, want %q\n%s", code, body, want, d.out)
	}
	if code, body := d.get("alice.test", "/"); code != 200 || !strings.Contains(body, "uid=2451") {
		t.Errorf("alice after the reload: %d %q", code, body)
	}
	// A broken site file is refused and changes nothing.
	os.WriteFile(filepath.Join(dir, "sites.d", "dave.toml"), []byte("[[vhost]]\nserver_name = \"dave.test\"\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.out.String(), `dave.toml:1: vhost \"dave.test\" has no document_root`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no error naming dave.toml in the log:\n%s", d.out)
		}
	}
	if code, _ := d.get("carol.test", "/"); code != 200 {
		t.Errorf("carol after a refused reload: %d", code)
	}
}
