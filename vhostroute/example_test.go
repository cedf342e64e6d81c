package vhostroute_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gompm/mpm/vhostroute"
)

func ExampleNormalizeHost() {
	for _, h := range []string{"WWW.Example.COM.:8080", "[2001:DB8:0::1]:443", "bücher.example", "a..example", "127.1"} {
		n, err := vhostroute.NormalizeHost(h)
		fmt.Printf("%q %v\n", n, err)
	}
	// Output:
	// "www.example.com" <nil>
	// "[2001:db8::1]" <nil>
	// "xn--bcher-kva.example" <nil>
	// "" vhostroute: host "a..example": empty label (leading dot, ".." or only a dot)
	// "" vhostroute: host "127.1": numeric top-level label but not a dotted-quad IPv4 address
}

// A table like a handful of Apache <VirtualHost> blocks: names and
// wildcards on any address, one site on its own address, a default.
func ExampleBuilder() {
	var b vhostroute.Builder[string] // the value can be anything: a pool, a config
	b.Add(vhostroute.Entry[string]{Listener: "*:443", Names: []string{"example.com", "www.example.com"}, Value: "alice"})
	b.Add(vhostroute.Entry[string]{Listener: "*:443", Names: []string{"*.example.com"}, Value: "alice-subsites"})
	b.Add(vhostroute.Entry[string]{Listener: "*:443", Names: []string{"shop.example"}, Value: "bob", Default: true})
	b.Add(vhostroute.Entry[string]{Listener: "192.0.2.10:443", Names: []string{"carol.example"}, Value: "carol", Default: true})
	table, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	shared := netip.MustParseAddrPort("192.0.2.1:443")
	own := netip.MustParseAddrPort("192.0.2.10:443")
	for _, q := range []struct {
		local netip.AddrPort
		host  string
	}{
		{shared, "WWW.example.com"},
		{shared, "blog.example.com"},
		{shared, "unknown.example"},
		{shared, ""},
		{own, "example.com"},
	} {
		v, ok := table.Lookup(q.local, q.host)
		fmt.Printf("%v %q -> %s %v\n", q.local, q.host, v, ok)
	}
	// Output:
	// 192.0.2.1:443 "WWW.example.com" -> alice true
	// 192.0.2.1:443 "blog.example.com" -> alice-subsites true
	// 192.0.2.1:443 "unknown.example" -> bob true
	// 192.0.2.1:443 "" -> bob true
	// 192.0.2.10:443 "example.com" -> carol true
}

// Build reports every problem, and a name claimed twice names both
// claimants.
func ExampleBuilder_Build_duplicate() {
	var b vhostroute.Builder[int]
	b.Add(vhostroute.Entry[int]{ID: "alice.conf:3", Listener: "*:80", Names: []string{"example.com"}})
	b.Add(vhostroute.Entry[int]{ID: "bob.conf:1", Listener: "*:80", Names: []string{"EXAMPLE.com."}})
	_, err := b.Build()
	fmt.Println(err)
	fmt.Println(errors.Is(err, vhostroute.ErrDuplicate))
	// Output:
	// vhostroute: name "example.com" on *:80 is claimed by both "alice.conf:3" and "bob.conf:1": duplicate name
	// true
}

// conn stands in for a net.Conn in the examples.
type conn struct{ *strings.Reader }

func (conn) SetReadDeadline(time.Time) error { return nil }

func ExampleHeadReader_ReadHead() {
	c := conn{strings.NewReader("GET /index.php HTTP/1.1\r\nHost: WWW.Example.com:80\r\nAccept: */*\r\n\r\nnext bytes")}
	r := vhostroute.HeadReader{Timeout: 10 * time.Second} // zero fields take the defaults
	h, err := r.ReadHead(c)
	if err != nil {
		var he *vhostroute.HeadError
		errors.As(err, &he)
		fmt.Println("answer", he.Status, err) // then close the connection
		return
	}
	fmt.Printf("%s %s %s host=%s port=%s\n", h.Method, h.Target, h.Proto, h.Host, h.Port)
	fmt.Printf("head %d bytes, %q read after it\n", h.Len, h.Raw[h.Len:])
	// Output:
	// GET /index.php HTTP/1.1 host=www.example.com port=80
	// head 66 bytes, "next bytes" read after it
}

// Every failure carries the status to answer with.
func ExampleHeadError() {
	var r vhostroute.HeadReader
	for _, head := range []string{
		"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
		"GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
	} {
		h, err := r.ParseHead([]byte(head))
		var he *vhostroute.HeadError
		if errors.As(err, &he) {
			fmt.Println(he.Status, he.Reason)
			continue
		}
		fmt.Println("ok, host", h.Host)
	}
	// Output:
	// 400 HTTP/1.1 request without a Host header field
	// 400 more than one Host header field
	// ok, host b.example
}

// On a TLS port, route by SNI; what is not TLS gets a clear error.
func ExampleHelloReader_ReadClientHello() {
	var r vhostroute.HelloReader
	_, err := r.ReadClientHello(conn{strings.NewReader("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")})
	fmt.Println(err)
	fmt.Println(errors.Is(err, vhostroute.ErrNotTLS))
	// Output:
	// vhostroute: TLS ClientHello: the client sent plain HTTP ("GET /"...) to a TLS port
	// true
}

// A hello recorded from curl: SNI and ALPN, and exactly the bytes to
// replay to the TLS server.
func ExampleHelloReader_ParseClientHello() {
	raw, err := os.ReadFile("testdata/hello/curl-7.88.1.bin")
	if err != nil {
		fmt.Println(err)
		return
	}
	var r vhostroute.HelloReader
	h, err := r.ParseClientHello(raw)
	fmt.Println(h.ServerName, h.ALPN, len(h.Raw), err)
	// Output:
	// www.example.com [h2 http/1.1] 517 <nil>
}

// On a listener behind a load balancer that sends the PROXY protocol:
// the peer must be a trusted proxy, the header comes first, and the
// request head is read after it as on any listener. The client is the
// header's Source; the request's own X-Forwarded-For is not consulted.
func ExampleHeadReader_ReadProxyHeader() {
	trusted, err := vhostroute.ParseCIDRList([]string{"10.0.0.0/8", "2001:db8:1b::/48"})
	if err != nil {
		fmt.Println(err)
		return
	}
	var r vhostroute.HeadReader // Timeout bounds the header, then the head
	for _, tc := range []struct {
		peer string // conn.RemoteAddr(): the balancer, or whoever connected
		sent string
	}{
		{"10.1.2.3:40000", "PROXY TCP4 203.0.113.7 192.0.2.10 51234 80\r\n" +
			"GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n"},
		{"10.1.2.3:40002", "PROXY UNKNOWN\r\nGET /health HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"10.1.2.3:40004", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"198.51.100.9:5555", "PROXY TCP4 127.0.0.1 192.0.2.10 1 80\r\n"},
	} {
		peer := netip.MustParseAddrPort(tc.peer)
		if !trusted.Contains(peer.Addr()) {
			fmt.Println(peer, "is not a trusted proxy: closed unread")
			continue
		}
		c := conn{strings.NewReader(tc.sent)}
		ph, err := r.ReadProxyHeader(c)
		if err != nil {
			fmt.Println(errors.Is(err, vhostroute.ErrBadProxy), err) // close, no answer
			continue
		}
		client := peer // LOCAL or UNKNOWN: the proxy's own connection
		if !ph.Local {
			client = ph.Source
		}
		h, err := r.ReadHead(c)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("v%d: REMOTE_ADDR=%s REMOTE_PORT=%d %s %s for %s\n", ph.Version, client.Addr().Unmap(), client.Port(), h.Method, h.Target, h.Host)
	}
	// Output:
	// v1: REMOTE_ADDR=203.0.113.7 REMOTE_PORT=51234 GET / for example.com
	// v1: REMOTE_ADDR=10.1.2.3 REMOTE_PORT=40002 GET /health for example.com
	// true vhostroute: PROXY protocol: no PROXY header: the client sent plain HTTP ("GET / HTTP/1.1\r") (a client that did not go through the proxy?)
	// 198.51.100.9:5555 is not a trusted proxy: closed unread
}

// A v2 header as HAProxy's send-proxy-v2 writes it for an IPv6 client.
func ExampleParseProxyHeader() {
	hdr := []byte("\r\n\r\n\x00\r\nQUIT\n" + // signature
		"\x21\x21\x00\x24" + // v2 PROXY; TCP over IPv6; 36 bytes follow
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07" + // source address
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" + // destination address
		"\xc8\x04\x01\xbb" + // ports 51204 and 443
		"GET / HTTP/1.1\r\n") // the connection's own bytes
	h, err := vhostroute.ParseProxyHeader(hdr)
	fmt.Printf("%+v %v\n", h, err)
	fmt.Printf("then %q\n", hdr[h.Len:])
	// Output:
	// {Version:2 Local:false Source:[2001:db8::7]:51204 Dest:[2001:db8::1]:443 Len:52} <nil>
	// then "GET / HTTP/1.1\r\n"
}
