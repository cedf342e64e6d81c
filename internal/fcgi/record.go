package fcgi

// This file is the wire format (FastCGI 1.0, section 8): records, name-value
// pairs, and the splitting of a stream into records. Client policy is in
// client.go.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// recType is a record type.
type recType uint8

const (
	typeBeginRequest    recType = 1
	typeAbortRequest    recType = 2
	typeEndRequest      recType = 3
	typeParams          recType = 4
	typeStdin           recType = 5
	typeStdout          recType = 6
	typeStderr          recType = 7
	typeData            recType = 8
	typeGetValues       recType = 9
	typeGetValuesResult recType = 10
	typeUnknownType     recType = 11
)

var typeNames = [...]string{
	typeBeginRequest:    "FCGI_BEGIN_REQUEST",
	typeAbortRequest:    "FCGI_ABORT_REQUEST",
	typeEndRequest:      "FCGI_END_REQUEST",
	typeParams:          "FCGI_PARAMS",
	typeStdin:           "FCGI_STDIN",
	typeStdout:          "FCGI_STDOUT",
	typeStderr:          "FCGI_STDERR",
	typeData:            "FCGI_DATA",
	typeGetValues:       "FCGI_GET_VALUES",
	typeGetValuesResult: "FCGI_GET_VALUES_RESULT",
	typeUnknownType:     "FCGI_UNKNOWN_TYPE",
}

func (t recType) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "type " + strconv.Itoa(int(t))
}

const (
	version1  = 1
	headerLen = 8
	maxWrite  = 65535 // the largest record content
	maxPad    = 255   // the largest padding a peer may send

	// requestID is the id of every request this client sends: one request
	// per connection. (0 is reserved for management records.)
	requestID = 1

	roleResponder = 1
)

// ProtocolStatus is the protocolStatus of an FCGI_END_REQUEST record.
type ProtocolStatus uint8

// The protocol statuses of FastCGI 1.0, section 5.5.
const (
	StatusRequestComplete ProtocolStatus = 0 // the request ran to its end
	StatusCantMultiplex   ProtocolStatus = 1 // FCGI_CANT_MPX_CONN: refused, one request per connection
	StatusOverloaded      ProtocolStatus = 2 // FCGI_OVERLOADED: refused, out of a resource
	StatusUnknownRole     ProtocolStatus = 3 // FCGI_UNKNOWN_ROLE: refused, not a responder
)

func (s ProtocolStatus) String() string {
	switch s {
	case StatusRequestComplete:
		return "FCGI_REQUEST_COMPLETE"
	case StatusCantMultiplex:
		return "FCGI_CANT_MPX_CONN"
	case StatusOverloaded:
		return "FCGI_OVERLOADED"
	case StatusUnknownRole:
		return "FCGI_UNKNOWN_ROLE"
	}
	return "protocol status " + strconv.Itoa(int(s))
}

// header is a record header.
type header struct {
	Version       uint8
	Type          recType
	ID            uint16
	ContentLength uint16
	PaddingLength uint8
}

func (h *header) decode(b []byte) {
	h.Version = b[0]
	h.Type = recType(b[1])
	h.ID = binary.BigEndian.Uint16(b[2:4])
	h.ContentLength = binary.BigEndian.Uint16(b[4:6])
	h.PaddingLength = b[6]
}

// putHeader encodes the header of a record of this type and sizes into b.
func putHeader(b []byte, t recType, id uint16, contentLen, padLen int) {
	b[0] = version1
	b[1] = byte(t)
	binary.BigEndian.PutUint16(b[2:4], id)
	binary.BigEndian.PutUint16(b[4:6], uint16(contentLen))
	b[6] = byte(padLen)
	b[7] = 0
}

// record is one record read from the server. Its buffer holds the largest
// record the format allows, so reading never allocates and never grows.
type record struct {
	h    header
	hbuf [headerLen]byte
	buf  [maxWrite + maxPad]byte
}

// read reads the next record from r. It returns io.EOF only when r ends
// cleanly between records.
func (rec *record) read(r io.Reader) error {
	if _, err := io.ReadFull(r, rec.hbuf[:]); err != nil {
		if err == io.EOF {
			return err
		}
		return fmt.Errorf("fcgi: reading a record header: %w", err)
	}
	rec.h.decode(rec.hbuf[:])
	if rec.h.Version != version1 {
		return fmt.Errorf("fcgi: record of version %d, want %d (header % x)", rec.h.Version, version1, rec.hbuf)
	}
	n := int(rec.h.ContentLength) + int(rec.h.PaddingLength)
	if _, err := io.ReadFull(r, rec.buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("fcgi: reading a %v record of %d bytes: %w", rec.h.Type, n, err)
	}
	return nil
}

func (rec *record) content() []byte { return rec.buf[:rec.h.ContentLength] }

// frameLen is the size of a buffer that holds any record this client
// writes: it pads content to a multiple of 8, as the specification
// recommends and net/http/fcgi does.
const frameLen = headerLen + maxWrite + 7

// streamWriter splits a stream into records of at most maxWrite bytes and
// writes each with one Write to w. Close writes the empty record that ends
// the stream.
type streamWriter struct {
	w     io.Writer
	t     recType
	id    uint16
	frame *[frameLen]byte
}

func (s *streamWriter) Write(p []byte) (int, error) {
	nn := 0
	for len(p) > 0 {
		n := copy(s.frame[headerLen:headerLen+maxWrite], p)
		if err := s.writeFrame(n); err != nil {
			return nn, err
		}
		nn += n
		p = p[n:]
	}
	return nn, nil
}

func (s *streamWriter) Close() error { return s.writeFrame(0) }

// writeFrame writes the record whose n content bytes are in place in the
// frame.
func (s *streamWriter) writeFrame(n int) error {
	pad := -n & 7
	putHeader(s.frame[:headerLen], s.t, s.id, n, pad)
	// The padding is zeroed: the frame is pooled, and its stale bytes may
	// be another request's body, maybe another site's.
	clear(s.frame[headerLen+n : headerLen+n+pad])
	_, err := s.w.Write(s.frame[:headerLen+n+pad])
	return err
}

// errBodyShort is wrapped by the error of a body that ended before its
// content length.
var errBodyShort = errors.New("body shorter than its content length")

// bodyReadError is a failure to read the request body, as opposed to a
// failure to send it.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// copyBody writes exactly n bytes of body as records, reading straight into
// the frame, and then the empty record. A short body or a failed read is a
// *bodyReadError; anything else is the error of a write.
func (s *streamWriter) copyBody(body io.Reader, n int64) error {
	for left := n; left > 0; {
		m, err := body.Read(s.frame[headerLen : headerLen+int(min(left, maxWrite))])
		if m > 0 {
			left -= int64(m)
			if werr := s.writeFrame(m); werr != nil {
				return werr
			}
		}
		switch {
		case left == 0:
		case err == io.EOF:
			return &bodyReadError{fmt.Errorf("fcgi: request body: %d of %d bytes: %w", n-left, n, errBodyShort)}
		case err != nil:
			return &bodyReadError{fmt.Errorf("fcgi: request body: after %d of %d bytes: %w", n-left, n, err)}
		}
	}
	return s.Close()
}

// appendPair appends a name-value pair (section 3.4): lengths below 128
// in one byte, others in four with the high bit set.
func appendPair(b []byte, name, value string) []byte {
	b = appendPairLen(b, len(name))
	b = appendPairLen(b, len(value))
	b = append(b, name...)
	return append(b, value...)
}

func appendPairLen(b []byte, n int) []byte {
	if n < 128 {
		return append(b, byte(n))
	}
	return binary.BigEndian.AppendUint32(b, uint32(n)|1<<31)
}

// maxPairLen is the longest name or value a pair can carry.
const maxPairLen = math.MaxInt32
