//go:build !cgo

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/internal/testenv"
)

// addrPage shows who runs PHP and whom PHP believes the client is.
const addrPage = `<?php printf("%s uid=%d remote=%s port=%s xff=%s", $_SERVER['SERVER_NAME'], posix_geteuid(), $_SERVER['REMOTE_ADDR'], $_SERVER['REMOTE_PORT'], $_SERVER['HTTP_X_FORWARDED_FOR'] ?? "");`

type proxySetup struct {
	d               *daemon
	addr, tlsAddr   string
	sites           []testSite
	logDir          string
	roots           *x509.CertPool
	aliceUID, bobID uint32
}

// startProxySites runs alice and bob (uids 2411, 2412; multiplexers 2413)
// on a plain and a TLS listener that both require a PROXY header from
// 127.0.0.1.
func startProxySites(t *testing.T) *proxySetup {
	testenv.RequireRoot(t)
	requirePHP(t)
	ports := freePorts(t, 2)
	s := &proxySetup{addr: ports[0], tlsAddr: ports[1], roots: x509.NewCertPool()}
	s.aliceUID, s.bobID = testenv.FreeID(t, 2411), testenv.FreeID(t, 2412)
	muxID := testenv.FreeID(t, 2413)
	tlsDir := testenv.PublicDir(t, 0o755)
	s.sites = []testSite{
		{name: "alice", uid: s.aliceUID, pages: map[string]string{"index.php": addrPage, "slow.php": `<?php sleep(2); echo "slow";`}},
		{name: "bob", uid: s.bobID, pages: map[string]string{"index.php": addrPage}},
	}
	for i := range s.sites {
		ts := &s.sites[i]
		cert, key, pemb := tlsFiles(t, tlsDir, ts.name, ts.uid, []string{ts.name + ".test"}, time.Now().AddDate(0, 1, 0))
		s.roots.AppendCertsFromPEM(pemb)
		ts.extra = fmt.Sprintf("tls_certificate = %q\ntls_key = %q\n", cert, key)
	}
	srv := fmt.Sprintf("tls_listen = [%q]\nheader_timeout = \"1s\"\nmultiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", s.tlsAddr, muxID, muxID)
	cfg := writeSites(t, s.addr, srv, s.sites)
	s.logDir = filepath.Join(filepath.Dir(cfg), "log")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{s.addr, s.tlsAddr} {
		fmt.Fprintf(f, "\n[listener.%q]\nproxy_protocol = true\ntrusted_proxies = [\"127.0.0.1/32\", \"::1\"]\n", a)
	}
	f.Close()
	s.d = startDaemon(t, s.addr, "-config", cfg)
	return s
}

func proxyV1(src, dst string) []byte {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	proto := "TCP4"
	if s.Addr().Is6() {
		proto = "TCP6"
	}
	return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", proto, s.Addr(), d.Addr(), s.Port(), d.Port())
}

// proxyV2 builds a v2 header: PROXY for src and dst, LOCAL when src is "".
func proxyV2(src, dst string) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	if src == "" {
		return append(b, 0x20, 0x00, 0, 0)
	}
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	var addrs []byte
	fam := byte(0x11) // AF_INET, STREAM
	if s.Addr().Is6() {
		fam = 0x21
	}
	addrs = append(addrs, s.Addr().AsSlice()...)
	addrs = append(addrs, d.Addr().AsSlice()...)
	addrs = binary.BigEndian.AppendUint16(addrs, s.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, d.Port())
	// A TLV HAProxy sends (PP2_TYPE_AUTHORITY), to be skipped.
	addrs = append(addrs, 0x02, 0x00, 0x06)
	addrs = append(addrs, "a.test"...)
	b = append(b, 0x21, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

// exchange sends each request on c in turn and returns the bodies.
func exchange(t *testing.T, c net.Conn, hosts ...string) []string {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	var out []string
	for _, h := range hosts {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nX-Forwarded-For: 192.0.2.66\r\n\r\n", h)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request for %s: %v", h, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request for %s: %s %s", h, resp.Status, b)
		}
		out = append(out, string(b))
	}
	return out
}

// refused checks that the server closes c without a byte, within 5s.
func refused(t *testing.T, c net.Conn, what string) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: not closed within 5s", what)
	}
	if len(b) > 0 {
		t.Fatalf("%s: got an answer %q, want the connection closed", what, b)
	}
	t.Logf("%s: closed after %v (%v)", what, time.Since(start).Round(time.Millisecond), err)
}

func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProxyProtocol: on a PROXY listener, PHP and the access log see the
// client address of the header on every request of a connection, across
// identities (a hand-back) and over TLS; what does not come from a
// trusted proxy with a valid header is closed, never served as the
// proxy's own.
func TestProxyProtocol(t *testing.T) {
	s := startProxySites(t)
	uid := func(n uint32) string { return fmt.Sprintf("uid=%d", n) }

	t.Run("v1 keep-alive across identities", func(t *testing.T) {
		c := dialFrom(t, "", s.addr)
		c.Write(proxyV1("203.0.113.7:51234", s.addr))
		got := exchange(t, c, "alice.test", "bob.test", "alice.test")
		for i, want := range []string{uid(s.aliceUID), uid(s.bobID), uid(s.aliceUID)} {
			if !strings.Contains(got[i], want) || !strings.Contains(got[i], "remote=203.0.113.7 port=51234") {
				t.Errorf("request %d: %q, want %s and remote=203.0.113.7 port=51234", i, got[i], want)
			}
			// X-Forwarded-For is a header like any other: passed on,
			// never believed.
			if !strings.Contains(got[i], "xff=192.0.2.66") {
				t.Errorf("request %d: %q, want HTTP_X_FORWARDED_FOR passed on", i, got[i])
			}
		}
	})
	t.Run("v2 IPv6 client, header and request in separate writes", func(t *testing.T) {
		c := dialFrom(t, "", s.addr)
		c.Write(proxyV2("[2001:db8::7]:4444", "[2001:db8::1]:80"))
		time.Sleep(50 * time.Millisecond) // the slow path
		got := exchange(t, c, "bob.test", "alice.test")
		for i, g := range got {
			if !strings.Contains(g, "remote=2001:db8::7 port=4444") {
				t.Errorf("request %d: %q, want remote=2001:db8::7 port=4444", i, g)
			}
		}
	})
	t.Run("v2 LOCAL keeps the peer address", func(t *testing.T) {
		c := dialFrom(t, "", s.addr)
		c.Write(proxyV2("", ""))
		if got := exchange(t, c, "alice.test")[0]; !strings.Contains(got, "remote=127.0.0.1 ") {
			t.Errorf("LOCAL: %q, want remote=127.0.0.1", got)
		}
	})
	for _, v := range []struct {
		name   string
		header []byte
	}{
		{"v1", proxyV1("198.51.100.9:7000", s.tlsAddr)},
		{"v2", proxyV2("198.51.100.9:7000", s.tlsAddr)},
	} {
		t.Run("TLS "+v.name, func(t *testing.T) {
			c := dialFrom(t, "", s.tlsAddr)
			c.Write(v.header)
			tc := tls.Client(c, &tls.Config{ServerName: "bob.test", RootCAs: s.roots, NextProtos: []string{"http/1.1"}})
			got := exchange(t, tc, "bob.test", "bob.test")
			for i, g := range got {
				if !strings.Contains(g, uid(s.bobID)) || !strings.Contains(g, "remote=198.51.100.9 port=7000") {
					t.Errorf("request %d: %q, want %s remote=198.51.100.9 port=7000", i, g, uid(s.bobID))
				}
			}
		})
	}
	t.Run("untrusted peer", func(t *testing.T) {
		for _, addr := range []string{s.addr, s.tlsAddr} {
			c := dialFrom(t, "127.0.0.2", addr)
			c.Write(append(proxyV1("203.0.113.7:1", addr), "GET / HTTP/1.1\r\nHost: alice.test\r\n\r\n"...))
			refused(t, c, "untrusted peer on "+addr)
		}
	})
	t.Run("missing header", func(t *testing.T) {
		c := dialFrom(t, "", s.addr)
		c.Write([]byte("GET / HTTP/1.1\r\nHost: alice.test\r\n\r\n"))
		refused(t, c, "plain HTTP without a header")
		c = dialFrom(t, "", s.tlsAddr)
		tc := tls.Client(c, &tls.Config{ServerName: "bob.test", RootCAs: s.roots})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err == nil {
			t.Error("TLS without a header: handshake succeeded")
		}
	})
	t.Run("garbage header", func(t *testing.T) {
		c := dialFrom(t, "", s.addr)
		c.Write([]byte("PROXY TCP4 203.0.113.7 nonsense\r\nGET / HTTP/1.1\r\nHost: alice.test\r\n\r\n"))
		refused(t, c, "garbage v1")
		c = dialFrom(t, "", s.addr)
		c.Write(append(proxyV2("203.0.113.7:1", s.addr)[:14], 0xff, 0xff))
		refused(t, c, "v2 announcing 64 KiB")
	})
	t.Run("stalled header", func(t *testing.T) {
		for _, addr := range []string{s.addr, s.tlsAddr} {
			c := dialFrom(t, "", addr)
			start := time.Now()
			c.Write([]byte("PROXY TCP4 203.0.113.7 "))
			refused(t, c, "stalled header on "+addr)
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("stalled header on %s: closed after %v, header_timeout is 1s", addr, d)
			}
		}
	})
	t.Run("status page", func(t *testing.T) {
		// A request in progress shows the header's client, not the proxy.
		c := dialFrom(t, "", s.addr)
		c.Write(proxyV1("203.0.113.8:4242", s.addr))
		fmt.Fprintf(c, "GET /slow.php HTTP/1.1\r\nHost: alice.test\r\n\r\n")
		sock := filepath.Join(filepath.Dir(s.logDir), "run", "status.sock")
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		var page string
		for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err := hc.Get("http://localhost/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if page = string(b); strings.Contains(page, "/slow.php") {
				break
			}
		}
		if !strings.Contains(page, "alice.test/slow.php from 203.0.113.8") {
			t.Errorf("status page during the request: want alice.test/slow.php from 203.0.113.8:\n%s", page)
		}
	})
	t.Run("access log", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(s.logDir, "bob.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"203.0.113.7 - - ", "2001:db8::7 - - ", "198.51.100.9 - - "} {
			if !bytes.Contains(b, []byte("\n"+want)) && !bytes.HasPrefix(b, []byte(want)) {
				t.Errorf("bob's access log has no line from %q:\n%s", want, b)
			}
		}
		if bytes.Contains(b, []byte("\n127.0.0.1 ")) || bytes.HasPrefix(b, []byte("127.0.0.1 ")) {
			t.Errorf("bob's access log has a line with the proxy's address:\n%s", b)
		}
	})
}

// TestProxySeal: a worker cannot make the multiplexer believe a client
// address it did not seal for that very socket.
func TestProxySeal(t *testing.T) {
	m := &mux{plan: muxPlan{SealKey: newSealKey()}}
	local := netip.MustParseAddrPort("127.0.0.1:80")
	client := netip.MustParseAddrPort("203.0.113.7:1234")
	info := fdpass.ConnInfo{ProxyClient: client, Seal: m.seal(42, local, client)}
	if got, ok := m.handbackProxy(info, 42, local); !ok || got != client {
		t.Fatalf("own seal: %v %v, want %v true", got, ok, client)
	}
	local0 := fdpass.ConnInfo{Seal: m.seal(42, local, netip.AddrPort{})}
	if got, ok := m.handbackProxy(local0, 42, local); !ok || got.IsValid() {
		t.Errorf("sealed LOCAL connection: %v %v, want no client, true", got, ok)
	}
	for name, tt := range map[string]struct {
		info   fdpass.ConnInfo
		cookie uint64
		local  netip.AddrPort
	}{
		"other client":      {fdpass.ConnInfo{ProxyClient: netip.MustParseAddrPort("198.51.100.1:1234"), Seal: info.Seal}, 42, local},
		"other socket":      {info, 43, local},
		"other listener":    {info, 42, netip.MustParseAddrPort("127.0.0.1:81")},
		"no seal":           {fdpass.ConnInfo{ProxyClient: client}, 42, local},
		"LOCAL seal reused": {fdpass.ConnInfo{ProxyClient: client, Seal: local0.Seal}, 42, local},
		"other key":         {fdpass.ConnInfo{ProxyClient: client, Seal: (&mux{plan: muxPlan{SealKey: newSealKey()}}).seal(42, local, client)}, 42, local},
	} {
		if got, ok := m.handbackProxy(tt.info, tt.cookie, tt.local); ok {
			t.Errorf("%s: accepted, client %v", name, got)
		}
	}
}
