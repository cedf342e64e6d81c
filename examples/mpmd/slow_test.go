//go:build !cgo

package main

// Slow and greedy clients, anonymous, against one site (victim) with the
// other (bystander) beside it: while each attack runs, a normal client of
// each site must be answered as under no attack (no request over a
// second). And PHP processes end with their request, their worker and the
// master: none is left running.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

const (
	victimSlowUID    = 2471
	bystanderSlowUID = 2472
	muxSlowUID       = 2473
)

type slowSetup struct {
	d               *daemon
	addr, tlsAddr   string
	victim, bystand testSite
}

// startSlow runs victim (PHP in mode, php_max 4, max 16, expire after 3s,
// with a certificate) and bystander on one plain and one TLS listener,
// with short body and send timeouts. After the test, once the daemon has
// stopped, no process of either site may be left.
func startSlow(t *testing.T, mode string) *slowSetup {
	testenv.RequireRoot(t)
	requirePHP(t)
	requireFPM(t)
	for _, id := range []int{victimSlowUID, bystanderSlowUID, muxSlowUID} {
		testenv.FreeID(t, id)
	}
	ports := freePorts(t, 2)
	s := &slowSetup{addr: ports[0], tlsAddr: ports[1]}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	huge := strings.Repeat(big, 32)                  // beyond any socket buffers
	pages := map[string]string{
		"index.php": uidPage, "hello.txt": "hello\n", "big.txt": big, "huge.txt": huge,
		"post.php":  `<?php echo strlen(file_get_contents("php://input"));`,
		"sleep.php": `<?php sleep((int)($_GET["s"] ?? 2)); echo "slept";`,
		"loop.php":  `<?php while (true) { }`,
	}
	dir := testenv.PublicDir(t, 0o755)
	cert, key, _ := tlsFiles(t, dir, "victim", victimSlowUID, []string{"victim.test"}, time.Now().AddDate(0, 1, 0))
	sites := []testSite{
		{name: "victim", uid: victimSlowUID, pages: pages, idExtra: "[identity.victim.pool]\nmax = 16\nphp_max = 4\nexpire_timeout = \"3s\"\n",
			extra: fmt.Sprintf("php_mode = %q\ntls_certificate = %q\ntls_key = %q\n", mode, cert, key)},
		{name: "bystander", uid: bystanderSlowUID, pages: map[string]string{"index.php": uidPage, "hello.txt": "hello\n"}},
	}
	server := fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\ntls_listen = [%q]\nbody_timeout = \"2s\"\nsend_timeout = \"2s\"\n", muxSlowUID, muxSlowUID, s.tlsAddr)
	path := writeSites(t, s.addr, server, sites)
	t.Cleanup(func() { noProcessOf(t, victimSlowUID, bystanderSlowUID) }) // runs after the daemon's stop
	s.d = startDaemon(t, s.addr, "-config", path)
	s.victim, s.bystand = sites[0], sites[1]
	t.Cleanup(func() { assertIdle(t, s.d) })
	return s
}

type req struct{ host, path string }

// all is a static file and a PHP page of each site.
func (s *slowSetup) all() []req {
	return []req{
		{"victim.test", "/hello.txt"}, {"victim.test", "/index.php"},
		{"bystander.test", "/hello.txt"}, {"bystander.test", "/index.php"},
	}
}

// worst makes n requests for each of reqs on new connections and
// returns the worst latency, failing t for any request that fails.
func (s *slowSetup) worst(t *testing.T, n int, reqs []req) time.Duration {
	t.Helper()
	var worst time.Duration
	for range n {
		for _, c := range reqs {
			t0 := time.Now()
			if code, body := newClientGet(t, s.addr, c.host, c.path); code != 200 {
				t.Errorf("normal request %s%s: %d %q", c.host, c.path, code, body)
			}
			if d := time.Since(t0); d > time.Second {
				t.Logf("%s%s took %v", c.host, c.path, d)
			}
			worst = max(worst, time.Since(t0))
		}
	}
	return worst
}

// underAttack runs attack in n goroutines until the normal requests
// (reqs, or a static file and a PHP page of each site) are done, and
// fails t if one of them took a second or more.
func (s *slowSetup) underAttack(t *testing.T, name string, n int, attack func(stop <-chan struct{}), reqs ...req) {
	t.Helper()
	if len(reqs) == 0 {
		reqs = s.all()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); attack(stop) }()
	}
	time.Sleep(time.Second) // the attack is in place
	worst := s.worst(t, 5, reqs)
	close(stop)
	wg.Wait()
	t.Logf("%s (%d): the worst normal request took %v", name, n, worst)
	if worst > time.Second {
		t.Logf("daemon:\n%s", s.d.out)
		t.Errorf("%s: a normal request took %v, want under a second", name, worst)
	}
}

// noProcessOf fails t if a process of one of the uids is still running
// a second after the test (PHP left behind by its worker, its request or
// the master).
func noProcessOf(t *testing.T, uids ...uint32) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = left[:0]
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			var pid int
			if _, err := fmt.Sscan(e.Name(), &pid); err != nil || !running(pid) {
				continue
			}
			if st, err := procstatus.Process(pid); err == nil && slices.Contains(uids, st.UID[0]) {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				left = append(left, fmt.Sprintf("%d (uid %d): %s", pid, st.UID[0], strings.ReplaceAll(string(cmd), "\x00", " ")))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("processes of the sites' uids left after the test: %v", left)
	}
}

// A body sent a byte every 3 seconds held a PHP process until the expire
// timeout; four of them took the site down. The body is now read whole
// before PHP starts, at a minimum rate.
func TestSlowBody(t *testing.T) {
	s := startSlow(t, "fpm")
	s.underAttack(t, "slow request bodies", 20, func(stop <-chan struct{}) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "POST /post.php HTTP/1.1\r\nHost: victim.test\r\nContent-Length: 100\r\n\r\n")
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Second):
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	})
	// The server gave up on one within its body timeout: 408.
	c, _ := net.Dial("tcp", s.addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /post.php HTTP/1.1\r\nHost: victim.test\r\nContent-Length: 100\r\n\r\nabc")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a body that stops: %v %v, want 408", resp, err)
	}
	if code, body := s.d.post("victim.test", "/post.php", strings.Repeat("y", 3<<20)); code != 200 || body != fmt.Sprint(3<<20) {
		t.Errorf("a 3 MiB body (spooled to a file): %d %q", code, body)
	}
}

// A client that does not read a large response held its worker until the
// expire timeout.
func TestNonReadingClient(t *testing.T) {
	s := startSlow(t, "fpm")
	s.underAttack(t, "clients that do not read", 20, func(stop <-chan struct{}) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return
		}
		defer c.Close()
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		io.WriteString(c, "GET /big.txt HTTP/1.1\r\nHost: victim.test\r\n\r\n")
		<-stop
	})
	// A client that stops reading a response larger than the socket
	// buffers is dropped after send_timeout (2s), not served for ever.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /huge.txt HTTP/1.1\r\nHost: victim.test\r\n\r\n")
	time.Sleep(4 * time.Second)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	if n >= 32<<20 {
		t.Errorf("a client that stopped reading for twice send_timeout got all %d bytes, want the connection dropped", n)
	}
}

// TLS clients that finish their handshake and then send a head line a
// second took the TLS side of a site down while plain HTTP was fine.
func TestSlowTLSHeads(t *testing.T) {
	s := startSlow(t, "fpm")
	s.underAttack(t, "slow TLS heads", 40, func(stop <-chan struct{}) {
		raw, err := net.Dial("tcp", s.tlsAddr)
		if err != nil {
			return
		}
		defer raw.Close()
		c := tls.Client(raw, &tls.Config{ServerName: "victim.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if c.Handshake() != nil {
			return
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: victim.test\r\n")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
				return
			}
		}
	})
	// And a normal TLS client is served meanwhile too.
	out, err := curl(t, "-k", "--resolve", "victim.test:"+strings.Split(s.tlsAddr, ":")[1]+":127.0.0.1", "https://victim.test:"+strings.Split(s.tlsAddr, ":")[1]+"/hello.txt")
	if err != nil || out != "hello\n" {
		t.Errorf("TLS after the attack: %v %q", err, out)
	}
}

// One HTTP/2 connection with 100 streams of a slow script ran 100 PHP
// processes at once under a pool whose max was 4, and a stream outlived
// the expire timeout. Now one connection runs at most half of a site's
// PHP (the rest of its streams wait, holding none), so a normal client
// of the flooded site is still served; and however many connections
// flood, the site's PHP stays within php_max and other sites are served
// as usual.
func TestHTTP2Flood(t *testing.T) {
	s := startSlow(t, "fpm")
	var peak int
	var mu sync.Mutex
	flood := func(stop <-chan struct{}) {
		raw, err := net.Dial("tcp", s.tlsAddr)
		if err != nil {
			return
		}
		defer raw.Close()
		c := tls.Client(raw, &tls.Config{ServerName: "victim.test", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if c.Handshake() != nil {
			return
		}
		cc, err := (&http2.Transport{}).NewClientConn(c)
		if err != nil {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-stop; cancel() }()
		var wg sync.WaitGroup
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, "GET", "https://victim.test/sleep.php?s=30", nil)
				if resp, err := cc.RoundTrip(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		for {
			select {
			case <-stop:
				wg.Wait()
				return
			case <-time.After(200 * time.Millisecond):
			}
			n := countPHP(victimSlowUID)
			mu.Lock()
			peak = max(peak, n)
			mu.Unlock()
		}
	}
	// PHP-FPM's ondemand manager starts a process for a connection that
	// arrives while none is idle; connections that arrive together wait
	// for the one it started (a cold site's PHP grows slowly under a
	// burst, attack or not). The victim has had visitors: its four PHP
	// processes are up (they stay for php_idle_timeout, 10s).
	var warm sync.WaitGroup
	for range 4 {
		warm.Add(1)
		go func() { defer warm.Done(); s.d.get("victim.test", "/sleep.php?s=3") }()
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, "four PHP processes of the victim", func() bool { return countPHP(victimSlowUID) == 4 })
	warm.Wait()
	// The server announces a quarter of the pool's max as the streams a
	// connection may open (Go's default was 250).
	if n := maxStreams(t, s.tlsAddr, "victim.test"); n != 4 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want 4 (a quarter of max = 16)", n)
	}
	s.underAttack(t, "one HTTP/2 connection's streams", 1, flood, s.all()...)
	if peak > 4 {
		t.Errorf("%d PHP processes of the victim at once for one HTTP/2 connection, want at most its php_max of 4", peak)
	}
	t.Logf("one connection: peak PHP processes of the victim: %d", peak)
	peak = 0
	s.underAttack(t, "four HTTP/2 connections' streams", 4, flood,
		req{"victim.test", "/hello.txt"}, req{"bystander.test", "/hello.txt"}, req{"bystander.test", "/index.php"})
	if peak > 4 {
		t.Errorf("%d PHP processes of the victim at once under HTTP/2 floods, want at most its php_max of 4", peak)
	}
	t.Logf("four connections: peak PHP processes of the victim: %d", peak)
}

// maxStreams reads the server's first SETTINGS frame on an HTTP/2
// connection and returns its SETTINGS_MAX_CONCURRENT_STREAMS (0 if
// absent).
func maxStreams(t *testing.T, addr, name string) uint32 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			v, _ := sf.Value(http2.SettingMaxConcurrentStreams)
			return v
		}
	}
}

// countPHP counts the PHP processes (php-cgi, or PHP-FPM's children) of uid.
func countPHP(uid uint32) int { return len(phpPIDs(uid)) }

func phpPIDs(uid uint32) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || !running(pid) {
			continue
		}
		st, err := procstatus.Process(pid)
		if err != nil || st.UID[0] != uid {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmd), "php-fpm: pool") || strings.Contains(string(cmd), "php-cgi") {
			out = append(out, pid)
		}
	}
	return out
}

// A request running past the expire timeout ends, its PHP process with
// it; a killed worker and a killed master take their PHP processes with
// them (a looping php-cgi was left to PID 1, burning a CPU), in both PHP
// modes.
func TestPHPEndsWithItsRequest(t *testing.T) {
	for _, mode := range []string{"cgi", "fpm"} {
		t.Run(mode, func(t *testing.T) {
			s := startSlow(t, mode)
			// Expiry: 3s.
			t0 := time.Now()
			code, _ := newClientGet(t, s.addr, "victim.test", "/loop.php")
			if took := time.Since(t0); took > 8*time.Second || code == 200 {
				t.Errorf("a looping script past the expire timeout: %d after %v", code, took)
			}
			waitPHP(t, "after the expiry", victimSlowUID)
			// A killed worker: php-cgi ends with it; PHP-FPM's request
			// ends at its expiry.
			go getIgnoringErrors(s.addr, "victim.test", "/loop.php")
			waitFor(t, "a looping PHP process", func() bool { return busyPHP(victimSlowUID) > 0 })
			for _, pid := range children(t, s.d.cmd.Process.Pid) {
				if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.HasPrefix(string(cmd), "mpm-worker") {
					if st, err := procstatus.Process(pid); err == nil && st.UID[0] == victimSlowUID {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			waitPHP(t, "after its worker was killed", victimSlowUID)
			// A killed master: everything of the site ends.
			go getIgnoringErrors(s.addr, "victim.test", "/loop.php")
			waitFor(t, "a looping PHP process", func() bool { return busyPHP(victimSlowUID) > 0 })
			s.d.cmd.Process.Kill()
			waitPHP(t, "after the master was killed", victimSlowUID)
		})
	}
}

// waitPHP fails t if a PHP process of uid still uses a CPU 4 seconds
// from now (an idle PHP-FPM child, which FPM ends after its idle timeout,
// does not count).
func waitPHP(t *testing.T, when string, uid uint32) {
	t.Helper()
	for deadline := time.Now().Add(4 * time.Second); busyPHP(uid) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := busyPHP(uid); n > 0 {
		t.Errorf("%s: %d PHP processes of uid %d still use a CPU", when, n, uid)
	}
}

// busyPHP counts the PHP processes of uid that ran for more than 50ms of
// the last 200ms.
func busyPHP(uid uint32) int {
	before := map[int]time.Duration{}
	for _, pid := range phpPIDs(uid) {
		if st, err := procstatus.ReadStat(pid); err == nil {
			before[pid] = st.CPU
		}
	}
	time.Sleep(200 * time.Millisecond)
	n := 0
	for pid, cpu := range before {
		if st, err := procstatus.ReadStat(pid); err == nil && running(pid) && st.CPU-cpu > 50*time.Millisecond {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// getIgnoringErrors makes a request whose end the test brings about (its
// worker or the master killed).
func getIgnoringErrors(addr, host, path string) {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
