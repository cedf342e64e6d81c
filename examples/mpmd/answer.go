package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// retryAfter is the extra header of a 503 that asks the client to retry.
var retryAfter = []string{"Retry-After: 1"}

// writeAnswer writes a complete HTTP/1.1 error response to c, for a
// connection that no http.Server serves (a multiplexer's, or one a worker
// refuses before serving it), and says the connection closes: the caller
// closes it. extra are whole header lines.
func writeAnswer(c net.Conn, status int, reason string, extra []string) {
	body := fmt.Sprintf("%d %s: %s\n", status, http.StatusText(status), reason)
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n", status, http.StatusText(status), len(body))
	for _, h := range extra {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(b.String()))
}
