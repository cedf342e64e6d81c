//go:build !cgo

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

// tlsFiles writes a certificate for names (0644) and its key (0400,
// owned by uid) into dir.
func tlsFiles(t testing.TB, dir, name string, uid uint32, names []string, notAfter time.Time) (certPath, keyPath string, certPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := selfSigned(names, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(keyPath)
	if err := os.WriteFile(keyPath, keyPEM, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(keyPath, int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, certPEM
}

type tlsSetup struct {
	d        *daemon
	sites    []testSite
	tlsAddr  string
	tlsDir   string
	certs    map[string][]byte // PEM, by site name
	keys     map[string]string // key path, by site name
	cfgPath  string
	certPath map[string]string
}

var envPage = `<?php foreach (["HTTPS","REQUEST_SCHEME","SERVER_PORT","SSL_PROTOCOL","SSL_CIPHER","SSL_TLS_SNI","SSL_SERVER_S_DN","SERVER_PROTOCOL"] as $k) echo $k, "=", $_SERVER[$k] ?? "", "\n";`

// startTLSSites runs alice (uid base) and bob (base+1) with a TLS vhost
// each on one TLS listener; the multiplexers run as base+2.
func startTLSSites(t testing.TB, base int, server string) *tlsSetup {
	testenv.RequireRoot(t)
	requirePHP(t)
	ports := freePorts(t, 2)
	addr, tlsAddr := ports[0], ports[1]
	s := &tlsSetup{tlsAddr: tlsAddr, tlsDir: testenv.PublicDir(t, 0o755), certs: map[string][]byte{}, keys: map[string]string{}, certPath: map[string]string{}}
	alice, bob, muxID := testenv.FreeID(t, base), testenv.FreeID(t, base+1), testenv.FreeID(t, base+2)
	s.sites = []testSite{
		{name: "alice", uid: alice, pages: map[string]string{"index.php": uidPage, "env.php": envPage, "hello.txt": "hello\n", "slow.php": `<?php sleep(2); echo "slow done";`}},
		{name: "bob", uid: bob, pages: map[string]string{"index.php": uidPage}},
	}
	for i := range s.sites {
		ts := &s.sites[i]
		cert, key, pemb := tlsFiles(t, s.tlsDir, ts.name, ts.uid, []string{ts.name + ".test"}, time.Now().AddDate(0, 1, 0))
		s.certs[ts.name], s.keys[ts.name], s.certPath[ts.name] = pemb, key, cert
		ts.extra = fmt.Sprintf("tls_certificate = %q\ntls_key = %q\n", cert, key)
	}
	s.sites[0].extra += "default = true\n"
	// bob's PHP tries to read alice's key.
	s.sites[1].pages["steal.php"] = fmt.Sprintf(`<?php $s = @file_get_contents(%q); echo $s === false ? "denied" : "READ: ".$s;`, s.keys["alice"])
	srv := fmt.Sprintf("tls_listen = [%q]\nmultiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n%s", tlsAddr, muxID, muxID, server)
	s.cfgPath = writeSites(t, addr, srv, s.sites)
	// A second TLS vhost of alice's identity, with its own certificate.
	cert, key, pemb := tlsFiles(t, s.tlsDir, "alice2", alice, []string{"alice2.test"}, time.Now().AddDate(0, 1, 0))
	s.certs["alice2"], s.keys["alice2"], s.certPath["alice2"] = pemb, key, cert
	f, err := os.OpenFile(s.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[[vhost]]\nserver_name = \"alice2.test\"\ndocument_root = %q\nidentity = \"alice\"\nphp = true\ntls_certificate = %q\ntls_key = %q\n", s.sites[0].root, cert, key)
	f.Close()
	s.d = startDaemon(t, addr, "-config", s.cfgPath)
	return s
}

func curl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "20"}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *tlsSetup) resolve(host string) string {
	_, port, _ := net.SplitHostPort(s.tlsAddr)
	return host + ":" + port + ":127.0.0.1"
}

func (s *tlsSetup) url(host, path string) string {
	_, port, _ := net.SplitHostPort(s.tlsAddr)
	return "https://" + host + ":" + port + path
}

func (s *tlsSetup) pool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range s.certs {
		p.AppendCertsFromPEM(c)
	}
	return p
}

// countWorkers counts the daemon's worker processes.
func countWorkers(t *testing.T, d *daemon) int {
	n := 0
	for _, pid := range children(t, d.cmd.Process.Pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.HasPrefix(cmdline, []byte("mpm-worker")) {
			n++
		}
	}
	return n
}

// TestTLS: two TLS vhosts of two identities on one listener.
func TestTLS(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("skipped: openssl is not installed")
	}
	s := startTLSSites(t, 2301, "")
	d := s.d

	// First, before any worker exists: plain HTTP and garbage on the TLS
	// port are answered (or closed) by the multiplexer.
	c, err := net.Dial("tcp", s.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: alice.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("plain HTTP to the TLS port: %v %v, want 400", resp, err)
	}
	for _, garbage := range [][]byte{
		[]byte("\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00"), // a handshake record, not a ClientHello
		[]byte("\x00\x01\x02\x03 nonsense\r\n\r\n"),
		[]byte("\x16\x03\x01\xff\xff"), // a record longer than allowed
	} {
		c, err := net.Dial("tcp", s.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		c.Write(garbage)
		b, _ := io.ReadAll(c)
		c.Close()
		if len(b) > 0 {
			t.Errorf("garbage %q got an answer %q, want the connection closed", garbage, b)
		}
	}
	if n := countWorkers(t, d); n != 0 {
		t.Errorf("%d workers started for refused connections, want none", n)
	}

	// Each site's own certificate: curl trusting only that site's
	// certificate succeeds, and the page runs as the site's user.
	for _, site := range []struct{ name, want string }{{"alice", "alice.test uid=2301"}, {"bob", "bob.test uid=2302"}} {
		host := site.name + ".test"
		out, err := curl(t, "--cacert", s.certPath[site.name], "--resolve", s.resolve(host), s.url(host, "/"))
		if err != nil || out != site.want {
			t.Errorf("curl https://%s/: %v %q, want %q\n%s", host, err, out, site.want, d.out)
		}
		other := map[string]string{"alice": "bob", "bob": "alice"}[site.name]
		if out, err := curl(t, "--cacert", s.certPath[other], "--resolve", s.resolve(host), s.url(host, "/")); err == nil {
			t.Errorf("curl https://%s/ trusting only %s's certificate succeeded: %q", host, other, out)
		}
		so, _ := exec.Command("openssl", "s_client", "-connect", s.tlsAddr, "-servername", host).CombinedOutput()
		if !strings.Contains(string(so), "subject=CN = "+host) && !strings.Contains(string(so), "subject=CN="+host) {
			t.Errorf("openssl s_client -servername %s: no subject CN %s:\n%s", host, host, so)
		}
	}
	// No SNI: the listener's default, alice.
	so, _ := exec.Command("openssl", "s_client", "-connect", s.tlsAddr, "-noservername").CombinedOutput()
	if !strings.Contains(string(so), "CN = alice.test") {
		t.Errorf("openssl s_client without SNI: want alice's certificate (the default):\n%s", so)
	}

	// Alice's key is hers alone.
	fi, err := os.Stat(s.keys["alice"])
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o400 || st.Uid != 2301 {
		t.Errorf("alice's key: mode %#o uid %d, want 0400 uid 2301", fi.Mode().Perm(), st.Uid)
	}
	if out, err := curl(t, "--cacert", s.certPath["bob"], "--resolve", s.resolve("bob.test"), s.url("bob.test", "/steal.php")); err != nil || out != "denied" {
		t.Errorf("bob's PHP reading alice's key: %v %q, want denied", err, out)
	}

	// HTTP/2, and the CGI environment.
	out, err := curl(t, "--http2", "-w", "\nproto=%{http_version}", "--cacert", s.certPath["alice"], "--resolve", s.resolve("alice.test"), s.url("alice.test", "/env.php"))
	if err != nil || !strings.HasSuffix(out, "proto=2") {
		t.Errorf("curl --http2: %v %q, want HTTP/2\n%s", err, out, d.out)
	}
	_, port, _ := net.SplitHostPort(s.tlsAddr)
	for _, want := range []string{"HTTPS=on\n", "REQUEST_SCHEME=https\n", "SERVER_PORT=" + port + "\n", "SSL_PROTOCOL=TLSv1.3\n", "SSL_CIPHER=TLS_", "SSL_TLS_SNI=alice.test\n", "SSL_SERVER_S_DN=CN=alice.test\n", "SERVER_PROTOCOL=HTTP/2.0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("CGI environment over TLS lacks %q:\n%s", want, out)
		}
	}
	out, err = curl(t, "--http1.1", "--tlsv1.2", "--tls-max", "1.2", "-w", "\nproto=%{http_version}", "--cacert", s.certPath["alice"], "--resolve", s.resolve("alice.test"), s.url("alice.test", "/env.php"))
	if err != nil || !strings.Contains(out, "SSL_PROTOCOL=TLSv1.2\n") || !strings.HasSuffix(out, "proto=1.1") {
		t.Errorf("curl --tls-max 1.2 --http1.1: %v %q", err, out)
	}

	// A request for bob on alice's HTTP/2 connection: 421, and so on an
	// HTTP/1.1 one.
	for _, proto := range []string{"--http2", "--http1.1"} {
		out, err := curl(t, proto, "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "-H", "Host: bob.test", "--cacert", s.certPath["alice"], "--resolve", s.resolve("alice.test"), s.url("alice.test", "/"))
		if err != nil || !strings.HasPrefix(out, "421 ") {
			t.Errorf("curl %s with Host bob.test on alice's connection: %v %q, want 421", proto, err, out)
		}
	}
	// alice2.test is alice's too, but alice.test's certificate does not
	// cover it: 421 on that connection, 200 on its own.
	out, err = curl(t, "--http2", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: alice2.test", "--cacert", s.certPath["alice"], "--resolve", s.resolve("alice.test"), s.url("alice.test", "/"))
	if err != nil || out != "421" {
		t.Errorf("Host alice2.test on alice.test's connection: %v %q, want 421", err, out)
	}
	if out, err := curl(t, "--http2", "--cacert", s.certPath["alice2"], "--resolve", s.resolve("alice2.test"), s.url("alice2.test", "/")); err != nil || out != "alice2.test uid=2301" {
		t.Errorf("https://alice2.test/: %v %q", err, out)
	}
	// The same with Go's HTTP/2 client on one connection: alice, then
	// bob (421), then alice again on the same connection.
	var conns atomic.Int32
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.pool(), ServerName: "alice.test"},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			conns.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, s.tlsAddr)
		},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for _, c := range []struct {
		host string
		want int
	}{{"alice.test", 200}, {"bob.test", 421}, {"alice.test", 200}} {
		req, _ := http.NewRequest("GET", "https://alice.test/hello.txt", nil)
		req.Host = c.host
		resp, err := hc.Do(req)
		if err != nil {
			t.Errorf("HTTP/2 request for %s: %v", c.host, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || resp.ProtoMajor != 2 {
			t.Errorf("HTTP/2 request for %s on alice's connection: %d %s, want %d over HTTP/2", c.host, resp.StatusCode, resp.Proto, c.want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the HTTP/2 requests used %d connections, want 1", n)
	}

	// Resumption with openssl: the second connection resumes the first's
	// session, with TLS 1.2 and TLS 1.3.
	for _, v := range []string{"-tls1_2", "-tls1_3"} {
		sess := filepath.Join(t.TempDir(), "sess.pem")
		first := exec.Command("openssl", "s_client", v, "-connect", s.tlsAddr, "-servername", "alice.test", "-sess_out", sess, "-ign_eof")
		first.Stdin = strings.NewReader("GET /hello.txt HTTP/1.1\r\nHost: alice.test\r\nConnection: close\r\n\r\n")
		o1, _ := first.CombinedOutput()
		second := exec.Command("openssl", "s_client", v, "-connect", s.tlsAddr, "-servername", "alice.test", "-sess_in", sess)
		o2, _ := second.CombinedOutput()
		if !strings.Contains(string(o1), "\nNew, ") || !strings.Contains(string(o2), "\nReused, ") {
			t.Errorf("openssl %s resumption: first %q, second %q; want New then Reused", v, grepLine(o1, "New,", "Reused,"), grepLine(o2, "New,", "Reused,"))
		}
	}

	// Resumption across the workers of the pool: hold one worker busy
	// with a connection, resume on another connection, which another
	// worker must serve (a worker serves one connection at a time).
	cache := tls.NewLRUClientSessionCache(4)
	cfg := &tls.Config{RootCAs: s.pool(), ServerName: "alice.test", ClientSessionCache: cache, NextProtos: []string{"http/1.1"}}
	c1, err := tls.Dial("tcp", s.tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c1.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c1, "GET /hello.txt HTTP/1.1\r\nHost: alice.test\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c1), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first connection: %v %v", resp, err)
	}
	// c1 stays open: its worker is busy with it.
	c2, err := tls.Dial("tcp", s.tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c2.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c2, "GET /env.php HTTP/1.1\r\nHost: alice.test\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(c2)
	c2.Close()
	if !c2.ConnectionState().DidResume {
		t.Errorf("a second connection to the pool, served by another worker, did not resume the session")
	}
	if !bytes.Contains(b, []byte("HTTP/1.1 200")) {
		t.Errorf("resumed connection: %q", b)
	}
	// bob's pool does not accept alice's ticket.
	bobCfg := cfg.Clone()
	bobCfg.ServerName = "bob.test"
	bobCfg.InsecureSkipVerify = true // else the client would not offer alice's session to bob.test
	if err := reuseTicketFor(cache, "alice.test", "bob.test"); err == nil {
		c3, err := tls.Dial("tcp", s.tlsAddr, bobCfg)
		if err != nil {
			t.Fatal(err)
		}
		if c3.ConnectionState().DidResume {
			t.Errorf("bob's pool resumed a session of alice's pool")
		}
		c3.Close()
	}
}

// reuseTicketFor copies the cached session of one server name to another,
// to offer one pool's ticket to another pool.
func reuseTicketFor(cache tls.ClientSessionCache, from, to string) error {
	// Go's client caches by server name; the key is not exported as
	// such, but for a connection without a custom key it is the
	// ServerName.
	cs, ok := cache.Get(from)
	if !ok {
		return fmt.Errorf("no session cached for %s", from)
	}
	cache.Put(to, cs)
	return nil
}

func grepLine(b []byte, prefixes ...string) string {
	for _, l := range strings.Split(string(b), "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				return l
			}
		}
	}
	return "(none)"
}

// TestTLSReload: SIGHUP with new certificates: new connections get the
// new certificate, a request in progress on an old one completes.
func TestTLSReload(t *testing.T) {
	s := startTLSSites(t, 2311, "")
	serial := func() string {
		c, err := tls.Dial("tcp", s.tlsAddr, &tls.Config{RootCAs: s.pool(), ServerName: "alice.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake: %v\n%s", err, s.d.out)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	// A slow request in progress across the reload.
	slow := make(chan string, 1)
	go func() {
		out, err := curl(t, "--cacert", s.certPath["alice"], "--resolve", s.resolve("alice.test"), s.url("alice.test", "/slow.php"))
		if err != nil {
			out += " " + err.Error()
		}
		slow <- out
	}()
	time.Sleep(500 * time.Millisecond)
	tlsFiles(t, s.tlsDir, "alice", 2311, []string{"alice.test"}, time.Now().AddDate(0, 2, 0))
	s.d.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for serial() == before {
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate was not served within 20s of SIGHUP:\n%s", s.d.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := <-slow; out != "slow done" {
		t.Errorf("request in progress during the reload: %q, want it completed", out)
	}
}

// TestTLSCheck: mpmd -check reads each key as its identity and reports
// what is wrong with the certificates.
func TestTLSCheck(t *testing.T) {
	testenv.RequireRoot(t)
	alice, bob := testenv.FreeID(t, 2321), testenv.FreeID(t, 2322)
	dir := testenv.PublicDir(t, 0o755)
	docroot := testenv.PublicDir(t, 0o755)
	good, goodKey, _ := tlsFiles(t, dir, "good", alice, []string{"alice.test", "www.alice.test"}, time.Now().AddDate(0, 1, 0))
	_, bobKey, _ := tlsFiles(t, dir, "bobs", bob, []string{"alice.test"}, time.Now().AddDate(0, 1, 0))
	expired, expiredKey, _ := tlsFiles(t, dir, "expired", alice, []string{"alice.test"}, time.Now().Add(-time.Minute))
	wrongName, wrongNameKey, _ := tlsFiles(t, dir, "wrongname", alice, []string{"other.test"}, time.Now().AddDate(0, 1, 0))
	// Alice's own key, readable by everyone: another site's PHP could
	// take it.
	openKey := filepath.Join(dir, "open.key")
	if b, err := os.ReadFile(goodKey); err != nil || os.WriteFile(openKey, b, 0o444) != nil || os.Chmod(openKey, 0o444) != nil || os.Chown(openKey, int(alice), int(alice)) != nil {
		t.Fatalf("a world-readable copy of %s: %v", goodKey, err)
	}
	cfg := func(cert, key string) string {
		path := filepath.Join(t.TempDir(), "mpmd.toml")
		text := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:1\"]\ntls_listen = [\"127.0.0.1:2\"]\nadmin = \"off\"\n\n[identity.alice]\nuser = \"%d\"\ngroup = \"%d\"\n\n[[vhost]]\nserver_name = \"alice.test\"\naliases = [\"www.alice.test\"]\ndocument_root = %q\nidentity = \"alice\"\ntls_certificate = %q\ntls_key = %q\n", alice, alice, docroot, cert, key)
		os.WriteFile(path, []byte(text), 0o644)
		return path
	}
	check := func(path string) (int, string) {
		cmd := exec.Command(testenv.PublicExecutable(t), "-check", "-config", path)
		cmd.Env = append(os.Environ(), envRunDaemon+"=1")
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := check(cfg(good, goodKey)); code != 0 {
		t.Errorf("-check with a good certificate: exit %d\n%s", code, out)
	}
	for _, c := range []struct{ name, cert, key, want string }{
		{"key of another user", good, bobKey, "this identity cannot read tls_key"},
		{"key readable by others", good, openKey, "only its owner should read it"},
		{"key of another certificate", good, expiredKey, "do not go together"},
		{"expired", expired, expiredKey, "expired on"},
		{"names not covered", wrongName, wrongNameKey, "does not cover the name alice.test"},
	} {
		code, out := check(cfg(c.cert, c.key))
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("-check with %s: exit %d, want an error saying %q:\n%s", c.name, code, c.want, out)
		}
	}
	// The key of another user: root could read it, so the check really
	// ran as the identity.
	if _, err := os.ReadFile(bobKey); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTLSHandshakes compares full TLS handshakes per second (each
// followed by one small HTTP/1.1 GET, so that the server has finished
// the handshake) through mpmd with a plain Go TLS server on the same
// machine, with the same certificate and concurrency, and reports both
// and their ratio. The plain server runs in the benchmark's process and
// shares its CPUs with the clients; mpmd's workers are processes of their
// own. Run it as root:
//
//	CGO_ENABLED=0 go test -run '^$' -bench TLSHandshakes -benchtime 1x ./examples/mpmd/
func BenchmarkTLSHandshakes(b *testing.B) {
	const (
		clients = 8
		runFor  = 2 * time.Second
		rounds  = 3
	)
	s := startTLSSites(b, 2331, "")
	pool := s.pool()
	rate := func(addr string) float64 {
		var n atomic.Int64
		var failed atomic.Int64
		stop := time.Now().Add(runFor)
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg := &tls.Config{RootCAs: pool, ServerName: "alice.test", NextProtos: []string{"http/1.1"}}
				buf := make([]byte, 4096)
				for time.Now().Before(stop) {
					c, err := tls.Dial("tcp", addr, cfg)
					if err != nil {
						failed.Add(1)
						continue
					}
					c.SetDeadline(time.Now().Add(10 * time.Second))
					io.WriteString(c, "GET /hello.txt HTTP/1.1\r\nHost: alice.test\r\nConnection: close\r\n\r\n")
					for {
						if _, err := c.Read(buf); err != nil {
							break
						}
					}
					c.Close()
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			b.Logf("%s: %d failed connections", addr, f)
		}
		return float64(n.Load()) / runFor.Seconds()
	}
	// The plain server: Go's TLS and net/http, serving the same file.
	cert, err := tls.LoadX509KeyPair(s.certPath["alice"], s.keys["alice"])
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		b.Fatal(err)
	}
	plain := &http.Server{Handler: http.FileServer(http.Dir(s.sites[0].root))}
	go plain.Serve(ln)
	defer plain.Close()

	rate(s.tlsAddr) // warm up: start the pool's workers
	b.ResetTimer()
	for range b.N {
		// Alternate, so that drift in the machine's load hits both.
		var m, p float64
		for range rounds {
			m += rate(s.tlsAddr) / rounds
			p += rate(ln.Addr().String()) / rounds
		}
		b.ReportMetric(m, "mpmd-handshakes/s")
		b.ReportMetric(p, "plain-handshakes/s")
		b.ReportMetric(m/p, "ratio")
	}
}

// Over TLS (HTTP/1.1), every request of a connection meets the head rules
// of the first: net/http in the worker took obs-fold, bare LF and
// Content-Length with Transfer-Encoding on a kept-alive connection.
func TestTLSSmugglingLater(t *testing.T) {
	s := startTLSSites(t, 2451, "")
	first := "GET /hello.txt HTTP/1.1\r\nHost: alice.test\r\n\r\n"
	after := "GET /index.php HTTP/1.1\r\nHost: alice.test\r\n\r\n"
	for _, c := range []struct{ name, req string }{
		{"obs-fold", "GET /hello.txt HTTP/1.1\r\nHost: alice.test\r\nX: a\r\n b\r\n\r\n"},
		{"bare LF", "GET /hello.txt HTTP/1.1\nHost: alice.test\n\n"},
		{"CL and TE", "POST /hello.txt HTTP/1.1\r\nHost: alice.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	} {
		raw, err := net.Dial("tcp", s.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		c2 := tls.Client(raw, &tls.Config{ServerName: "alice.test", RootCAs: s.pool(), NextProtos: []string{"http/1.1"}})
		go io.WriteString(c2, first+c.req+after)
		br := bufio.NewReader(c2)
		var got []int
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, resp.Body)
			got = append(got, resp.StatusCode)
		}
		raw.Close()
		if fmt.Sprint(got) != "[200 400]" {
			t.Errorf("%s as the second request over TLS: statuses %v, want [200 400] and nothing after", c.name, got)
		}
	}
}
