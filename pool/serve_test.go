package pool

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/prefork"
)

// httpWorker serves HTTP with Worker.Serve:
//
//	/sleep?ms=N  sleeps N ms, then answers its pid
//	/expire      waits for its context to end; answers how long it took
//	/pid         answers its pid
func httpWorker(ctx context.Context, env *prefork.Env) error {
	w, err := Join(env)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/sleep", func(rw http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprint(rw, os.Getpid())
	})
	mux.HandleFunc("/expire", func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		fmt.Fprint(rw, time.Since(start).Round(100*time.Millisecond))
	})
	mux.HandleFunc("/pid", func(rw http.ResponseWriter, r *http.Request) { fmt.Fprint(rw, os.Getpid()) })
	srv := &http.Server{Handler: mux, IdleTimeout: 30 * time.Second}
	return w.Serve(ctx, srv, ServeOptions{Refuse: func(c *fdpass.Conn) {
		io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	}})
}

// httpPool runs a pool of httpWorkers behind a TCP listener of the test's
// that passes every connection it accepts to the pool.
type httpPool struct {
	*harness
	addr string
}

func startHTTPPool(t *testing.T, cfg Config) *httpPool {
	cfg.Role = "http-worker"
	h := startPool(t, cfg)
	sock, err := fdpass.FileSocket(h.p.Dispatch())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				sock.SendConn(ctx, c, nil, fdpass.ConnInfo{})
			}()
		}
	}()
	return &httpPool{harness: h, addr: ln.Addr().String()}
}

func (p *httpPool) get(t *testing.T, c *http.Client, path string) (int, string) {
	t.Helper()
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return 0, ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// Workers that serve many connections each: ten slow requests on ten
// connections at once are served together by one process.
func TestServeManyConnections(t *testing.T) {
	p := startHTTPPool(t, Config{PerWorker: 64, Max: 1})
	var wg sync.WaitGroup
	pids := make(chan string, 10)
	start := time.Now()
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			if code, pid := p.get(t, c, "/sleep?ms=500"); code == 200 {
				pids <- pid
			}
		}()
	}
	wg.Wait()
	close(pids)
	seen := map[string]bool{}
	for pid := range pids {
		seen[pid] = true
	}
	if took := time.Since(start); took > 3*time.Second || len(seen) != 1 {
		t.Errorf("10 requests of 500ms: %v, by workers %v; want them together, by one worker", took, seen)
	}
}

// MaxActive bounds the requests in progress over all the workers; one
// over it waits up to the queue timeout, then gets 503.
func TestServeMaxActive(t *testing.T) {
	p := startHTTPPool(t, Config{PerWorker: 64, Max: 2, MaxActive: 2, QueueTimeout: 300 * time.Millisecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			code, _ := p.get(t, c, "/sleep?ms=1000")
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200] != 2 || codes[503] != 3 {
		t.Errorf("5 requests of 1s, MaxActive 2, queue timeout 300ms: %v, want 2 served and 3 refused", codes)
	}
	if s := p.p.Stats(); s.Refused < 3 || s.Active != 0 {
		t.Errorf("stats after: %+v", s)
	}
	// The three refused waited the queue timeout each for a place.
	if s := p.p.Stats(); s.QueueWaits < 3 || s.QueueWait < 900*time.Millisecond || s.QueueWait > 5*time.Second {
		t.Errorf("queue waits %d for %v in all, want at least 3 for 900ms", s.QueueWaits, s.QueueWait)
	}
}

// A request's context ends after ExpireTimeout; the worker goes on.
func TestServeExpire(t *testing.T) {
	p := startHTTPPool(t, Config{PerWorker: 8, Max: 1, ExpireTimeout: 500 * time.Millisecond})
	c := &http.Client{Timeout: 10 * time.Second}
	if code, took := p.get(t, c, "/expire"); code != 200 || took != "500ms" {
		t.Errorf("a request past the expire timeout: %d, its context ended after %s; want 500ms", code, took)
	}
	if code, _ := p.get(t, c, "/pid"); code != 200 {
		t.Errorf("the next request: %d", code)
	}
}

// A worker that has served MaxRequests is replaced without losing a
// request, on new connections and on kept-alive ones.
func TestServeRecycleLosesNothing(t *testing.T) {
	p := startHTTPPool(t, Config{PerWorker: 8, Max: 2, MaxRequests: 5})
	var wg sync.WaitGroup
	var failed, served sync.Map
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 0}}
			for j := range 25 {
				code, pid := p.get(t, c, "/pid")
				if code != 200 {
					failed.Store(fmt.Sprint(i, j), code)
				} else {
					served.Store(pid, true)
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	served.Range(func(any, any) bool { n++; return true })
	failed.Range(func(k, v any) bool { t.Errorf("request %v: %v", k, v); return true })
	if n < 10 {
		t.Errorf("100 requests, 5 per worker, were served by %d workers, want at least 20 / recycled", n)
	}
}

// A retiring worker (a reload) does not cut a kept-alive connection: the
// client's next request is answered, with "Connection: close". (Closing
// idle connections at once, as a stop does, makes a client that sends at
// that moment see a reset.)
func TestServeDrainKeepsIdleConnections(t *testing.T) {
	p := startHTTPPool(t, Config{PerWorker: 8, Max: 1, StopTimeout: 5 * time.Second})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	read := func() (*http.Response, string) {
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		return nil, string(buf[:n])
	}
	io.WriteString(c, "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, r := read(); !strings.HasPrefix(r, "HTTP/1.1 200") {
		t.Fatalf("first answer %q", r)
	}
	p.p.Retire()
	time.Sleep(500 * time.Millisecond) // the worker is draining
	io.WriteString(c, "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, r := read(); !strings.HasPrefix(r, "HTTP/1.1 200") || !strings.Contains(r, "Connection: close") {
		t.Errorf("a kept-alive request while the worker drains: %q, want 200 with Connection: close", r)
	}
}

// Under a global limit, a pool with no worker gets one promptly even when
// the other pools hold every place with idle kept-alive connections (they
// held them for the whole keep-alive timeout, and the third pool's
// clients got 503).
func TestGlobalLimitFair(t *testing.T) {
	lim := &Limit{Max: 2}
	a := startHTTPPool(t, Config{Name: "a", PerWorker: 8, Max: 2, Limit: lim, QueueTimeout: 5 * time.Second})
	b := startHTTPPool(t, Config{Name: "b", PerWorker: 8, Max: 2, Limit: lim, QueueTimeout: 5 * time.Second})
	c := startHTTPPool(t, Config{Name: "c", PerWorker: 8, Max: 2, Limit: lim, QueueTimeout: 5 * time.Second})
	// Idle kept-alive connections hold a's and b's workers.
	for _, p := range []*httpPool{a, b} {
		cl := &http.Client{Timeout: 10 * time.Second}
		if code, _ := p.get(t, cl, "/pid"); code != 200 {
			t.Fatalf("pool %s: %d", p.p.cfg.Name, code)
		}
		defer cl.CloseIdleConnections()
	}
	start := time.Now()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	code, _ := c.get(t, cl, "/pid")
	if took := time.Since(start); code != 200 || took > 3*time.Second {
		t.Errorf("pool c under a full global limit: %d after %v, want 200 within 3s", code, took)
	}
	if n := lim.InUse(); n > 2 {
		t.Errorf("%d workers under a limit of 2", n)
	}
}
