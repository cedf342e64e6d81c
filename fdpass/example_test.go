package fdpass_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/fdpass"
)

// A multiplexer accepts a connection, reads the start of it to decide
// where it goes, and hands it, with what it read, to a worker, which
// reads on as if nothing had happened. Here both ends are in one process;
// in mpmd the worker's end of the socket pair goes to worker processes
// through exec.Cmd.ExtraFiles (see Socket.File), and a worker opens it
// with fdpass.FileSocket(os.NewFile(3, "dispatch")).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mux, worker, err := fdpass.Socketpair(unix.SOCK_SEQPACKET)
	if err != nil {
		log.Fatal(err)
	}
	defer mux.Close()
	defer worker.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	client.Write([]byte("hello, "))

	// The multiplexer.
	c, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	head := make([]byte, 7)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, head); err != nil {
		log.Fatal(err)
	}
	if err := mux.SendConn(ctx, c, head, fdpass.ConnInfo{Listener: "web"}); err != nil {
		log.Fatal(err)
	}
	c.Close() // the worker has its own descriptor now

	client.Write([]byte("world"))

	// The worker.
	wc, err := worker.RecvConn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer wc.Close()
	wc.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 12)
	if _, err := io.ReadFull(wc, got); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("worker read %q from a connection accepted on %q\n", got, wc.Info().Listener)
	fmt.Println("remote address is the client's:", wc.RemoteAddr().String() == client.LocalAddr().String())
	// Output:
	// worker read "hello, world" from a connection accepted on "web"
	// remote address is the client's: true
}

// http.Server serves connections received on a Listener unchanged.
func ExampleListener() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mux, worker, err := fdpass.Socketpair(unix.SOCK_SEQPACKET)
	if err != nil {
		log.Fatal(err)
	}
	defer mux.Close()

	// The worker: an ordinary http.Server.
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "served %s %s", r.Method, r.URL.Path)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(fdpass.NewListener(worker))
	defer srv.Close()

	// The multiplexer passes each connection without reading from it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if err := mux.SendConn(ctx, c, nil, fdpass.ConnInfo{}); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			c.Close()
		}
	}()

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/hello")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	fmt.Println(resp.Status, string(body))
	// Output:
	// 200 OK served GET /hello
}
