// Command fcgiget sends one GET request to each of a list of FastCGI
// responders (php-fpm pools) in turn, with internal/fcgi's Client, and
// checks each answer's body: bench/extra.sh uses it to send one
// hello.php request to each of the reference php-fpm's per-user pools
// before it sums their memory.
//
//	fcgiget -expect hello SOCKET=SCRIPT_FILENAME ...
//
// It prints one line per request, "SOCKET ok MS" or "SOCKET FAIL: why",
// and exits 1 if any failed.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gompm/mpm/internal/fcgi"
)

func main() {
	expect := flag.String("expect", "", "the body every script must answer (after the CGI headers)")
	timeout := flag.Duration("timeout", 10*time.Second, "time for one request")
	flag.Parse()
	failed := 0
	for _, arg := range flag.Args() {
		sock, script, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "fcgiget: %q is not SOCKET=SCRIPT_FILENAME\n", arg)
			os.Exit(2)
		}
		t0 := time.Now()
		body, err := get(sock, script, *timeout)
		switch {
		case err != nil:
			fmt.Printf("%s FAIL: %v\n", sock, err)
			failed++
		case *expect != "" && body != *expect:
			fmt.Printf("%s FAIL: body %q, want %q\n", sock, body, *expect)
			failed++
		default:
			fmt.Printf("%s ok %.2f\n", sock, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// get runs script through the pool at sock and returns the response body
// (what follows the CGI header block).
func get(sock, script string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := &fcgi.Client{Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	name := "/" + filepath.Base(script)
	params := map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"REQUEST_METHOD":    "GET",
		"REQUEST_URI":       name,
		"SCRIPT_NAME":       name,
		"SCRIPT_FILENAME":   script,
		"DOCUMENT_ROOT":     filepath.Dir(script),
		"QUERY_STRING":      "",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"SERVER_NAME":       "localhost",
		"SERVER_PORT":       "80",
		"REMOTE_ADDR":       "127.0.0.1",
		"REDIRECT_STATUS":   "200",
	}
	var out bytes.Buffer
	if err := c.Do(ctx, params, nil, 0, &out); err != nil {
		return "", err
	}
	resp := out.Bytes()
	if i := bytes.Index(resp, []byte("\r\n\r\n")); i >= 0 {
		resp = resp[i+4:]
	} else if i := bytes.Index(resp, []byte("\n\n")); i >= 0 {
		resp = resp[i+2:]
	}
	return string(resp), nil
}
