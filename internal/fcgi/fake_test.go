package fcgi

// Tests against a hand-written fake server: what net/http/fcgi never sends
// (stderr, refusals, malformed records) and failures at chosen moments.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gompm/mpm/internal/cgiresp"
)

// The records that open a request, as the server receives them.
func TestRequestRecords(t *testing.T) {
	got := make(chan *request, 1)
	c := fakeServer(t, func(conn net.Conn) {
		req, err := readRequest(conn)
		if err != nil {
			t.Errorf("fake server: %v", err)
		}
		got <- req
		conn.Write(endRec(0, 0))
	})
	// A first request fills the pooled buffers with 0xff bytes, which must
	// not leak into the padding of the next.
	ff := bytes.Repeat([]byte{0xff}, 3*maxWrite)
	if err := c.Do(context.Background(), map[string]string{"FF": string(ff)}, bytes.NewReader(ff), int64(len(ff)), io.Discard); err != nil {
		t.Fatal(err)
	}
	<-got
	params := map[string]string{"A": "1", "LONG": strings.Repeat("x", 70000)}
	if err := c.Do(context.Background(), params, strings.NewReader("body"), 4, io.Discard); err != nil {
		t.Fatal(err)
	}
	req := <-got
	if diff := cmp.Diff(params, req.params); diff != "" {
		t.Errorf("params (-sent +received):\n%s", diff)
	}
	if string(req.stdin) != "body" {
		t.Errorf("stdin %q", req.stdin)
	}
	var types []byte
	for _, r := range req.records {
		types = append(types, r.typ)
		if r.version != 1 || r.id != 1 {
			t.Errorf("record of version %d, id %d", r.version, r.id)
		}
		if len(r.content) > maxWrite || (len(r.content)+r.padding)%8 != 0 || r.padding > 7 {
			t.Errorf("record of %d bytes padded by %d", len(r.content), r.padding)
		}
		if bytes.ContainsFunc(r.padBytes, func(r rune) bool { return r != 0 }) {
			t.Errorf("type %d record padded with % x", r.typ, r.padBytes)
		}
	}
	// BEGIN_REQUEST, params in two records and the empty one, the body,
	// the empty STDIN.
	if want := []byte{1, 4, 4, 4, 5, 5}; !bytes.Equal(types, want) {
		t.Errorf("record types %v, want %v", types, want)
	}
	if begin := req.records[0].content; !bytes.Equal(begin, []byte{0, 1, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("FCGI_BEGIN_REQUEST body % x: want the responder role, no FCGI_KEEP_CONN", begin)
	}
}

func TestStderr(t *testing.T) {
	long := strings.Repeat("L", 2*MaxStderrLine+100)
	c := fakeServer(t, func(conn net.Conn) {
		readRequest(conn)
		conn.Write(cat(
			rec(7, "PHP Warning: a\nPHP Notice: b"),
			rec(6, "Content-Type: text/plain\r\n\r\n"),
			rec(7, "c continued\r\n\n\n"+long[:1000]),
			rec(7, long[1000:]+"\n"),
			rec(7, ""),
			rec(6, "hello"),
			rec(7, "last, without a line end"),
			endRec(0, 0),
		))
	})
	var lines []string
	c.Stderr = func(line []byte) { lines = append(lines, string(line)) }
	var out bytes.Buffer
	if err := c.Do(context.Background(), nil, nil, 0, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PHP Warning: a",
		"PHP Notice: bc continued",
		long[:MaxStderrLine],
		long[MaxStderrLine : 2*MaxStderrLine],
		long[2*MaxStderrLine:],
		"last, without a line end",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("stderr lines (-want +got):\n%.1000s", diff)
	}
	if out.String() != "Content-Type: text/plain\r\n\r\nhello" {
		t.Errorf("stdout %q", out.String())
	}

	// Without a Stderr function the stream is dropped.
	c.Stderr = nil
	out.Reset()
	if err := c.Do(context.Background(), nil, nil, 0, &out); err != nil || !strings.HasSuffix(out.String(), "hello") {
		t.Errorf("without Stderr: %v, %q", err, out.String())
	}
}

func TestNotSent(t *testing.T) {
	t.Run("dial fails", func(t *testing.T) {
		refused := &Client{Dial: dialer(socketPath(t))} // nothing listens there
		err := refused.Do(context.Background(), get("/"), nil, 0, io.Discard)
		if !errors.Is(err, ErrNotSent) || !errors.Is(err, syscall.ENOENT) {
			t.Errorf("Do: %v; want ErrNotSent and the dial's error", err)
		}
		dialErr := errors.New("pool is down")
		c := &Client{Dial: func(context.Context) (net.Conn, error) { return nil, dialErr }}
		err = c.Do(context.Background(), get("/"), strings.NewReader("body"), 4, io.Discard)
		if !errors.Is(err, ErrNotSent) || !errors.Is(err, dialErr) {
			t.Errorf("Do: %v; want ErrNotSent and the dial's error", err)
		}
	})

	t.Run("closed at accept", func(t *testing.T) {
		// The server closes each connection as it accepts it, reading
		// nothing; the dial returns only once it has, so the first write
		// meets a closed peer.
		l, path := listen(t)
		closed := make(chan struct{}, 1)
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Close()
				closed <- struct{}{}
			}
		}()
		c := &Client{Dial: func(ctx context.Context) (net.Conn, error) {
			conn, err := dialer(path)(ctx)
			if err == nil {
				<-closed
			}
			return conn, err
		}}
		for _, body := range []string{"", "a body"} {
			err := c.Do(context.Background(), get("/"), strings.NewReader(body), int64(len(body)), io.Discard)
			if !errors.Is(err, ErrNotSent) || !errors.Is(err, syscall.EPIPE) {
				t.Errorf("body %q: Do: %v; want ErrNotSent and EPIPE", body, err)
			}
		}
	})

	// Once the server has the request, nothing is ErrNotSent: the script
	// may have run.
	for name, serve := range map[string]func(net.Conn){
		"server dies after reading the request": func(conn net.Conn) {
			readRequest(conn)
		},
		"server dies after reading 3 bytes": func(conn net.Conn) {
			io.ReadFull(conn, make([]byte, 3))
		},
		"server dies after part of the response": func(conn net.Conn) {
			readRequest(conn)
			conn.Write(rec(6, "Status: 200\r\n"))
		},
		"server dies having read the head of a POST": func(conn net.Conn) {
			for {
				r, err := readRaw(conn)
				if err != nil || r.typ == 4 && len(r.content) == 0 {
					return
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := fakeServer(t, serve)
			for _, n := range []int{0, 100, 1 << 20} {
				err := c.Do(context.Background(), get("/"), bytes.NewReader(make([]byte, n)), int64(n), io.Discard)
				if err == nil || errors.Is(err, ErrNotSent) {
					t.Errorf("body of %d bytes: Do: %v; want an error that is not ErrNotSent", n, err)
				}
			}
		})
	}
}

func TestServerMessages(t *testing.T) {
	head := rec(6, "Status: 200\r\n\r\n")
	tests := []struct {
		name     string
		response []byte
		wantOut  string
		wantErr  string // "" for success
		wantEnd  *EndRequestError
	}{
		{"complete", cat(head, rec(6, "hi"), rec(6, ""), endRec(0, 0)), "Status: 200\r\n\r\nhi", "", nil},
		{"app status is not an error", cat(head, endRec(255, 0)), "Status: 200\r\n\r\n", "", nil},
		{"largest record", cat(recWith(1, 6, 1, bytes.Repeat([]byte("x"), maxWrite), maxPad), endRec(0, 0)), strings.Repeat("x", maxWrite), "", nil},
		{"bytes after the end are ignored", cat(endRec(0, 0), []byte("garbage")), "", "", nil},
		{"padding is skipped", cat(recWith(1, 6, 1, []byte("ab"), 200), recWith(1, 7, 1, []byte("e\n"), 3), recWith(1, 3, 1, make([]byte, 8), 9)), "ab", "", nil},

		{"bad version", cat(head, recWith(2, 6, 1, []byte("x"), 0)), "Status: 200\r\n\r\n",
			"fcgi: record of version 2, want 1 (header 02 06 00 01 00 01 00 00)", nil},
		{"another request id", cat(head, recWith(1, 6, 2, []byte("x"), 0)), "Status: 200\r\n\r\n",
			"fcgi: FCGI_STDOUT record for request 2, want 1", nil},
		{"management record", recWith(1, 11, 0, make([]byte, 8), 0), "",
			"fcgi: FCGI_UNKNOWN_TYPE record for request 0, want 1", nil},
		{"STDIN from the server", rec(5, "x"), "", "fcgi: unexpected FCGI_STDIN record from the server", nil},
		{"BEGIN_REQUEST from the server", rec(1, "12345678"), "", "fcgi: unexpected FCGI_BEGIN_REQUEST record from the server", nil},
		{"unknown type", rec(42, ""), "", "fcgi: unexpected type 42 record from the server", nil},
		{"short END_REQUEST", cat(head, rec(3, "12345")), "Status: 200\r\n\r\n", "fcgi: FCGI_END_REQUEST record of 5 bytes, want 8", nil},
		{"huge END_REQUEST", rec(3, strings.Repeat("e", maxWrite)), "", "fcgi: FCGI_END_REQUEST record of 65535 bytes, want 8", nil},
		{"overloaded", endRec(7, 2), "",
			"fcgi: the server ended the request with FCGI_OVERLOADED (app status 7)", &EndRequestError{7, StatusOverloaded}},
		{"cannot multiplex", endRec(0, 1), "",
			"fcgi: the server ended the request with FCGI_CANT_MPX_CONN (app status 0)", &EndRequestError{0, StatusCantMultiplex}},
		{"unknown role", endRec(0, 3), "",
			"fcgi: the server ended the request with FCGI_UNKNOWN_ROLE (app status 0)", &EndRequestError{0, StatusUnknownRole}},
		{"undefined status", endRec(1, 9), "",
			"fcgi: the server ended the request with protocol status 9 (app status 1)", &EndRequestError{1, 9}},
		{"nothing", nil, "", "fcgi: connection closed before FCGI_END_REQUEST: unexpected EOF", nil},
		{"no END_REQUEST", cat(head, rec(6, "body")), "Status: 200\r\n\r\nbody",
			"fcgi: connection closed before FCGI_END_REQUEST: unexpected EOF", nil},
		{"cut in a header", cat(head, []byte{1, 6, 0}), "Status: 200\r\n\r\n",
			"fcgi: reading a record header: unexpected EOF", nil},
		{"cut in a body", cat(head, rec(6, strings.Repeat("x", 100))[:50]), "Status: 200\r\n\r\n",
			"fcgi: reading a FCGI_STDOUT record of 100 bytes: unexpected EOF", nil},
		{"cut in the padding", cat(head, recWith(1, 6, 1, []byte("x"), 7)[:12]), "Status: 200\r\n\r\n",
			"fcgi: reading a FCGI_STDOUT record of 8 bytes: unexpected EOF", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeServer(t, func(conn net.Conn) {
				readRequest(conn)
				conn.Write(tt.response)
			})
			var out bytes.Buffer
			err := c.Do(context.Background(), get("/"), nil, 0, &out)
			if out.String() != tt.wantOut {
				t.Errorf("out %.100q, want %.100q", out.String(), tt.wantOut)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Do: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Do: %v\nwant %s", err, tt.wantErr)
			}
			if errors.Is(err, ErrNotSent) {
				t.Errorf("Do: %v wraps ErrNotSent after the request was sent", err)
			}
			var end *EndRequestError
			if errors.As(err, &end) != (tt.wantEnd != nil) || tt.wantEnd != nil && *end != *tt.wantEnd {
				t.Errorf("Do: %#v, want *EndRequestError %v", err, tt.wantEnd)
			}
		})
	}
}

// A bad CGI response ends the request at the header block: cgiresp
// answers it with a 502 of its own, and says so.
func TestBadCGIResponse(t *testing.T) {
	c := fakeServer(t, func(conn net.Conn) {
		readRequest(conn)
		conn.Write(cat(rec(6, "Status: abc\r\n\r\nbody"), endRec(0, 0)))
	})
	rec := httptest.NewRecorder()
	cw := cgiresp.NewWriter(rec)
	err := c.Do(context.Background(), get("/"), nil, 0, cw)
	if err == nil || err.Error() != `fcgi: writing the response: cgiresp: bad Status header "abc"` || errors.Is(err, ErrNotSent) {
		t.Errorf("Do: %v", err)
	}
	if rec.Code != 502 || !cw.Started() || cw.Err() == nil {
		t.Errorf("code %d, started %v, Err %v; want cgiresp's 502", rec.Code, cw.Started(), cw.Err())
	}
}

// A server that sends its whole response and closes without reading the
// body: the response counts, the unsent body does not.
func TestServerSkipsBody(t *testing.T) {
	c := fakeServer(t, func(conn net.Conn) {
		for {
			r, err := readRaw(conn)
			if err != nil || r.typ == 4 && len(r.content) == 0 {
				break
			}
		}
		conn.Write(cat(rec(6, "Status: 413\r\n\r\n"), endRec(0, 0)))
	})
	var out bytes.Buffer
	body := bytes.NewReader(make([]byte, 8<<20))
	if err := c.Do(context.Background(), get("/"), body, body.Size(), &out); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if out.String() != "Status: 413\r\n\r\n" {
		t.Errorf("out %q", out.String())
	}
}

// flushCounter counts writes and flushes, and what was written between.
type flushCounter struct {
	writes, flushes int
	unflushed       int
	ch              chan int // the bytes written, at each flush
}

func (f *flushCounter) Write(p []byte) (int, error) {
	f.writes++
	f.unflushed += len(p)
	return len(p), nil
}

func (f *flushCounter) Flush() error {
	f.flushes++
	if f.ch != nil {
		f.ch <- f.unflushed
	}
	f.unflushed = 0
	return nil
}

// Do flushes out when the next record has not arrived, not after every
// record: a burst that arrives together is one flush.
func TestFlushPolicy(t *testing.T) {
	step := make(chan struct{})
	c := fakeServer(t, func(conn net.Conn) {
		readRequest(conn)
		// A burst of 8 records in one write.
		conn.Write(bytes.Repeat(rec(6, "burst\n"), 8))
		wait := func() bool {
			select {
			case <-step:
				return true
			case <-t.Context().Done():
				return false
			}
		}
		if !wait() {
			return
		}
		// A record that arrives in two pieces: what came before it must
		// not wait for its end.
		r := cat(rec(6, "x"), rec(6, "split record"))
		conn.Write(r[:len(r)-3])
		if !wait() {
			return
		}
		conn.Write(cat(r[len(r)-3:], endRec(0, 0)))
	})
	out := &flushCounter{ch: make(chan int, 10)}
	done := make(chan error, 1)
	go func() { done <- c.Do(context.Background(), get("/"), nil, 0, out) }()
	if n := waitFor(t, out.ch, 5*time.Second, "the burst"); n != 8*6 {
		t.Errorf("first flush after %d bytes, want the whole burst of %d", n, 8*6)
	}
	step <- struct{}{}
	if n := waitFor(t, out.ch, 5*time.Second, "the record before the split one"); n != 1 {
		t.Errorf("second flush after %d bytes, want 1", n)
	}
	step <- struct{}{}
	if n := waitFor(t, out.ch, 5*time.Second, "the split record"); n != len("split record") {
		t.Errorf("third flush after %d bytes", n)
	}
	if err := waitFor(t, done, 5*time.Second, "Do"); err != nil {
		t.Fatal(err)
	}
	if out.flushes != 3 || out.writes != 10 {
		t.Errorf("%d writes, %d flushes; want 10, 3", out.writes, out.flushes)
	}
}

// The response path allocates nothing per record: a response of a
// thousand records costs what one of ten does.
func TestAllocsPerRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over many requests")
	}
	response := func(n int) []byte {
		var b []byte
		b = append(b, rec(6, "Content-Type: text/html\r\n\r\n")...)
		for i := range n {
			b = append(b, rec(6, strings.Repeat("x", 4000))...)
			if i%10 == 0 {
				b = append(b, rec(7, "PHP Notice: something\n")...)
			}
		}
		return append(b, endRec(0, 0)...)
	}
	measure := func(n int) float64 {
		resp := response(n)
		c := fakeServer(t, func(conn net.Conn) {
			readRequest(conn)
			conn.Write(resp)
		})
		c.Stderr = func([]byte) {}
		out := &flushCounter{}
		return testing.AllocsPerRun(50, func() {
			if err := c.Do(context.Background(), nil, nil, 0, out); err != nil {
				t.Fatal(err)
			}
		})
	}
	few, many := measure(10), measure(1000)
	t.Logf("allocations per request: %v with 10 records, %v with 1000", few, many)
	if many-few > 20 {
		t.Errorf("990 more records cost %v more allocations", many-few)
	}
}
