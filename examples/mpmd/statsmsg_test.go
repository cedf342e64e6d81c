package main

import (
	"bytes"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func seqpacketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "stats")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs[0], cs[1]
}

// serveStats answers each request on c with the next of answers.
func serveStats(c net.Conn, answers ...[]byte) {
	buf := make([]byte, 16)
	for _, a := range answers {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if writeStats(c, buf[:n], a) != nil {
			return
		}
	}
}

// An answer of many messages arrives whole (one message held the
// snapshot of at most about 300 identities), and an empty one too.
func TestStatsExchange(t *testing.T) {
	master, status := seqpacketPair(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, 17 messages
	go serveStats(master, big, []byte("{}"), []byte{})
	for i, want := range [][]byte{big, []byte("{}"), {}} {
		got, err := readStats(status, uint64(i+1))
		if err != nil {
			t.Fatalf("exchange %d: %v", i+1, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("exchange %d: %d bytes, want %d", i+1, len(got), len(want))
		}
	}
}

// What is left of an answer the status process gave up on is dropped by
// the next exchange, not taken for its answer.
func TestStatsStaleAnswer(t *testing.T) {
	master, status := seqpacketPair(t)
	old := bytes.Repeat([]byte("o"), 3*statsChunk)
	done := make(chan struct{})
	go func() { defer close(done); serveStats(master, old, []byte(`{"new":1}`)) }()
	// Exchange 1: only its first message is read (a timeout).
	status.Write([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	buf := make([]byte, statsHeader+statsChunk)
	if _, err := status.Read(buf); err != nil {
		t.Fatal(err)
	}
	got, err := readStats(status, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"new":1}` {
		t.Fatalf("exchange 2 got %d bytes %.20q..., want its own answer", len(got), got)
	}
	<-done
}

// A request that is not an exchange number is refused, not answered.
func TestStatsBadRequest(t *testing.T) {
	var b bytes.Buffer
	if err := writeStats(&b, []byte("?"), []byte("{}")); err == nil || b.Len() != 0 {
		t.Fatalf("a 1-byte request: %v, wrote %d bytes", err, b.Len())
	}
}
