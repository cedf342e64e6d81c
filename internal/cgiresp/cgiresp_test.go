package cgiresp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// outcome is what a client would see of a response, and what the Writer
// reported.
type outcome struct {
	Code    int
	Header  http.Header
	Body    string
	Err     string // the first error of Write, Flush or Close
	Started bool
}

// run writes chunks to a Writer over a recorder, flushing after each one
// when flush is set, then closes it.
func run(chunks [][]byte, flush bool) outcome {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, c := range chunks {
		n, err := w.Write(c)
		if err == nil && n != len(c) {
			err = fmt.Errorf("Write returned %d of %d bytes and no error", n, len(c))
		}
		note(err)
		if flush {
			note(w.Flush())
		}
	}
	closeErr := w.Close()
	note(closeErr)
	if closeErr != w.Err() {
		note(fmt.Errorf("Close returned %v, Err %v", closeErr, w.Err()))
	}
	res := rec.Result()
	o := outcome{Code: res.StatusCode, Header: res.Header, Body: rec.Body.String(), Started: w.Started()}
	if firstErr != nil {
		o.Err = firstErr.Error()
	}
	return o
}

// splits returns the ways to cut s that the tests try: whole, at every
// byte boundary into two writes, and one byte per write.
func splits(s string) map[string][][]byte {
	b := []byte(s)
	m := map[string][][]byte{"whole": {b}}
	for i := 0; i <= len(b); i++ {
		m[fmt.Sprintf("cut at %d", i)] = [][]byte{b[:i], b[i:]}
	}
	var bytewise [][]byte
	for i := range b {
		bytewise = append(bytewise, b[i:i+1])
	}
	m["bytewise"] = bytewise
	return m
}

func TestWriter(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	page502 := hdr("Content-Type", "text/plain; charset=utf-8", "X-Content-Type-Options", "nosniff")
	tests := []struct {
		name string
		in   string
		want outcome
	}{
		{"crlf", "Content-Type: text/html\r\nX-Powered-By: PHP\r\n\r\n<p>hi</p>",
			outcome{Code: 200, Header: hdr("Content-Type", "text/html", "X-Powered-By", "PHP"), Body: "<p>hi</p>"}},
		{"bare lf", "Content-Type: text/plain\nX-A: 1\n\nbody\n",
			outcome{Code: 200, Header: hdr("Content-Type", "text/plain", "X-A", "1"), Body: "body\n"}},
		{"mixed line ends", "X-A: 1\r\nX-B: 2\n\r\nbody",
			outcome{Code: 200, Header: hdr("X-A", "1", "X-B", "2"), Body: "body"}},
		{"status", "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope",
			outcome{Code: 404, Header: hdr("Content-Type", "text/plain"), Body: "nope"}},
		{"status without reason, any case", "status: 201\r\n\r\n",
			outcome{Code: 201, Header: hdr()}},
		{"status 999", "Status: 999 Whatever\r\n\r\nx",
			outcome{Code: 999, Header: hdr(), Body: "x"}},
		{"location is a 302", "Location: /elsewhere\r\n\r\n",
			outcome{Code: 302, Header: hdr("Location", "/elsewhere")}},
		{"location with status", "Location: https://example.org/\r\nStatus: 301 Moved Permanently\r\n\r\n",
			outcome{Code: 301, Header: hdr("Location", "https://example.org/")}},
		{"repeated headers keep every value", "Set-Cookie: a=1\r\nset-cookie: b=2\r\nVary: Accept\r\n\r\n",
			outcome{Code: 200, Header: hdr("Set-Cookie", "a=1", "Set-Cookie", "b=2", "Vary", "Accept")}},
		{"values trimmed, colons kept", "X-A:   spaced out \t\r\nX-Url: http://x/\r\n\r\n",
			outcome{Code: 200, Header: hdr("X-A", "spaced out", "X-Url", "http://x/")}},
		{"empty body", "Content-Type: text/plain\r\n\r\n",
			outcome{Code: 200, Header: hdr("Content-Type", "text/plain")}},
		{"body with blank lines passes intact", "X-A: 1\n\n\r\n\r\nline\n\nStatus: 500\r\n",
			outcome{Code: 200, Header: hdr("X-A", "1"), Body: "\r\n\r\nline\n\nStatus: 500\r\n"}},
		{"no headers at all", "\r\nbody",
			outcome{Code: 200, Header: hdr(), Body: "body"}},
		{"headers without blank line", "Content-Type: text/plain\r\nX-A: 1\r\n",
			outcome{Code: 200, Header: hdr("Content-Type", "text/plain", "X-A", "1")}},
		{"headers without blank line or line end", "Status: 403\nX-A: 1",
			outcome{Code: 403, Header: hdr("X-A", "1")}},
		{"304 body dropped", "Status: 304 Not Modified\r\n\r\nstray output",
			outcome{Code: 304, Header: hdr()}},
		{"204 body dropped", "Status: 204\n\nstray",
			outcome{Code: 204, Header: hdr()}},

		{"empty", "",
			outcome{Code: 502, Header: page502, Body: "empty response from PHP\n", Err: "cgiresp: empty response"}},
		{"bad status", "Status: abc\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad Status header "abc"`}},
		{"status too short", "Status: 20\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad Status header "20"`}},
		{"status four digits", "Status: 2000 OK\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad Status header "2000 OK"`}},
		{"status below 100", "Status: 099\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad Status header "099"`}},
		{"status 1xx", "Status: 101 Switching Protocols\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad Status header "101 Switching Protocols": an interim (1xx) status cannot end a response`}},
		{"empty status", "Status:\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad Status header ""`}},
		{"two statuses", "Status: 200\r\nStatus: 404\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: two Status headers "200" and "404"`}},
		{"line without colon", "Content-Type: text/html\r\nhello world\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: header line without a colon: "hello world"`}},
		{"output without headers", "hello",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: header line without a colon: "hello"`}},
		{"folded line", "X-A: 1\r\n continued\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: header line without a colon: " continued"`}},
		{"bad name", "Bad Name: x\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad header name "Bad Name"`}},
		{"control byte in value", "X-A: a\x01b\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad value of header X-A: " a\x01b"`}},
		{"bad headers are not partly applied", "Set-Cookie: s=1\r\nStatus: x\r\n\r\n",
			outcome{Code: 502, Header: page502, Body: "bad response headers from PHP\n", Err: `cgiresp: bad Status header "x"`}},
	}
	for _, tt := range tests {
		tt.want.Started = true
		for how, chunks := range splits(tt.in) {
			for _, flush := range []bool{false, true} {
				got := run(chunks, flush)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s, %s, flush %v: (-want +got)\n%s", tt.name, how, flush, diff)
				}
			}
		}
	}
}

func TestHeaderTooLarge(t *testing.T) {
	// A block of exactly MaxHeaderBytes, its blank line included, fits.
	line := func(n int) string { return "X-Big: " + strings.Repeat("a", n-len("X-Big: \n")) + "\n" }
	fits := line(MaxHeaderBytes-1) + "\n"
	if len(fits) != MaxHeaderBytes {
		t.Fatalf("test block is %d bytes", len(fits))
	}
	for _, chunks := range [][][]byte{{[]byte(fits + "body")}, {[]byte(fits[:1000]), []byte(fits[1000:] + "body")}} {
		got := run(chunks, false)
		if got.Err != "" || got.Code != 200 || got.Body != "body" || len(got.Header.Get("X-Big")) != MaxHeaderBytes-9 {
			t.Errorf("header block of MaxHeaderBytes: code %d, err %q, body %q", got.Code, got.Err, got.Body)
		}
	}

	// One byte more does not, whether it comes in one write or many, and
	// with or without a blank line ever arriving.
	over := line(MaxHeaderBytes) + "\n"
	for name, chunks := range map[string][][]byte{
		"one write":        {[]byte(over)},
		"4 KiB writes":     chunk([]byte(over), 4096),
		"no blank line":    {[]byte(strings.Repeat("X-A: b\n", MaxHeaderBytes/7+1))},
		"one endless line": chunk(bytes.Repeat([]byte("x"), 2*MaxHeaderBytes), 1000),
	} {
		rec := httptest.NewRecorder()
		w := NewWriter(rec)
		var err error
		for _, c := range chunks {
			if _, err = w.Write(c); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrHeaderTooLarge) {
			t.Errorf("%s: Write error %v, want ErrHeaderTooLarge", name, err)
		}
		if err := w.Close(); !errors.Is(err, ErrHeaderTooLarge) {
			t.Errorf("%s: Close error %v, want ErrHeaderTooLarge", name, err)
		}
		if rec.Code != 502 || !w.Started() {
			t.Errorf("%s: code %d, started %v; want 502 and started", name, rec.Code, w.Started())
		}
		if len(w.head) != 0 {
			t.Errorf("%s: the Writer still holds %d header bytes after failing", name, len(w.head))
		}
	}
}

func chunk(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// countingRW is a ResponseWriter that counts body writes and flushes.
type countingRW struct {
	*httptest.ResponseRecorder
	writes, flushes int
	fail            error // returned by Write when set
}

func (c *countingRW) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes++
	return c.ResponseRecorder.Write(p)
}

func (c *countingRW) Flush() {
	c.flushes++
	c.ResponseRecorder.Flush()
}

func TestStreaming(t *testing.T) {
	rw := &countingRW{ResponseRecorder: httptest.NewRecorder()}
	w := NewWriter(rw)
	write := func(s string) {
		t.Helper()
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}

	// Until the blank line, nothing reaches the client, flush or not.
	write("Content-Type: text/plain\r\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.Started() || rw.flushes != 0 || rw.writes != 0 {
		t.Fatalf("before the blank line: started %v, %d writes, %d flushes", w.Started(), rw.writes, rw.flushes)
	}

	// Small pieces are held back, then leave in one write at Flush: the
	// bytes a script flushed before it sleeps reach the client then.
	write("\r\nfirst ")
	write("line\n")
	write("more\n")
	if !w.Started() || rw.Code != 200 {
		t.Fatalf("after the blank line: started %v, code %d", w.Started(), rw.Code)
	}
	if rw.writes != 0 || rw.Body.Len() != 0 {
		t.Fatalf("small writes were not held back: %d writes, body %q", rw.writes, rw.Body)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if rw.writes != 1 || rw.flushes != 1 || rw.Body.String() != "first line\nmore\n" {
		t.Fatalf("after Flush: %d writes, %d flushes, body %q; want 1, 1, all of it", rw.writes, rw.flushes, rw.Body)
	}
	// A Flush with nothing new is free.
	if err := w.Flush(); err != nil || rw.flushes != 1 {
		t.Fatalf("idle Flush: err %v, %d flushes", err, rw.flushes)
	}

	// Holding back is bounded: what does not fit pushes the held bytes
	// out, and a write of bufSize or more is not copied at all.
	small := strings.Repeat("s", bufSize/2+1)
	write(small)
	write(small) // does not fit beside the first
	if rw.writes != 2 {
		t.Fatalf("two writes of half the buffer: %d writes to the client, want 2 (the first pushed out)", rw.writes)
	}
	big := strings.Repeat("b", bufSize)
	write(big)
	if rw.writes != 4 {
		t.Fatalf("a write of bufSize: %d writes to the client, want 4", rw.writes)
	}
	write("tail")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "first line\nmore\n" + small + small + big + "tail"
	if rw.Body.String() != want {
		t.Fatalf("body: %d bytes, want %d", rw.Body.Len(), len(want))
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The header block alone, once complete, reaches the client at Flush.
func TestFlushHeaders(t *testing.T) {
	rw := &countingRW{ResponseRecorder: httptest.NewRecorder()}
	w := NewWriter(rw)
	w.Write([]byte("Status: 202\r\n\r\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if rw.flushes != 1 || !rw.Flushed || rw.Code != 202 {
		t.Errorf("headers alone: %d flushes, code %d", rw.flushes, rw.Code)
	}
}

func TestClientGone(t *testing.T) {
	gone := errors.New("client gone")
	rw := &countingRW{ResponseRecorder: httptest.NewRecorder(), fail: gone}
	w := NewWriter(rw)
	if _, err := w.Write([]byte("X-A: 1\n\nbody")); err != nil {
		t.Fatalf("a held-back write failed: %v", err)
	}
	err := w.Flush()
	if !errors.Is(err, gone) || !strings.Contains(err.Error(), "cgiresp: writing the body") {
		t.Fatalf("Flush: %v, want the client's error wrapped", err)
	}
	if !w.Started() || rw.Code != 200 {
		t.Errorf("started %v, code %d; want true, the script's 200", w.Started(), rw.Code)
	}
	if w.Err() != err {
		t.Errorf("Err: %v, want %v", w.Err(), err)
	}
	if _, err2 := w.Write([]byte("more")); err2 != err {
		t.Errorf("Write after the failure: %v, want the first error", err2)
	}
	if err2 := w.Close(); err2 != err {
		t.Errorf("Close after the failure: %v, want the first error", err2)
	}
}

// A Writer that never completes its header block has sent nothing: the
// caller can still answer (a transport failure before the blank line).
func TestNotStarted(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	w.Write([]byte("Content-Type: text/html\r\nX-A"))
	if w.Started() || w.Err() != nil {
		t.Fatalf("before the header block ended: started %v, err %v", w.Started(), w.Err())
	}
	http.Error(rec, "the caller's own page", http.StatusServiceUnavailable)
	if rec.Code != 503 {
		t.Fatalf("code %d", rec.Code)
	}
}

// Body writes in the steady state allocate nothing.
func TestWriteAllocs(t *testing.T) {
	w := NewWriter(httptest.NewRecorder())
	w.Write([]byte("X-A: 1\r\n\r\n"))
	rw := &discardRW{h: http.Header{}}
	w.rw, w.rc = rw, http.NewResponseController(rw)
	p := make([]byte, 8<<10)
	allocs := testing.AllocsPerRun(1000, func() {
		w.Write(p)
		w.Write(p)
		w.Flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per body write and flush, want 0", allocs)
	}
}

type discardRW struct{ h http.Header }

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardRW) WriteHeader(int)             {}
func (d *discardRW) Flush()                      {}

func BenchmarkWriter(b *testing.B) {
	head := []byte("Content-Type: text/html; charset=UTF-8\r\nX-Powered-By: PHP/8.2\r\nSet-Cookie: a=1\r\n\r\n")
	piece := make([]byte, 4096)
	b.SetBytes(int64(len(head) + 64*len(piece)))
	b.ReportAllocs()
	rw := &discardRW{h: http.Header{}}
	for b.Loop() {
		clear(rw.h)
		w := NewWriter(rw)
		w.Write(head)
		for i := range 64 {
			w.Write(piece)
			if i%8 == 7 {
				w.Flush()
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
