package fdpass

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkPass measures one pass of a descriptor through a SOCK_SEQPACKET
// pair: send, receive, close the received File. "conn" passes a TCP
// connection with its already-read bytes and receives it as a *Conn
// (which adds net.FileConn's dup, getsockname and getpeername).
func BenchmarkPass(b *testing.B) {
	for _, size := range []int{0, 1 << 10} {
		b.Run(fmt.Sprintf("fd/payload=%d", size), func(b *testing.B) {
			ctx := context.Background()
			a, r := pair(b, unix.SOCK_SEQPACKET)
			_, pw := pipe(b)
			payload := make([]byte, size)
			for b.Loop() {
				if err := a.Send(ctx, payload, pw); err != nil {
					b.Fatal(err)
				}
				_, files, err := r.Recv(ctx)
				if err != nil {
					b.Fatal(err)
				}
				closeAll(files)
			}
		})
	}
	b.Run("conn/read=1024", func(b *testing.B) {
		ctx := context.Background()
		a, r := pair(b, unix.SOCK_SEQPACKET)
		_, server := tcpPair(b)
		read := make([]byte, 1<<10)
		info := ConnInfo{Listener: "web"}
		for b.Loop() {
			if err := a.SendConn(ctx, server, read, info); err != nil {
				b.Fatal(err)
			}
			c, err := r.RecvConn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

// BenchmarkServe measures one HTTP request on a new loopback connection,
// from dial to the end of the response, served directly by an http.Server
// and served after a multiplexer accepted it, read its request head and
// passed it to an http.Server on a Listener. Both run in one benchmark
// run, so their ratio is the cost of the pass in a whole request.
func BenchmarkServe(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	serve := func(b *testing.B, l net.Listener) {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		b.Cleanup(func() { srv.Close() })
	}
	b.Run("direct", func(b *testing.B) {
		ln := listen(b)
		serve(b, ln)
		loop(b, ln.Addr().String())
	})
	b.Run("passed", func(b *testing.B) {
		ln := listen(b)
		send, recv := pair(b, unix.SOCK_SEQPACKET)
		go multiplex(ln, send)
		serve(b, NewListener(recv))
		loop(b, ln.Addr().String())
	})
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return ln
}

// loop dials addr, sends one request and reads the whole response, once
// per iteration.
func loop(b *testing.B, addr string) {
	req := []byte("GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(nil)
	for b.Loop() {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		br.Reset(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %s", resp.Status)
		}
		c.Close()
	}
}
