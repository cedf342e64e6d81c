package fcgi

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gompm/mpm/internal/cgiresp"
)

// discardRW is a ResponseWriter that keeps nothing, as cheap as a client
// can be.
type discardRW struct{ h http.Header }

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardRW) WriteHeader(int)             {}
func (d *discardRW) Flush()                      {}

// BenchmarkDo runs requests against a fake server on a unix socket that
// answers with canned records, through cgiresp as the daemon does. The
// server's side (reading the request, one write of the response) is
// included.
func BenchmarkDo(b *testing.B) {
	head := "Content-Type: text/html; charset=UTF-8\r\nX-Powered-By: PHP/8.2\r\n\r\n"
	for _, bc := range []struct {
		name   string
		body   int // request body
		size   int // response body
		record int // STDOUT record size
	}{
		{"GET 1KiB", 0, 1 << 10, 8 << 10},
		{"GET 1MiB in 8KiB records", 0, 1 << 20, 8 << 10},
		{"GET 1MiB in 64KiB records", 0, 1 << 20, maxWrite},
		{"POST 1MiB, 1KiB back", 1 << 20, 1 << 10, 8 << 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			resp := cat(stdoutRecs(head+strings.Repeat("x", bc.size), bc.record), rec(6, ""), endRec(0, 0))
			c := fakeServer(b, func(conn net.Conn) {
				if err := drainRequest(conn); err != nil {
					b.Error(err)
				}
				conn.Write(resp)
			})
			params := get("/index.php")
			params["SCRIPT_FILENAME"] = "/srv/www/index.php"
			body := bytes.NewReader(make([]byte, bc.body))
			rw := &discardRW{h: http.Header{}}
			b.SetBytes(int64(bc.body + bc.size))
			b.ReportAllocs()
			for b.Loop() {
				clear(rw.h)
				body.Seek(0, 0)
				w := cgiresp.NewWriter(rw)
				if err := c.Do(context.Background(), params, body, int64(bc.body), w); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadRecord is the record reader alone: the per-record cost of
// the response path.
func BenchmarkReadRecord(b *testing.B) {
	stream := bytes.Repeat(rec(6, strings.Repeat("x", 8192)), 128)
	r := bytes.NewReader(stream)
	var rc record
	b.SetBytes(8192)
	b.ReportAllocs()
	for b.Loop() {
		if r.Len() == 0 {
			r.Reset(stream)
		}
		if err := rc.read(r); err != nil {
			b.Fatal(err)
		}
	}
}
