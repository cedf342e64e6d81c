//go:build !cgo

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gompm/mpm/internal/testenv"
)

// The routing conformance test: one daemon with three identities on two
// plain listeners and a TLS one, and a table of requests, each sent as
// the first request of a connection and again as the second request of a
// kept-alive connection whose first request went elsewhere (to another
// identity, on plain HTTP). The answer (the vhost and uid that served
// it, or the status) must be the same in both positions: the multiplexer
// routes the first request, the worker routes the second, and they must
// make one decision.

type routingSetup struct {
	d              *daemon
	plainA, plainB string
	tlsT           string
	uids           map[string]uint32 // by identity
	vhostUID       map[string]uint32 // by vhost server_name
}

// routingVHost: a vhost of the conformance configuration.
type routingVHost struct {
	name, identity string
	aliases        []string
	listen         []string // "A", "B", "T"
	def            bool
	certNames      []string
}

func startRouting(t *testing.T) *routingSetup {
	testenv.RequireRoot(t)
	requirePHP(t)
	ports := freePorts(t, 3)
	s := &routingSetup{plainA: ports[0], plainB: ports[1], tlsT: ports[2], uids: map[string]uint32{}, vhostUID: map[string]uint32{}}
	muxID := testenv.FreeID(t, 2510)
	for i, id := range []string{"alice", "bob", "carol"} {
		s.uids[id] = testenv.FreeID(t, 2511+i)
	}
	vhosts := []routingVHost{
		{name: "alice.test", identity: "alice", aliases: []string{"www.alice.test", "bücher.test"}, listen: []string{"A", "B"}},
		{name: "bob.test", identity: "bob", aliases: []string{"*.wild.test"}, listen: []string{"A", "T"}, certNames: []string{"bob.test", "*.wild.test"}},
		{name: "carol.test", identity: "carol", listen: []string{"A"}, def: true},
		{name: "scoped.test", identity: "bob", aliases: []string{"same.test"}, listen: []string{"B"}},
		{name: "same.test", identity: "alice", listen: []string{"A"}},
		{name: "alice-tls.test", identity: "alice", listen: []string{"T"}, def: true, certNames: []string{"alice-tls.test"}},
	}
	dir := testenv.PublicDir(t, 0o755)
	addrOf := map[string]string{"A": s.plainA, "B": s.plainB, "T": s.tlsT}
	cfg := fmt.Sprintf("[server]\nlisten = [%q, %q]\ntls_listen = [%q]\nadmin = \"off\"\nrun_dir = %q\nmultiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n",
		s.plainA, s.plainB, s.tlsT, filepath.Join(dir, "run"), muxID, muxID)
	for _, id := range []string{"alice", "bob", "carol"} {
		cfg += fmt.Sprintf("\n[identity.%s]\nuser = \"%d\"\ngroup = \"%d\"\n", id, s.uids[id], s.uids[id])
	}
	for _, v := range vhosts {
		uid := s.uids[v.identity]
		s.vhostUID[v.name] = uid
		root := filepath.Join(dir, v.name)
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		page := filepath.Join(root, "who.php")
		if err := os.WriteFile(page, []byte(fmt.Sprintf(`<?php printf("vhost=%s uid=%%d", posix_geteuid());`, v.name)), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(page, int(uid), int(uid))
		os.Chown(root, int(uid), int(uid))
		var listen []string
		for _, l := range v.listen {
			listen = append(listen, fmt.Sprintf("%q", addrOf[l]))
		}
		quoted := make([]string, len(v.aliases))
		for i, a := range v.aliases {
			quoted[i] = fmt.Sprintf("%q", a)
		}
		cfg += fmt.Sprintf("\n[[vhost]]\nserver_name = %q\naliases = [%s]\ndocument_root = %q\nidentity = %q\nphp = true\nlisten = [%s]\ndefault = %v\n",
			v.name, strings.Join(quoted, ", "), root, v.identity, strings.Join(listen, ", "), v.def)
		if len(v.certNames) > 0 {
			cert, key, _ := tlsFiles(t, dir, v.name, uid, v.certNames, time.Now().AddDate(0, 1, 0))
			cfg += fmt.Sprintf("tls_certificate = %q\ntls_key = %q\n", cert, key)
		}
	}
	path := filepath.Join(dir, "mpmd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.d = startDaemon(t, s.plainA, "-config", path)
	return s
}

// answer is what a request got: "vhost=NAME uid=N", or "status N".
type routingAnswer string

var whoRE = regexp.MustCompile(`^vhost=\S+ uid=\d+$`)

func answerOf(resp *http.Response, err error) routingAnswer {
	if err != nil {
		return routingAnswer("error " + err.Error())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 && whoRE.Match(b) {
		return routingAnswer(b)
	}
	return routingAnswer(fmt.Sprintf("status %d", resp.StatusCode))
}

func (s *routingSetup) served(vhost string) routingAnswer {
	return routingAnswer(fmt.Sprintf("vhost=%s uid=%d", vhost, s.vhostUID[vhost]))
}

// plainExchange sends each raw request on one connection to addr and
// returns the answer to the last; earlier ones must be served.
func plainExchange(t *testing.T, addr string, reqs ...string) routingAnswer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var a routingAnswer
	for i, req := range reqs {
		io.WriteString(c, req)
		a = answerOf(http.ReadResponse(br, nil))
		if i < len(reqs)-1 && !strings.HasPrefix(string(a), "vhost=") {
			t.Fatalf("first request %q on the connection: %s", req, a)
		}
	}
	return a
}

// hostRequest is a GET of who.php with the Host line given as is ("-":
// none, as HTTP/1.0 allows).
func hostRequest(host string) string {
	if host == "-" {
		return "GET /who.php HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	}
	return "GET /who.php HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
}

func TestRoutingConformance(t *testing.T) {
	s := startRouting(t)
	_, portA, _ := net.SplitHostPort(s.plainA)
	plain := []struct {
		listener, host string
		want           routingAnswer
	}{
		{"A", "alice.test", s.served("alice.test")},
		{"A", "ALICE.Test", s.served("alice.test")},
		{"A", "alice.test.", s.served("alice.test")},
		{"A", "alice.test:" + portA, s.served("alice.test")},
		{"A", "www.alice.test", s.served("alice.test")},
		{"A", "xn--bcher-kva.test", s.served("alice.test")},
		{"A", "bücher.test", "status 400"}, // a name is sent in its xn-- form
		{"A", "bad/host", "status 400"},
		{"A", "[::1]", s.served("carol.test")}, // no vhost has it: the default
		{"A", "127.0.0.1", s.served("carol.test")},
		{"A", "", s.served("carol.test")},  // an empty Host: the default
		{"A", "-", s.served("carol.test")}, // HTTP/1.0 without Host
		{"A", "nobody.test", s.served("carol.test")},
		{"A", "x.wild.test", s.served("bob.test")},
		{"A", "a.b.wild.test", s.served("bob.test")}, // a wildcard covers one label or more
		{"A", "wild.test", s.served("carol.test")},   // but not the bare name
		{"A", "scoped.test", s.served("carol.test")}, // a vhost of listener B only
		{"A", "same.test", s.served("same.test")},    // alice's on A, bob's on B
		{"A", "alice-tls.test", s.served("carol.test")},
		{"B", "alice.test", s.served("alice.test")},
		{"B", "scoped.test", s.served("scoped.test")},
		{"B", "same.test", s.served("scoped.test")},
		{"B", "nobody.test", "status 421"}, // B has no default
		{"B", "", "status 421"},
		{"B", "carol.test", "status 421"},
		{"B", "bob.test", "status 421"},
	}
	for _, c := range plain {
		addr := map[string]string{"A": s.plainA, "B": s.plainB}[c.listener]
		// The first request of the second position goes to another
		// identity than the one that should answer.
		first := "alice.test"
		if strings.Contains(string(c.want), "uid="+fmt.Sprint(s.uids["alice"])) {
			first = map[string]string{"A": "carol.test", "B": "scoped.test"}[c.listener]
		}
		got1 := plainExchange(t, addr, hostRequest(c.host))
		got2 := plainExchange(t, addr, hostRequest(first), hostRequest(c.host))
		if got1 != c.want || got2 != c.want {
			t.Errorf("listener %s, Host %q: first on a connection %q, after %s on a kept-alive one %q; want %q", c.listener, c.host, got1, first, got2, c.want)
		}
	}

	tlsCases := []struct {
		sni, host string
		want      routingAnswer
	}{
		{"bob.test", "bob.test", s.served("bob.test")},
		{"bob.test", "x.wild.test", s.served("bob.test")}, // covered by the certificate
		{"x.wild.test", "x.wild.test", s.served("bob.test")},
		{"a.b.wild.test", "a.b.wild.test", s.served("bob.test")}, // routed as on plain HTTP
		{"", "alice-tls.test", s.served("alice-tls.test")},       // no SNI: the default
		{"nobody.test", "nobody.test", s.served("alice-tls.test")},
		{"bob.test", "alice-tls.test", "status 421"}, // SNI of one identity, Host of another
		{"alice-tls.test", "bob.test", "status 421"},
		{"bob.test", "alice.test", "status 421"}, // not on this listener: the default, alice's
		{"bob.test", "carol.test", "status 421"},
	}
	for _, c := range tlsCases {
		first := c.sni
		if first == "" {
			first = "alice-tls.test"
		}
		for _, proto := range []string{"http/1.1", "h2"} {
			got1 := tlsExchange(t, s.tlsT, c.sni, proto, c.host)
			got2 := tlsExchange(t, s.tlsT, c.sni, proto, first, c.host)
			if got1 != c.want || got2 != c.want {
				t.Errorf("TLS %s, SNI %q, Host %q: first on a connection %q, after %s %q; want %q", proto, c.sni, c.host, got1, first, got2, c.want)
			}
		}
	}
	if t.Failed() {
		t.Logf("daemon output:\n%s", s.d.out)
	}
	assertIdle(t, s.d)
}

// tlsExchange makes a TLS connection with the given SNI and ALPN protocol
// and sends a GET of who.php for each host on it; it returns the answer
// to the last (earlier ones must be served).
func tlsExchange(t *testing.T, addr, sni, proto string, hosts ...string) routingAnswer {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(raw, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{proto}})
	if err := c.Handshake(); err != nil {
		return routingAnswer("handshake: " + err.Error())
	}
	if got := c.ConnectionState().NegotiatedProtocol; got != proto && !(proto == "http/1.1" && got == "") {
		t.Fatalf("ALPN: got %q, want %q", got, proto)
	}
	var a routingAnswer
	var h2 *http2.ClientConn
	if proto == "h2" {
		if h2, err = (&http2.Transport{}).NewClientConn(c); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(c)
	for i, host := range hosts {
		if h2 != nil {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://"+addr+"/who.php", nil)
			req.Host = host
			a = answerOf(h2.RoundTrip(req))
		} else {
			io.WriteString(c, hostRequest(host))
			a = answerOf(http.ReadResponse(br, nil))
		}
		if i < len(hosts)-1 && !strings.HasPrefix(string(a), "vhost=") {
			t.Fatalf("first request (Host %q) on the TLS connection: %s", host, a)
		}
	}
	return a
}
