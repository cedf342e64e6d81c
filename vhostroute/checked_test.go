package vhostroute

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// scriptConn is a net.Conn whose reads return data in the given sizes
// (cycling; 0 means all that is left), then io.EOF.
type scriptConn struct {
	net.Conn
	data  []byte
	sizes []int
	i     int
}

func (s *scriptConn) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := len(s.data)
	if len(s.sizes) > 0 {
		if sz := s.sizes[s.i%len(s.sizes)]; sz > 0 && sz < n {
			n = sz
		}
		s.i++
	}
	n = copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

func refusal(he *HeadError) []byte {
	return []byte(fmt.Sprintf("REFUSED %d %s\n", RefusalStatus(he), he.Reason))
}

// readAll reads c with reads of random sizes until an error, and returns
// what it got and the error.
func readAll(c io.Reader, rnd *rand.Rand) ([]byte, error) {
	var out []byte
	for {
		buf := make([]byte, 1+rnd.IntN(64))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

const goodPipeline = "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n" +
	"POST /b HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello world" +
	"POST /c HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n" +
	"GET /d HTTP/1.0\r\n\r\n" +
	"PUT /e HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"

// Valid requests pass through byte for byte, however the reads split them.
func TestCheckedPassesValidRequests(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var hr HeadReader
	for _, sizes := range [][]int{nil, {1}, {2, 3}, {7}, {100}, {1, 50, 3}} {
		c := hr.CheckRequests(&scriptConn{data: []byte(goodPipeline), sizes: sizes}, refusal)
		got, err := readAll(c, rnd)
		if err != io.EOF || string(got) != goodPipeline {
			t.Errorf("reads of %v: %v\ngot  %q\nwant %q", sizes, err, got, goodPipeline)
		}
	}
}

// A head that breaks a rule after good requests is replaced by the
// refusal, and nothing after it is read: the rules hold for the second
// request of a connection as for the first.
func TestCheckedRefusesLaterHeads(t *testing.T) {
	first := "GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n"
	for _, c := range []struct {
		name, head string
		status     int
	}{
		{"bare LF", "GET /x HTTP/1.1\nHost: example.com\n\n", 400},
		{"obs-fold", "GET /x HTTP/1.1\r\nHost: example.com\r\nX: a\r\n b\r\n\r\n", 400},
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two CL", "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"CL list", "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4, 4\r\n\r\nabcd", 400},
		{"signed CL", "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: +4\r\n\r\nabcd", 400},
		{"TE gzip", "POST /x HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE on 1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two Hosts", "GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400},
		{"no Host", "GET /x HTTP/1.1\r\n\r\n", 400},
		{"fragment", "GET /x#y HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
		{"NUL", "GET /x HTTP/1.1\r\nHost: example.com\r\nX: a\x00b\r\n\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"huge head", "GET /x HTTP/1.1\r\nHost: example.com\r\nX: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", 431},
		{"long line", "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\n\r\n", 414},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := first + c.head + first
			var hr HeadReader
			cc := hr.CheckRequests(&scriptConn{data: []byte(data), sizes: []int{5}}, refusal)
			got, err := readAll(cc, rand.New(rand.NewPCG(3, 4)))
			if err != io.EOF || !strings.HasPrefix(string(got), first+fmt.Sprintf("REFUSED %d ", c.status)) || strings.Count(string(got), "GET /ok") != 1 {
				t.Errorf("got %v %q, want the first request, a %d refusal and EOF", err, got, c.status)
			}
		})
	}
}

// Malformed chunked framing fails the read: the reader cannot find where
// the body ends, so nothing after it may be taken for a request.
func TestCheckedBadChunks(t *testing.T) {
	head := "POST /x HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, c := range []struct{ name, body string }{
		{"bare LF size line", "5\nhello\r\n0\r\n\r\n"},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
		{"no CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n"},
		{"bad size", "zz\r\nhello\r\n"},
		{"negative size", "-5\r\nhello\r\n"},
		{"size overflow", "ffffffffffffffffff\r\n"},
		{"long size line", "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n"},
		{"bare CR", "5\rx\r\nhello\r\n"},
		{"folded trailer", "0\r\nX: a\r\n b\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hr HeadReader
			cc := hr.CheckRequests(&scriptConn{data: []byte(head + c.body + "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"), sizes: []int{3}}, refusal)
			got, err := readAll(cc, rand.New(rand.NewPCG(5, 6)))
			if !errors.Is(err, ErrBadFraming) || strings.Contains(string(got), "smuggled") {
				t.Errorf("got %v %q, want an ErrBadFraming error before the next request", err, got)
			}
		})
	}
}

// Buffered gives back what was read from the connection but not
// returned, so that a connection taken over mid-stream loses nothing.
func TestCheckedBuffered(t *testing.T) {
	var hr HeadReader
	data := "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\nGET /b HTTP/1.1\r\nHost: exa"
	cc := hr.CheckRequests(&scriptConn{data: []byte(data)}, refusal)
	buf := make([]byte, 10)
	var got []byte
	for len(got) < len("GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n") {
		n, err := cc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if rest := string(got) + string(cc.Buffered()); rest != data {
		t.Errorf("returned + buffered = %q, want %q", rest, data)
	}
}

// With net/http's server on the other end: each request of a pipeline is
// served in order, a refused one gets its status, and the connection
// closes after it.
func TestCheckedWithHTTPServer(t *testing.T) {
	srvConn, cliConn := net.Pipe()
	defer cliConn.Close()
	var hr HeadReader
	const marker = "X-Refused-For-Test"
	cc := hr.CheckRequests(srvConn, func(he *HeadError) []byte {
		return []byte(fmt.Sprintf("GET / HTTP/1.1\r\nHost: refused\r\nConnection: close\r\n%s: %d\r\n\r\n", marker, RefusalStatus(he)))
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(marker); v != "" {
			var status int
			fmt.Sscan(v, &status)
			http.Error(w, "refused", status)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(b))
	})}
	go srv.Serve(&oneConnListener{c: cc, closed: make(chan struct{})})
	defer srv.Close()
	go io.WriteString(cliConn, goodPipeline[:strings.Index(goodPipeline, "GET /d")]+"GET /bad HTTP/1.1\nHost: example.com\n\nGET /after HTTP/1.1\r\nHost: example.com\r\n\r\n")
	cliConn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(cliConn)
	var got []string
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		got = append(got, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))))
	}
	want := []string{"200 GET /a 0", "200 POST /b 11", "200 POST /c 11", "400 refused"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("responses %q, want %q", got, want)
	}
}

type oneConnListener struct {
	c      net.Conn
	done   bool
	closed chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.done {
		<-l.closed
		return nil, net.ErrClosed
	}
	l.done = true
	return l.c, nil
}
func (l *oneConnListener) Close() error   { close(l.closed); return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }

// FuzzCheckedConn: whatever the bytes and however they arrive, what the
// checker passes on is a prefix of them (or that and a refusal), and
// every request net/http's own parser reads in it ends where one the
// checker passed ends: the two never disagree on where a request ends.
// (net/http may refuse a request the checker passed, for a bad URL
// escape say: it then answers 400 and reads no further.)
func FuzzCheckedConn(f *testing.F) {
	f.Add([]byte(goodPipeline), uint8(3))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(1))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcdeGET /x HTTP/1.1\nHost: a\n\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		var hr HeadReader
		cc := hr.CheckRequests(&scriptConn{data: bytes.Clone(data), sizes: []int{int(split%17) + 1, int(split%5) + 1}}, func(*HeadError) []byte { return []byte("\x00REFUSED") })
		ends := map[int64]bool{}
		var last int64
		cc.onEnd = func(at int64) { ends[at], last = true, at }
		got, _ := readAll(cc, rand.New(rand.NewPCG(uint64(split), 9)))
		passed, _ := bytes.CutSuffix(got, []byte("\x00REFUSED"))
		if !bytes.HasPrefix(data, passed) || int64(len(passed)) != cc.passed {
			t.Fatalf("passed %d bytes (counted %d) that are not a prefix of the input:\n%q\n%q", len(passed), cc.passed, passed, data)
		}
		br := bufio.NewReader(bytes.NewReader(passed))
		for {
			// net/http's server skips up to four CR or LF bytes before a
			// request after a POST, and refuses them (400) after other
			// methods; the head reader takes two empty lines before any.
			peek, _ := br.Peek(4)
			for _, b := range peek {
				if b != '\r' && b != '\n' {
					break
				}
				br.Discard(1)
			}
			if br.Buffered() == 0 {
				if _, err := br.Peek(1); err == io.EOF {
					return
				}
			}
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			at := int64(len(passed) - br.Buffered())
			if !ends[at] {
				t.Fatalf("net/http read a request ending at %d, where the checker's do not end (last %d):\n%q", at, last, passed)
			}
		}
	})
}

// timeoutConn times out its first read after each byte it returns: a
// reader that moves its deadline and reads again (net/http aborts its
// read-ahead after every request this way) must get every byte.
type timeoutConn struct {
	net.Conn
	data    []byte
	timeout bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *timeoutConn) Read(p []byte) (int, error) {
	if c.timeout = !c.timeout; c.timeout {
		return 0, timeoutErr{}
	}
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:1], c.data)
	c.data = c.data[n:]
	return n, nil
}

func TestCheckedTimeoutsLoseNothing(t *testing.T) {
	var hr HeadReader
	cc := hr.CheckRequests(&timeoutConn{data: []byte(goodPipeline)}, refusal)
	var got []byte
	buf := make([]byte, 16)
	for range 10 * len(goodPipeline) {
		n, err := cc.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			if err != io.EOF || string(got) != goodPipeline {
				t.Errorf("got %v %q, want the pipeline and EOF", err, got)
			}
			return
		}
	}
	t.Errorf("reads keep timing out after %d bytes: %q", len(got), got)
}
