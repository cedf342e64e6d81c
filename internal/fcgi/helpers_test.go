package fcgi

// Test helpers: a unix socket in a temporary directory, and a fake
// FastCGI server with its own small record reader and writer, written from
// the specification rather than from the code under test.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// socketPath returns the path of a unix socket in a fresh directory.
func socketPath(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s")
	if len(p) > 100 {
		t.Fatalf("socket path too long for sun_path: %s", p)
	}
	return p
}

func listen(t testing.TB) (net.Listener, string) {
	t.Helper()
	path := socketPath(t)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func dialer(path string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}

// fakeServer serves every connection on a new unix socket with serve,
// each in its own goroutine, until the test ends.
func fakeServer(t testing.TB, serve func(net.Conn)) *Client {
	t.Helper()
	l, path := listen(t)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	// At the end, connections still open are closed under their serve
	// function, which must then return.
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &Client{Dial: dialer(path)}
}

// rawRecord is a record as the fake server sees it.
type rawRecord struct {
	version, typ byte
	id           uint16
	content      []byte
	padding      int
	padBytes     []byte
}

// readRaw reads one record.
func readRaw(r io.Reader) (rawRecord, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return rawRecord{}, err
	}
	rr := rawRecord{version: h[0], typ: h[1], id: uint16(h[2])<<8 | uint16(h[3]), padding: int(h[6])}
	body := make([]byte, int(h[4])<<8|int(h[5])+int(h[6]))
	if _, err := io.ReadFull(r, body); err != nil {
		return rawRecord{}, err
	}
	rr.content = body[:len(body)-rr.padding]
	rr.padBytes = body[len(body)-rr.padding:]
	return rr, nil
}

// request is a request as the fake server received it.
type request struct {
	records []rawRecord
	params  map[string]string
	stdin   []byte
}

// readRequest reads records up to the empty FCGI_STDIN that ends a request.
func readRequest(r io.Reader) (*request, error) {
	req := &request{}
	var params []byte
	for {
		rr, err := readRaw(r)
		if err != nil {
			return req, err
		}
		req.records = append(req.records, rr)
		switch rr.typ {
		case 4:
			params = append(params, rr.content...)
		case 5:
			if len(rr.content) == 0 {
				req.params, err = parsePairs(params)
				return req, err
			}
			req.stdin = append(req.stdin, rr.content...)
		}
	}
}

// drainRequest reads a request up to its empty FCGI_STDIN and keeps
// nothing, allocating nothing: the benchmarks' server.
func drainRequest(r io.Reader) error {
	var h [8]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return err
		}
		n := int64(h[4])<<8 | int64(h[5]) + int64(h[6])
		if _, err := io.CopyN(io.Discard, r, n); err != nil {
			return err
		}
		if h[1] == 5 && n == 0 {
			return nil
		}
	}
}

func parsePairs(b []byte) (map[string]string, error) {
	m := map[string]string{}
	size := func() (int, error) {
		if len(b) == 0 {
			return 0, errors.New("truncated pair")
		}
		if b[0] < 128 {
			n := int(b[0])
			b = b[1:]
			return n, nil
		}
		if len(b) < 4 {
			return 0, errors.New("truncated length")
		}
		n := int(binary.BigEndian.Uint32(b) &^ (1 << 31))
		b = b[4:]
		return n, nil
	}
	for len(b) > 0 {
		nl, err := size()
		if err != nil {
			return nil, err
		}
		vl, err := size()
		if err != nil {
			return nil, err
		}
		if nl+vl > len(b) {
			return nil, fmt.Errorf("pair of %d+%d bytes, %d left", nl, vl, len(b))
		}
		m[string(b[:nl])] = string(b[nl : nl+vl])
		b = b[nl+vl:]
	}
	return m, nil
}

// rec encodes a record of version 1 for request 1.
func rec(typ byte, content string) []byte { return recWith(1, typ, 1, []byte(content), 0) }

func recWith(version, typ byte, id uint16, content []byte, pad int) []byte {
	b := []byte{version, typ, byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), byte(pad), 0}
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

func endRec(app uint32, status byte) []byte {
	c := make([]byte, 8)
	binary.BigEndian.PutUint32(c, app)
	c[4] = status
	return rec(3, string(c))
}

// stdoutRecs splits s into FCGI_STDOUT records of at most n bytes.
func stdoutRecs(s string, n int) []byte {
	var b []byte
	for len(s) > 0 {
		m := min(n, len(s))
		b = append(b, rec(6, s[:m])...)
		s = s[m:]
	}
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// get is the CGI environment of a GET that net/http/fcgi accepts.
func get(uri string) map[string]string {
	return map[string]string{
		"REQUEST_METHOD":  "GET",
		"SERVER_PROTOCOL": "HTTP/1.1",
		"REQUEST_URI":     uri,
		"HTTP_HOST":       "example.test",
	}
}

// flushRecorder is a ResponseWriter over a recorder that reports each
// flush, with the body so far, on a channel.
type flushRecorder struct {
	*httptest.ResponseRecorder
	mu      sync.Mutex
	flushes chan string
}

func newFlushRecorder() *flushRecorder {
	return &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushes: make(chan string, 100)}
}

func (f *flushRecorder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ResponseRecorder.Write(p)
}

func (f *flushRecorder) Flush() {
	f.mu.Lock()
	f.ResponseRecorder.Flush()
	body := f.Body.String()
	f.mu.Unlock()
	select {
	case f.flushes <- body:
	default:
	}
}

var _ http.Flusher = (*flushRecorder)(nil)

// waitFor receives from ch or fails the test after d.
func waitFor[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}
