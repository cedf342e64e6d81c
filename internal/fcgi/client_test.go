package fcgi

// Tests against the standard library's FastCGI application side,
// net/http/fcgi.Serve, on a unix socket.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/fcgi"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gompm/mpm/internal/cgiresp"
)

// serveFCGI runs net/http/fcgi.Serve with h and returns a Client for it.
func serveFCGI(t testing.TB, h http.Handler) *Client {
	t.Helper()
	l, path := listen(t)
	done := make(chan struct{})
	go func() { fcgi.Serve(l, h); close(done) }()
	t.Cleanup(func() { l.Close(); <-done })
	return &Client{Dial: dialer(path)}
}

// do runs a request through c into a cgiresp.Writer over a recorder, as
// the daemon does, and returns the recorder.
func do(t testing.TB, c *Client, ctx context.Context, params map[string]string, body []byte) (*httptest.ResponseRecorder, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	w := cgiresp.NewWriter(rec)
	err := c.Do(ctx, params, bytes.NewReader(body), int64(len(body)), w)
	if err == nil {
		err = w.Close()
	}
	return rec, err
}

func TestParams(t *testing.T) {
	type seen struct {
		Method, Query, Host, Path string
		Env                       map[string]string
	}
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(seen{r.Method, r.URL.RawQuery, r.Host, r.URL.Path, fcgi.ProcessEnv(r)})
	}))
	// Without REQUEST_URI, net/http/fcgi builds the URL from SCRIPT_NAME
	// and QUERY_STRING, so the handler sees what those two carried.
	params := get("")
	delete(params, "REQUEST_URI")
	params["SCRIPT_NAME"] = "/index.php"
	params["QUERY_STRING"] = "a=1&b=%20two"
	custom := map[string]string{
		"SCRIPT_FILENAME":                "/srv/www/index.php",
		"EMPTY":                          "",
		"UTF8":                           "héllo wörld",
		"LONG_VALUE":                     strings.Repeat("v", 200),    // 4-byte length
		"N" + strings.Repeat("A", 130):   "long name",                 // 4-byte name length
		"HUGE":                           strings.Repeat("h", 100000), // the params span records
		strings.Repeat("B", 127):         strings.Repeat("b", 127),    // the largest 1-byte lengths
		"BINARY":                         "nul\x00 newline\n tab\t",
		"REDIRECT_STATUS":                "200",
		"PHP_ADMIN_VALUE":                "memory_limit=77M\nopen_basedir=/srv",
		"SOME_VARIABLE_WITH_A_LONG_NAME": strings.Repeat("x", 65535),
	}
	for k, v := range custom {
		params[k] = v
	}
	rec, err := do(t, c, context.Background(), params, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got seen
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %.200q", err, rec.Body)
	}
	want := seen{Method: "GET", Query: "a=1&b=%20two", Host: "example.test", Path: "/index.php", Env: custom}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what the handler saw (-want +got):\n%.2000s", diff)
	}
}

func TestPostBody(t *testing.T) {
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%s %d %x %v", r.Method, n, h.Sum(nil), err)
	}))
	for _, size := range []int{1, maxWrite, maxWrite + 1, 1 << 20} {
		body := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(size)}).Read(body)
		params := get("/upload.php")
		params["REQUEST_METHOD"] = "POST"
		params["CONTENT_LENGTH"] = strconv.Itoa(size)
		rec, err := do(t, c, context.Background(), params, body)
		if err != nil {
			t.Fatalf("POST of %d bytes: %v", size, err)
		}
		want := fmt.Sprintf("POST %d %x <nil>", size, sha256.Sum256(body))
		if rec.Body.String() != want {
			t.Errorf("POST of %d bytes: the handler says %q, want %q", size, rec.Body, want)
		}
	}
}

// A handler that writes its whole response before it reads its body: with
// the body sent from the reading goroutine, the two would wait for each
// other forever once the socket buffers fill.
func TestWriteBeforeRead(t *testing.T) {
	const size = 4 << 20
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("o"), size))
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "|%d %v", n, err)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	params := get("/")
	params["REQUEST_METHOD"] = "PUT"
	params["CONTENT_LENGTH"] = strconv.Itoa(size)
	rec, err := do(t, c, ctx, params, make([]byte, size))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("|%d <nil>", size); rec.Body.Len() != size+len(want) || !strings.HasSuffix(rec.Body.String(), want) {
		t.Errorf("body of %d bytes ending %q", rec.Body.Len(), rec.Body.String()[max(0, rec.Body.Len()-20):])
	}
}

// countWriter counts what it is given and notes the largest single write.
type countWriter struct {
	n        int
	maxWrite int
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	w.maxWrite = max(w.maxWrite, len(p))
	return len(p), nil
}

// A response of 5 MiB streams through: every record is passed on as it
// comes, and the memory the request uses does not grow with the response.
func TestLargeResponse(t *testing.T) {
	const size = 5 << 20
	pattern := make([]byte, size)
	rand.NewChaCha8([32]byte{5}).Read(pattern)
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for p := pattern; len(p) > 0; p = p[min(len(p), 8192):] {
			w.Write(p[:min(len(p), 8192)])
		}
	}))
	// Warm the pools, so that what is measured is the steady state.
	if err := c.Do(context.Background(), get("/"), nil, 0, io.Discard); err != nil {
		t.Fatal(err)
	}

	out := &countWriter{}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := c.Do(context.Background(), get("/"), nil, 0, out)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	// out got the CGI response: net/http/fcgi's header block, then the body.
	if out.n < size || out.maxWrite > maxWrite {
		t.Errorf("out got %d bytes, the largest write %d; want at least %d, at most %d a write", out.n, out.maxWrite, size, maxWrite)
	}
	// Both ends run in this process: the bound covers the server too.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d-byte response: %d bytes allocated, both ends", size, alloc)
	if alloc > 1<<20 {
		t.Errorf("a %d-byte response allocated %d bytes; it should stream", size, alloc)
	}

	// And the bytes are the handler's, through cgiresp.
	rec := httptest.NewRecorder()
	w := cgiresp.NewWriter(rec)
	if err := c.Do(context.Background(), get("/"), nil, 0, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), pattern) {
		t.Errorf("body of %d bytes differs from the %d the handler wrote", rec.Body.Len(), size)
	}
}

func TestStatusAndLocation(t *testing.T) {
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			w.Header().Set("Location", "https://example.test/new")
			w.WriteHeader(http.StatusMovedPermanently)
		case "/missing":
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "no such page")
		}
	}))
	rec, err := do(t, c, context.Background(), get("/moved"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != 301 || rec.Header().Get("Location") != "https://example.test/new" || rec.Header().Get("Status") != "" {
		t.Errorf("/moved: %d, headers %v", rec.Code, rec.Header())
	}
	rec, err = do(t, c, context.Background(), get("/missing"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != 404 || rec.Body.String() != "no such page" || !slicesEqual(rec.Header()["Set-Cookie"], []string{"a=1", "b=2"}) {
		t.Errorf("/missing: %d, body %q, headers %v", rec.Code, rec.Body, rec.Header())
	}
}

func slicesEqual(a, b []string) bool { return cmp.Equal(a, b) }

// What a handler flushes reaches the client while the handler still works.
func TestFlushThenSleep(t *testing.T) {
	release := make(chan struct{})
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, " second")
	}))
	rw := newFlushRecorder()
	cw := cgiresp.NewWriter(rw)
	done := make(chan error, 1)
	go func() { done <- c.Do(context.Background(), get("/"), nil, 0, cw) }()

	// net/http/fcgi sends its header block in a record of its own, so the
	// headers may be flushed first.
	for got := ""; got != "first"; {
		got = waitFor(t, rw.flushes, 10*time.Second, `a flush of "first"`)
		if got != "" && got != "first" {
			t.Fatalf("flushed %q while the handler sleeps, want %q", got, "first")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Do returned while the handler sleeps: %v", err)
	default:
	}
	close(release)
	if err := waitFor(t, done, 10*time.Second, "Do"); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if rw.Body.String() != "first second" {
		t.Errorf("body %q", rw.Body)
	}
}

func TestCancel(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "started")
		w.(http.Flusher).Flush()
		<-release
	}))

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		rw := newFlushRecorder()
		done := make(chan error, 1)
		go func() { done <- c.Do(ctx, get("/"), nil, 0, cgiresp.NewWriter(rw)) }()
		waitFor(t, rw.flushes, 10*time.Second, "the response to start")
		cancel()
		err := waitFor(t, done, 2*time.Second, "Do to return after cancel")
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotSent) {
			t.Errorf("Do: %v; want context.Canceled, not ErrNotSent", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := c.Do(ctx, get("/"), nil, 0, io.Discard)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotSent) {
			t.Errorf("Do: %v; want context.DeadlineExceeded, not ErrNotSent", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Do took %v with a deadline of 200ms", d)
		}
	})
	t.Run("a body upload", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() {
			pw.Write(make([]byte, 1000)) // then nothing: the upload stalls
			time.Sleep(100 * time.Millisecond)
			cancel()
			pw.CloseWithError(errors.New("client gone")) // as net/http's body does when its connection dies
		}()
		err := c.Do(ctx, get("/"), pr, 1<<20, io.Discard)
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotSent) {
			t.Errorf("Do: %v; want context.Canceled, not ErrNotSent", err)
		}
	})
	t.Run("before dial", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		dialed := false
		c := &Client{Dial: func(context.Context) (net.Conn, error) { dialed = true; return nil, errors.New("no") }}
		err := c.Do(ctx, get("/"), nil, 0, io.Discard)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNotSent) || dialed {
			t.Errorf("Do: %v, dialed %v; want context.Canceled and ErrNotSent, no dial", err, dialed)
		}
	})
}

func TestShortBody(t *testing.T) {
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	params := get("/")
	params["REQUEST_METHOD"] = "POST"
	err := c.Do(context.Background(), params, strings.NewReader("only ten b"), 100, io.Discard)
	if err == nil || !errors.Is(err, errBodyShort) || !strings.Contains(err.Error(), "10 of 100 bytes") || errors.Is(err, ErrNotSent) {
		t.Errorf("Do: %v; want a short body after 10 of 100 bytes, not ErrNotSent", err)
	}

	readErr := errors.New("client reset")
	err = c.Do(context.Background(), params, io.MultiReader(strings.NewReader("abc"), errReader{readErr}), 100, io.Discard)
	if !errors.Is(err, readErr) || !strings.Contains(err.Error(), "after 3 of 100 bytes") {
		t.Errorf("Do: %v; want the body's error after 3 of 100 bytes", err)
	}

	// More body than the content length: exactly the content length goes.
	c = serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	var out bytes.Buffer
	params["CONTENT_LENGTH"] = "5"
	if err := c.Do(context.Background(), params, strings.NewReader("12345678"), 5, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(out.Bytes(), []byte("\r\n\r\n12345")) {
		t.Errorf("response %q, want a body of 12345", out.Bytes())
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestBadArguments(t *testing.T) {
	dialed := false
	c := &Client{Dial: func(context.Context) (net.Conn, error) { dialed = true; return nil, errors.New("no") }}
	for _, tt := range []struct {
		params map[string]string
		body   io.Reader
		n      int64
		want   string
	}{
		{nil, nil, -1, "fcgi: content length -1: FastCGI needs the length of the body"},
		{nil, nil, 3, "fcgi: content length 3 and no body"},
		{map[string]string{"CONTENT_LENGTH": "4"}, strings.NewReader("abc"), 3, `fcgi: param CONTENT_LENGTH "4" with content length 3`},
		{map[string]string{"CONTENT_LENGTH": "x"}, nil, 0, `fcgi: param CONTENT_LENGTH "x" with content length 0`},
	} {
		err := c.Do(context.Background(), tt.params, tt.body, tt.n, io.Discard)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Do: %v, want %s", err, tt.want)
		}
	}
	if dialed {
		t.Error("Do dialed for a request it refused")
	}
	if err := (&Client{}).Do(context.Background(), nil, nil, 0, io.Discard); err == nil {
		t.Error("Do without Dial succeeded")
	}
}

// Concurrent requests share nothing but the pools: each gets its own
// answer, and no request's bytes reach another.
func TestConcurrent(t *testing.T) {
	c := serveFCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%x", fcgi.ProcessEnv(r)["WHO"], sha256.Sum256(b))
	}))
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte(i)}, 1000+i*4099)
			params := get("/")
			params["REQUEST_METHOD"] = "POST"
			params["CONTENT_LENGTH"] = strconv.Itoa(len(body))
			params["WHO"] = strconv.Itoa(i)
			for range 5 {
				rec, err := do(t, c, context.Background(), params, body)
				if err != nil {
					t.Error(err)
					return
				}
				if want := fmt.Sprintf("%d:%x", i, sha256.Sum256(body)); rec.Body.String() != want {
					t.Errorf("request %d got %q, want %q", i, rec.Body, want)
				}
			}
		}()
	}
	wg.Wait()
}
