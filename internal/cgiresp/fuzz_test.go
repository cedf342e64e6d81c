package cgiresp

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzWriter: whatever a script prints, the Writer never panics, never
// hands net/http a status it would panic on, and gives the same response
// however the bytes are cut into writes. When the response is good, its
// body is the tail of the input.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("Content-Type: text/html\r\n\r\nhello"), uint16(3))
	f.Add([]byte("Status: 404 Not Found\nLocation: /x\n\nbody"), uint16(17))
	f.Add([]byte("Status: abc\r\n\r\n"), uint16(1))
	f.Add([]byte("Location: /a\r\n"), uint16(2))
	f.Add([]byte("X: 1\r\n\r\r\n\n"), uint16(5))
	f.Add([]byte(""), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, seed uint16) {
		whole := run([][]byte{in}, false)
		if whole.Code < 200 || whole.Code > 999 {
			t.Fatalf("status %d", whole.Code)
		}
		// Cut into pieces whose sizes come from seed, flushing or not.
		var chunks [][]byte
		rest, s := in, uint32(seed)|1
		for len(rest) > 0 {
			s = s*1103515245 + 12345
			n := min(int(s>>16)%7+1, len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		cut := run(chunks, seed&1 == 1)
		if diff := cmp.Diff(whole, cut); diff != "" {
			t.Fatalf("one write and %d writes differ (-one +many):\n%s", len(chunks), diff)
		}
		if whole.Err == "" && whole.Code != 204 && whole.Code != 304 && !bytes.HasSuffix(in, []byte(whole.Body)) {
			t.Fatalf("body %q is not the tail of the input", whole.Body)
		}
	})
}
