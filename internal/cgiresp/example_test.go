package cgiresp_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/gompm/mpm/internal/cgiresp"
)

// A CGI response, arriving in pieces that cut its header block anywhere,
// becomes an HTTP response.
func ExampleWriter() {
	rec := httptest.NewRecorder()
	w := cgiresp.NewWriter(rec)

	script := "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such page\n"
	for _, piece := range []string{script[:30], script[30:52], script[52:]} {
		io.Copy(w, strings.NewReader(piece))
		w.Flush() // nothing more at hand: what the script sent goes out now
	}
	if err := w.Close(); err != nil {
		fmt.Println("error:", err)
	}
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body)

	// A Writer that fails before the client was sent anything leaves the
	// answer to the caller; here, it answered itself.
	rec = httptest.NewRecorder()
	w = cgiresp.NewWriter(rec)
	w.Write([]byte("Status: abc\r\n\r\n"))
	err := w.Close()
	fmt.Println(rec.Code, w.Started(), err)
	// Output:
	// 404 text/plain
	// no such page
	// 502 true cgiresp: bad Status header "abc"
}
