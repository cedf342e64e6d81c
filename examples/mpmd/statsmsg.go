package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The status process asks the master for its snapshot on a SEQPACKET
// socket pair: a request is the 8-byte number of the exchange; the
// answer is the snapshot's JSON in messages of at most statsChunk bytes,
// each headed by the exchange's number and a byte that says whether more
// follow. One message could not hold the snapshot of a few hundred
// identities (it failed, and the status page with it, from about 300);
// the number lets the status process drop what is left of an answer it
// stopped waiting for.
const (
	statsChunk  = 64 << 10 // the JSON bytes of one message
	statsHeader = 9        // exchange number, "more follows"
	// maxStatsTotal bounds one answer; a larger snapshot goes without
	// its per-worker slots (see master.statsJSON).
	maxStatsTotal = 16 << 20
)

// writeStats answers request req (the bytes the status process sent)
// with b on w, in messages.
func writeStats(w io.Writer, req []byte, b []byte) error {
	if len(req) != 8 {
		return fmt.Errorf("stats request of %d bytes, want 8", len(req))
	}
	msg := make([]byte, 0, statsHeader+min(len(b), statsChunk))
	for {
		n := min(len(b), statsChunk)
		more := byte(0)
		if n < len(b) {
			more = 1
		}
		msg = append(append(append(msg[:0], req...), more), b[:n]...)
		if _, err := w.Write(msg); err != nil {
			return err
		}
		if more == 0 {
			return nil
		}
		b = b[n:]
	}
}

// readStats sends request number seq on rw and reads its answer,
// dropping the rest of any earlier answer left unread.
func readStats(rw io.ReadWriter, seq uint64) ([]byte, error) {
	req := binary.BigEndian.AppendUint64(nil, seq)
	if _, err := rw.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, statsHeader+statsChunk)
	var all []byte
	for {
		n, err := rw.Read(buf)
		if err != nil {
			return nil, err
		}
		if n < statsHeader {
			return nil, fmt.Errorf("stats message of %d bytes", n)
		}
		if binary.BigEndian.Uint64(buf[:8]) != seq {
			continue // an earlier exchange's
		}
		if all = append(all, buf[statsHeader:n]...); len(all) > maxStatsTotal {
			return nil, errors.New("stats answer larger than 16 MiB")
		}
		if buf[8] == 0 {
			return all, nil
		}
	}
}
