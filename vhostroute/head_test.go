package vhostroute

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// chunkConn is a DeadlineReader that hands out data a few bytes per Read,
// as a network would in the worst case.
type chunkConn struct {
	data  []byte
	chunk int
	reads int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	c.reads++
	n := min(len(p), c.chunk, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

const browserHead = "GET /wp-admin/index.php?page=1 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: wordpress_logged_in_abc=admin%7C1700000000%7Cabcdef; wp-settings-1=libraryContent%3Dbrowse\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-Site: none\r\n" +
	"Sec-Fetch-User: ?1\r\n" +
	"Priority: u=0, i\r\n" +
	"\r\n"

type headResult struct {
	Method, Target, Proto, Host, Port string
	Len                               int
	Status                            int
	Reason                            string // a substring of the error
}

func result(h Head, err error) headResult {
	r := headResult{Method: h.Method, Target: h.Target, Proto: h.Proto, Host: h.Host, Port: h.Port, Len: h.Len}
	if err != nil {
		var he *HeadError
		if !errors.As(err, &he) {
			return headResult{Reason: "not a *HeadError: " + err.Error()}
		}
		r = headResult{Status: he.Status, Reason: err.Error()}
	}
	return r
}

// cmpReason compares Reason as "want is a substring of got".
var cmpReason = cmp.Comparer(func(a, b headResult) bool {
	ra, rb := a.Reason, b.Reason
	a.Reason, b.Reason = "", ""
	return a == b && (strings.Contains(rb, ra) || strings.Contains(ra, rb))
})

func TestParseHead(t *testing.T) {
	// n is the length of the head; 0 means all of the input.
	ok := func(m, target, proto, host, port string, n int) headResult {
		return headResult{Method: m, Target: target, Proto: proto, Host: host, Port: port, Len: n}
	}
	bad := func(status int, reason string) headResult { return headResult{Status: status, Reason: reason} }
	long := strings.Repeat("a", DefaultMaxRequestLine)
	tests := []struct {
		name, in string
		want     headResult
	}{
		{"browser", browserHead, ok("GET", "/wp-admin/index.php?page=1", "HTTP/1.1", "www.example.com", "", 0)},
		{"host with port and case", "GET / HTTP/1.1\r\nhOsT:  Example.COM.:8080 \t\r\n\r\n", ok("GET", "/", "HTTP/1.1", "example.com", "8080", 0)},
		{"ipv6 host", "GET / HTTP/1.1\r\nHost: [2001:DB8::1]:443\r\n\r\n", ok("GET", "/", "HTTP/1.1", "[2001:db8::1]", "443", 0)},
		{"idn host", "GET / HTTP/1.1\r\nHost: bücher.example\r\n\r\n", ok("GET", "/", "HTTP/1.1", "xn--bcher-kva.example", "", 0)},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", ok("GET", "/", "HTTP/1.1", "", "", 0)},
		{"HTTP/1.0 without host goes to the default", "GET / HTTP/1.0\r\n\r\n", ok("GET", "/", "HTTP/1.0", "", "", 0)},
		{"HTTP/1.0 with host", "GET / HTTP/1.0\r\nHost: a.example\r\n\r\n", ok("GET", "/", "HTTP/1.0", "a.example", "", 0)},
		{"HTTP/1.2 is 1.1", "GET / HTTP/1.2\r\nHost: a.example\r\n\r\n", ok("GET", "/", "HTTP/1.2", "a.example", "", 0)},
		{"two leading empty lines ignored", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ok("GET", "/", "HTTP/1.1", "a", "", 0)},
		{"three leading empty lines", "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "more than 2 empty lines")},
		{"body after head", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", ok("POST", "/x", "HTTP/1.1", "a", "", 48)},
		{"pipelined", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n", ok("GET", "/1", "HTTP/1.1", "a", "", 28)},
		{"absolute form replaces Host", "GET http://B.example:81/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n", ok("GET", "http://B.example:81/p?q", "HTTP/1.1", "b.example", "81", 0)},
		{"absolute form https, no path", "GET HTTPS://b.example HTTP/1.1\r\nHost: a.example\r\n\r\n", ok("GET", "HTTPS://b.example", "HTTP/1.1", "b.example", "", 0)},
		{"absolute form, HTTP/1.0 without Host", "GET http://b.example/ HTTP/1.0\r\n\r\n", ok("GET", "http://b.example/", "HTTP/1.0", "b.example", "", 0)},
		{"absolute form with query only", "GET http://b.example?x HTTP/1.1\r\nHost: b.example\r\n\r\n", ok("GET", "http://b.example?x", "HTTP/1.1", "b.example", "", 0)},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", ok("OPTIONS", "*", "HTTP/1.1", "a", "", 0)},
		{"CONNECT", "CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n", ok("CONNECT", "b.example:443", "HTTP/1.1", "b.example", "443", 0)},
		{"obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n", ok("GET", "/", "HTTP/1.1", "a", "", 0)},
		{"request line at the limit", "GET /" + long[:DefaultMaxRequestLine-14] + " HTTP/1.1\r\nHost: a\r\n\r\n", ok("GET", "/"+long[:DefaultMaxRequestLine-14], "HTTP/1.1", "a", "", 0)},

		{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", bad(400, "without a Host")},
		{"absolute form, HTTP/1.1 without Host", "GET http://b.example/ HTTP/1.1\r\n\r\n", bad(400, "without a Host")},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", bad(400, "more than one Host")},
		{"two identical Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", bad(400, "more than one Host")},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", bad(400, "both Content-Length and Transfer-Encoding")},
		{"Transfer-Encoding and Content-Length, any case", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-ENCODING: chunked\r\nCONTENT-length: 4\r\n\r\n", bad(400, "both Content-Length and Transfer-Encoding")},
		{"Host list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", bad(400, "invalid Host")},
		{"Host with path", "GET / HTTP/1.1\r\nHost: a/../b\r\n\r\n", bad(400, "invalid Host")},
		{"Host with empty label", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", bad(400, "empty label")},
		{"Host with NUL", "GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", bad(400, "control byte 0x00")},
		{"absolute form with bad host", "GET http://a..b/ HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "invalid authority")},
		{"fragment in absolute form", "GET http://a#@b/ HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "fragment")},
		{"fragment in origin form", "GET /x#y HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "fragment")},
		{"absolute form with userinfo", "GET http://u@b/ HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "userinfo")},
		{"absolute form with empty host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "empty host")},
		{"absolute form, other scheme", "GET ftp://b/ HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "scheme \"ftp\"")},
		{"absolute form without //", "GET http:b HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "without an authority")},
		{"neither form", "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "neither origin-form")},
		{"asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "asterisk-form")},
		{"CONNECT: the target decides", "CONNECT c.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n", ok("CONNECT", "c.example:443", "HTTP/1.1", "c.example", "443", 0)},
		{"CONNECT, HTTP/1.0 without Host", "CONNECT c.example:443 HTTP/1.0\r\n\r\n", ok("CONNECT", "c.example:443", "HTTP/1.0", "c.example", "443", 0)},
		{"CONNECT without host", "CONNECT :443 HTTP/1.1\r\nHost: b\r\n\r\n", bad(400, "not host:port")},
		{"CONNECT without port", "CONNECT b.example HTTP/1.1\r\nHost: b\r\n\r\n", bad(400, "not host:port")},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", bad(400, "obsolete line folding")},
		{"whitespace after request line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", bad(400, "obsolete line folding")},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", bad(400, "whitespace between header name and colon")},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", bad(400, "whitespace between header name and colon")},
		{"invalid header name", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", bad(400, "invalid header name")},
		{"empty header name", "GET / HTTP/1.1\r\n: a\r\n\r\n", bad(400, "empty header name")},
		{"no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", bad(400, "without a colon")},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", bad(400, "bare LF")},
		{"bare LF after CRLF lines", "GET / HTTP/1.1\r\nHost: a\r\n\n", bad(400, "bare LF")},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", bad(400, "bare CR")},
		{"bare CR, incomplete", "GET / HTTP/1.1\r\nHost: a\rX", bad(400, "bare CR")},
		{"CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "bare CR")},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", bad(400, "control byte 0x7f")},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "empty target")},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", bad(400, "malformed protocol")},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "malformed request line")},
		{"invalid method", "G\"T / HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "invalid method")},
		{"HTTP/0.9", "GET /\r\n\r\n", bad(400, "HTTP/0.9")},
		{"lower-case proto", "GET / http/1.1\r\nHost: a\r\n\r\n", bad(400, "malformed protocol")},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", bad(505, "not HTTP/1.x")},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "malformed protocol")},
		{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "invalid byte in request target")},
		{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", bad(400, "malformed request line")},
		{"TLS on a plain port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", bad(400, "closed after 11 bytes")},
		{"nothing", "", bad(400, "closed before a request")},
		{"closed mid-head", "GET / HTTP/1.1\r\nHost: a\r\n", bad(400, "closed after 25 bytes")},
		{"request line too long", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", bad(414, "request line longer than 8192")},
		{"request line too long, unterminated", "GET /" + long, bad(414, "request line longer than 8192")},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Long: "+long+"\r\n", 4) + "\r\n", bad(431, "head longer than 32768")},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n", bad(431, "more than 100 header fields")},
	}
	var r HeadReader
	for _, tt := range tests {
		if tt.want.Status == 0 && tt.want.Len == 0 {
			tt.want.Len = len(tt.in) // the head is the whole input
		}
		t.Run(tt.name, func(t *testing.T) {
			h, err := r.ParseHead([]byte(tt.in))
			got := result(h, err)
			if err == nil {
				agreesWithNetHTTP(t, h)
			}
			if diff := cmp.Diff(tt.want, got, cmpReason); diff != "" {
				t.Errorf("ParseHead (-want +got):\n%s", diff)
			}
			// Reading from a connection gives the same answer however
			// the bytes are split.
			for _, chunk := range []int{1, 3, 4096} {
				c := &chunkConn{data: []byte(tt.in), chunk: chunk}
				h, err := r.ReadHead(c)
				if diff := cmp.Diff(tt.want, result(h, err), cmpReason); diff != "" {
					t.Errorf("ReadHead, %d-byte reads (-want +got):\n%s", chunk, diff)
				}
				if err == nil && !strings.HasPrefix(tt.in, string(h.Raw)) {
					t.Errorf("ReadHead, %d-byte reads: Raw %q is not a prefix of the input", chunk, h.Raw)
				}
			}
		})
	}
}

// ReadHead returns every byte it read, the head and what followed it, so
// that the next process sees the connection's bytes unchanged.
func TestReadHeadRawIncludesBytesPastHead(t *testing.T) {
	in := "POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: 10\r\n\r\n0123456789GET /next HTTP/1.1\r\n"
	h, err := (&HeadReader{}).ReadHead(&chunkConn{data: []byte(in), chunk: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, string(h.Raw)); diff != "" {
		t.Errorf("Raw (-want +got):\n%s", diff)
	}
	if got, want := string(h.Raw[h.Len:]), "0123456789GET /next HTTP/1.1\r\n"; got != want {
		t.Errorf("Raw[Len:] = %q, want %q", got, want)
	}
}

// The reader never asks for more than MaxHeadBytes in total, even when
// the client sends much more.
func TestReadHeadNeverReadsPastLimit(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 1<<20)
	c := &chunkConn{data: []byte(in), chunk: 1 << 20}
	h, err := (&HeadReader{MaxHeadBytes: 1000}).ReadHead(c)
	var he *HeadError
	if !errors.As(err, &he) || he.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("err = %v, want 431", err)
	}
	if len(h.Raw) != 1000 || len(in)-len(c.data) != 1000 {
		t.Errorf("read %d bytes (Raw %d), want exactly the 1000-byte limit", len(in)-len(c.data), len(h.Raw))
	}
}

// A keep-alive connection handed back by a worker arrives with the start
// of its next request already read.
func TestReadHeadAfter(t *testing.T) {
	prefix := []byte("GET /next HTTP/1.1\r\nHo")
	c := &chunkConn{data: []byte("st: b.example\r\n\r\nrest"), chunk: 5}
	h, err := (&HeadReader{}).ReadHeadAfter(c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := headResult{Method: "GET", Target: "/next", Proto: "HTTP/1.1", Host: "b.example", Len: 39}
	if diff := cmp.Diff(want, result(h, nil)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// 5-byte reads: the last one brought "\r\nres", and nothing more was read.
	if got := string(h.Raw); got != "GET /next HTTP/1.1\r\nHost: b.example\r\n\r\nres" {
		t.Errorf("Raw = %q", got)
	}
	prefix[0] = 'X'
	if h.Method != "GET" || h.Raw[0] != 'G' {
		t.Error("the Head shares memory with the prefix")
	}
}

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		server = r.c
	case <-time.After(5 * time.Second):
		t.Fatal("accept timed out")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	client.(*net.TCPConn).SetNoDelay(true)
	return client, server
}

// Slow clients: however the bytes are paced, the whole head must arrive
// within Timeout, and the reader gives up promptly with 408 when it does
// not.
func TestReadHeadSlowClients(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name  string
		send  string
		every time.Duration // pause between single bytes; 0 sends send at once, then stalls
	}{
		{"one byte at a time", browserHead, 20 * time.Millisecond},
		{"stall mid-head", "GET / HTTP/1.1\r\nHost: a.exa", 0},
		{"stall after request line", "GET / HTTP/1.1\r\n", 0},
		{"connect and say nothing", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := loopbackPair(t)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				if tt.every == 0 {
					client.Write([]byte(tt.send))
					return
				}
				for i := 0; i < len(tt.send); i++ {
					select {
					case <-stop:
						return
					case <-time.After(tt.every):
					}
					if _, err := client.Write([]byte{tt.send[i]}); err != nil {
						return
					}
				}
			}()
			start := time.Now()
			h, err := (&HeadReader{Timeout: timeout}).ReadHead(server)
			elapsed := time.Since(start)
			close(stop)
			<-done
			var he *HeadError
			if !errors.As(err, &he) || he.Status != http.StatusRequestTimeout {
				t.Fatalf("err = %v, want a 408", err)
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("err = %v, does not wrap os.ErrDeadlineExceeded", err)
			}
			if elapsed < timeout || elapsed > timeout+time.Second {
				t.Errorf("gave up after %v, want about %v", elapsed, timeout)
			}
			if !strings.HasPrefix(tt.send, string(h.Raw)) || (tt.every == 0 && string(h.Raw) != tt.send) {
				t.Errorf("Raw = %q, want what was sent (%q)", h.Raw, tt.send)
			}
			// The deadline is cleared for whoever uses the connection next.
			server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			server.SetReadDeadline(time.Time{})
		})
	}
}

// A client that is slow but within the deadline is served, and the
// connection's deadline is cleared afterwards.
func TestReadHeadSlowButInTime(t *testing.T) {
	client, server := loopbackPair(t)
	go func() {
		for _, part := range []string{"GET / HT", "TP/1.1\r\nHo", "st: a.example\r", "\n\r\n"} {
			client.Write([]byte(part))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	h, err := (&HeadReader{Timeout: 5 * time.Second}).ReadHead(server)
	if err != nil || h.Host != "a.example" {
		t.Fatalf("ReadHead = %q, %v", h.Host, err)
	}
	// No deadline left behind: a read now blocks until the client
	// writes, not until an old deadline.
	go func() {
		time.Sleep(50 * time.Millisecond)
		client.Write([]byte("x"))
	}()
	server.SetReadDeadline(time.Now().Add(5 * time.Second)) // bound the test only
	var b [1]byte
	if _, err := server.Read(b[:]); err != nil {
		t.Errorf("read after ReadHead: %v", err)
	}
}

type failingDeadline struct{ chunkConn }

func (failingDeadline) SetReadDeadline(time.Time) error { return errors.New("no deadlines here") }

// A reader that cannot take a deadline is refused rather than read
// without one.
func TestReadHeadNeedsDeadline(t *testing.T) {
	_, err := (&HeadReader{}).ReadHead(&failingDeadline{chunkConn{data: []byte(browserHead), chunk: 10}})
	if err == nil || !strings.Contains(err.Error(), "no deadlines here") {
		t.Errorf("err = %v", err)
	}
}

// Errors say what failed and carry the status.
func TestHeadErrorText(t *testing.T) {
	_, err := (&HeadReader{}).ParseHead([]byte("GET / HTTP/1.1\r\nHost : a\r\n\r\n"))
	want := `vhostroute: request head: whitespace between header name and colon in "Host : a" (HTTP 400 Bad Request)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

// agreesWithNetHTTP checks that net/http, which the workers serve with,
// reads an accepted head as a request for the same host: the multiplexer
// and the worker must never disagree on whose request it is.
func agreesWithNetHTTP(t testing.TB, h Head) {
	t.Helper()
	// The server drops up to four leading CR or LF bytes before calling
	// ReadRequest; so does this.
	head := h.Raw[:h.Len]
	for i := 0; i < 4 && len(head) > 0 && (head[0] == '\r' || head[0] == '\n'); i++ {
		head = head[1:]
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		t.Errorf("vhostroute accepted %q, net/http refuses it: %v", h.Raw[:h.Len], err)
		return
	}
	host, err := NormalizeHost(req.Host)
	if err != nil || host != h.Host {
		t.Errorf("head %q: vhostroute routes to host %q, net/http sees %q (%q, %v)", h.Raw[:h.Len], h.Host, req.Host, host, err)
	}
	if req.Method != h.Method || req.RequestURI != h.Target || req.Proto != h.Proto {
		t.Errorf("head %q: net/http reads %q %q %q", h.Raw[:h.Len], req.Method, req.RequestURI, req.Proto)
	}
}

// A prefix longer than the limit is held to the limit too: the head must
// end within MaxHeadBytes.
func TestReadHeadAfterLongPrefix(t *testing.T) {
	prefix := []byte("GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 100) + "\r\n\r\n")
	_, err := (&HeadReader{MaxHeadBytes: 64}).ReadHeadAfter(&chunkConn{}, prefix)
	var he *HeadError
	if !errors.As(err, &he) || he.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("err = %v, want 431", err)
	}
	h, err := (&HeadReader{MaxHeadBytes: 200}).ReadHeadAfter(&chunkConn{}, prefix)
	if err != nil || h.Len != len(prefix) || !bytes.Equal(h.Raw, prefix) {
		t.Errorf("within the limit: Len %d, %v", h.Len, err)
	}
}
