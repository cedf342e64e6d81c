package fcgi_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gompm/mpm/internal/cgiresp"
	ifcgi "github.com/gompm/mpm/internal/fcgi"
)

// A request to a FastCGI application (here the standard library's, in
// place of php-fpm), its CGI response turned into an HTTP response.
func ExampleClient_Do() {
	dir, _ := os.MkdirTemp("", "fcgi-example")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "php.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go fcgi.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s as %s\n", r.Method, r.URL, fcgi.ProcessEnv(r)["SCRIPT_FILENAME"])
	}))

	c := &ifcgi.Client{
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		Stderr: func(line []byte) { log.Printf("php: %s", line) },
	}
	env := map[string]string{
		"REQUEST_METHOD":  "GET",
		"REQUEST_URI":     "/hello.php?name=gopher",
		"SERVER_PROTOCOL": "HTTP/1.1",
		"SCRIPT_FILENAME": "/srv/www/hello.php",
	}
	rec := httptest.NewRecorder()
	w := cgiresp.NewWriter(rec)
	err = c.Do(context.Background(), env, nil, 0, w)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body)
	// Output:
	// 200 text/plain
	// GET /hello.php?name=gopher as /srv/www/hello.php
}

// How a web server's handler uses a Client: the CGI response goes through
// a cgiresp.Writer, a request that never reached PHP is retried once, and
// an error page is sent only while the client has been sent nothing.
func Example_handler() {
	php := &ifcgi.Client{Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", "/run/php/www.sock")
	}}
	handler := func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{
			"REQUEST_METHOD":  r.Method,
			"REQUEST_URI":     r.URL.RequestURI(),
			"QUERY_STRING":    r.URL.RawQuery,
			"SERVER_PROTOCOL": r.Proto,
			"SCRIPT_FILENAME": "/srv/www" + r.URL.Path,
		}
		if r.ContentLength < 0 {
			// FastCGI needs the length of the body up front.
			http.Error(w, "length required", http.StatusLengthRequired)
			return
		}
		if r.ContentLength > 0 {
			env["CONTENT_LENGTH"] = strconv.FormatInt(r.ContentLength, 10)
			env["CONTENT_TYPE"] = r.Header.Get("Content-Type")
		}
		cw := cgiresp.NewWriter(w)
		err := php.Do(r.Context(), env, r.Body, r.ContentLength, cw)
		if errors.Is(err, ifcgi.ErrNotSent) && r.Context().Err() == nil {
			err = php.Do(r.Context(), env, r.Body, r.ContentLength, cw) // PHP never saw the first one
		}
		if err == nil {
			err = cw.Close()
		}
		if err != nil {
			log.Printf("%s: %v", r.URL.Path, err)
			switch {
			case !cw.Started():
				http.Error(w, "PHP failed", http.StatusBadGateway)
			case cw.Err() == nil:
				// The response is under way and cut short: make the
				// client see that rather than a complete-looking one.
				panic(http.ErrAbortHandler)
			}
			// Otherwise cgiresp answered a bad response with its own
			// 502, or the client is gone.
		}
	}
	http.Handle("/", http.HandlerFunc(handler))
}
