package fcgi

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzResponse: a server that answers with arbitrary bytes. Do never
// panics, succeeds exactly when the bytes are a well-formed response, and
// passes on exactly the output and error lines that came before the end or
// the fault, as a reference reader written from the specification says.
func FuzzResponse(f *testing.F) {
	f.Add(cat(rec(6, "Status: 200\r\n\r\nhi"), rec(6, ""), endRec(0, 0)))
	f.Add(cat(rec(7, "warn\r\nx"), rec(6, "a"), rec(7, "y\n"), endRec(3, 0)))
	f.Add(cat(recWith(1, 6, 1, []byte("pad"), 5), endRec(0, 2)))
	f.Add(cat(rec(6, "a"), recWith(2, 6, 1, nil, 0)))
	f.Add(cat(rec(6, "a"), recWith(1, 6, 9, nil, 0)))
	f.Add(cat(rec(6, "a"), rec(3, "1234")))
	f.Add(cat(rec(6, "a"), rec(9, "")))
	f.Add([]byte{1, 6, 0, 1, 0xff, 0xff, 0xff, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, resp []byte) {
		cli, srv := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			go io.Copy(io.Discard, srv) // the request
			srv.Write(resp)
			srv.Close()
		}()
		var lines []string
		c := &Client{
			Dial:   func(context.Context) (net.Conn, error) { return cli, nil },
			Stderr: func(line []byte) { lines = append(lines, string(line)) },
		}
		var out bytes.Buffer
		err := c.Do(context.Background(), get("/"), nil, 0, &out)
		<-served

		wantOut, wantErr, ok := referenceRead(resp)
		if ok != (err == nil) {
			t.Fatalf("Do: %v; the reference reader says well-formed: %v", err, ok)
		}
		if !bytes.Equal(out.Bytes(), wantOut) {
			t.Fatalf("out %q, want %q", out.Bytes(), wantOut)
		}
		if diff := cmp.Diff(referenceLines(wantErr), lines); diff != "" {
			t.Fatalf("stderr lines (-want +got):\n%s", diff)
		}
	})
}

// referenceRead reads a response as the specification describes it, one
// record at a time, up to FCGI_END_REQUEST or the first fault.
func referenceRead(b []byte) (stdout, stderr []byte, ok bool) {
	for {
		if len(b) < 8 || b[0] != 1 {
			return stdout, stderr, false
		}
		typ, id := b[1], binary.BigEndian.Uint16(b[2:])
		n, pad := int(binary.BigEndian.Uint16(b[4:])), int(b[6])
		if len(b) < 8+n+pad || id != 1 {
			return stdout, stderr, false
		}
		content := b[8 : 8+n]
		b = b[8+n+pad:]
		switch typ {
		case 6:
			stdout = append(stdout, content...)
		case 7:
			stderr = append(stderr, content...)
		case 3:
			return stdout, stderr, n == 8 && content[4] == 0
		default:
			return stdout, stderr, false
		}
	}
}

// referenceLines cuts an error stream as Client.Stderr documents.
func referenceLines(stream []byte) []string {
	var lines []string
	for _, line := range strings.Split(string(stream), "\n") {
		for len(line) > 0 {
			piece := line[:min(len(line), MaxStderrLine)]
			line = line[len(piece):]
			if piece = strings.TrimSuffix(piece, "\r"); piece != "" {
				lines = append(lines, piece)
			}
		}
	}
	return lines
}
