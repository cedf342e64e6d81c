package main

// Request bodies for PHP are read whole before PHP starts. A PHP process is
// scarce (an identity has php_max of them); a client that sends its body a
// byte at a time held one for as long as it liked, and a few such clients
// took a site down. The body is read under a deadline that grows with what
// arrives, as Apache's mod_reqtimeout does (body=20,MinRate=500): a client
// has body_timeout for its first bytes and keeps the connection as long as
// it sends body_min_rate bytes a second. Small bodies are held in memory;
// larger ones in a file in the identity's own temporary directory, removed
// as soon as it is open.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// memBody is the largest body held in memory.
const memBody = 1 << 20

// bodyLimits are how a body must arrive.
type bodyLimits struct {
	timeout time.Duration // for the first bytes, and the least the deadline ever is
	minRate int64         // bytes a second that extend the deadline
	dir     string        // where a large body is spooled; "" means os.TempDir()
}

// errSlowBody is a body that did not arrive at the minimum rate.
var errSlowBody = errors.New("request body too slow")

// readBody replaces r.Body with the whole body, read under the limits.
// It returns a function that releases what holds the body.
func (l bodyLimits) readBody(w http.ResponseWriter, r *http.Request) (release func(), err error) {
	release = func() {}
	if r.ContentLength <= 0 || r.Body == nil || r.Body == http.NoBody {
		return release, nil
	}
	rc := http.NewResponseController(w)
	start := time.Now()
	deadline := start.Add(l.timeout)
	var got int64
	var dst io.Writer
	var mem bytes.Buffer
	var file *os.File
	if r.ContentLength <= memBody {
		mem.Grow(int(r.ContentLength))
		dst = &mem
	} else {
		dir := l.dir
		if dir == "" {
			dir = os.TempDir()
		}
		if file, err = os.CreateTemp(dir, "mpmd-body-"); err != nil {
			return release, fmt.Errorf("spool the request body: %w", err)
		}
		os.Remove(file.Name()) // nobody else ever opens it
		dst = file
	}
	buf := make([]byte, 32<<10)
	for got < r.ContentLength {
		rc.SetReadDeadline(deadline)
		n, rerr := r.Body.Read(buf[:min(int64(len(buf)), r.ContentLength-got)])
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				rerr = werr
			}
			got += int64(n)
			if l.minRate > 0 {
				// What arrived buys time: the deadline is what the
				// body so far would take at the minimum rate, and never
				// less than the first timeout.
				deadline = start.Add(max(l.timeout, time.Duration(got*int64(time.Second)/l.minRate)))
			}
		}
		if rerr == io.EOF && got == r.ContentLength {
			break
		}
		if rerr != nil {
			if file != nil {
				file.Close()
			}
			// net/http may report the deadline as a cut body.
			if errors.Is(rerr, os.ErrDeadlineExceeded) || !time.Now().Before(deadline) {
				return release, fmt.Errorf("%w: %d of %d bytes in %v", errSlowBody, got, r.ContentLength, time.Since(start).Round(time.Millisecond))
			}
			return release, fmt.Errorf("read the request body (%d of %d bytes): %w", got, r.ContentLength, rerr)
		}
	}
	rc.SetReadDeadline(time.Time{})
	if file == nil {
		r.Body = io.NopCloser(bytes.NewReader(mem.Bytes()))
		return release, nil
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		file.Close()
		return release, err
	}
	r.Body = file
	return func() { file.Close() }, nil
}
