package vhostroute

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// v2Header builds a v2 header from its command and family bytes and its
// body (addresses, TLVs), with the length filled in.
func v2Header(verCmd, famProto byte, body ...[]byte) []byte {
	b := append(proxyV2Sig[:len(proxyV2Sig):len(proxyV2Sig)], verCmd, famProto, 0, 0)
	for _, x := range body {
		b = append(b, x...)
	}
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	return b
}

func tlv(typ byte, value []byte) []byte {
	return append([]byte{typ, byte(len(value) >> 8), byte(len(value))}, value...)
}

// withCRC appends a CRC32C TLV to a v2 header and fills it in.
func withCRC(b []byte) []byte {
	b = append(b, tlvCRC32C, 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b, castagnoli))
	return b
}

// addrs is an address block: both addresses, then both ports.
func addrs(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	b := append(s.AsSlice(), d.AsSlice()...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// A header recorded from an AWS Network Load Balancer (published in AWS's
// elastic-load-balancing-tools as a compatibility sample): IPv4, a
// CRC32C, AWS's VPC endpoint TLV (0xEA) and NOOP padding.
var awsNLBHeader = []byte{
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
	0x21, 0x11, 0x00, 0x54,
	0xac, 0x1f, 0x07, 0x71, 0xac, 0x1f, 0x0a, 0x1f, 0xc8, 0xf2, 0x00, 0x50,
	0x03, 0x00, 0x04, 0xe8, 0xd6, 0x89, 0x2d,
	0xea, 0x00, 0x17, 0x01, 'v', 'p', 'c', 'e', '-', '0', '8', 'd', '2', 'b', 'f', '1', '5', 'f', 'a', 'c', '5', '0', '0', '1', 'c', '9',
	0x04, 0x00, 0x24,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
}

// sslTLV is an SSL TLV as HAProxy sends it for a client with a
// certificate: flags, verify result, and sub-TLVs.
var sslTLV = tlv(0x20, bytes.Join([][]byte{
	{0x07, 0, 0, 0, 0},
	tlv(0x21, []byte("TLSv1.3")),
	tlv(0x22, []byte("client.example")),
	tlv(0x23, []byte("TLS_AES_128_GCM_SHA256")),
}, nil))

type proxyCase struct {
	name string
	in   []byte
	want ProxyHeader
	err  string // a fragment of the error; "" for none
}

const request = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"

func validProxyCases() []proxyCase {
	tcp4 := ProxyHeader{Version: 1, Source: ap("192.0.2.1:56324"), Dest: ap("198.51.100.1:443"), Len: 45}
	full6 := "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	var maxV2 []byte
	{
		body := addrs("192.0.2.1", "198.51.100.1", 1, 2)
		pad := MaxProxyV2Bytes - 16 - len(body) - 3
		maxV2 = v2Header(0x21, 0x11, body, tlv(0x04, make([]byte, pad)))
	}
	return []proxyCase{
		{"v1 TCP4", []byte("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"), tcp4, ""},
		{"v1 TCP4 with a request after it", []byte("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n" + request), tcp4, ""},
		{"v1 TCP4 longest", []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
			ProxyHeader{Version: 1, Source: ap("255.255.255.255:65535"), Dest: ap("255.255.255.255:65535"), Len: 56}, ""},
		{"v1 TCP4 shortest", []byte("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"),
			ProxyHeader{Version: 1, Source: ap("0.0.0.0:0"), Dest: ap("0.0.0.0:0"), Len: 32}, ""},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
			ProxyHeader{Version: 1, Source: ap("[2001:db8::1]:56324"), Dest: ap("[2001:db8::2]:443"), Len: 46}, ""},
		{"v1 TCP6 longest, either case", []byte("PROXY TCP6 " + strings.ToUpper(full6) + " " + full6 + " 65535 65535\r\n"),
			ProxyHeader{Version: 1, Source: ap("[" + full6 + "]:65535"), Dest: ap("[" + full6 + "]:65535"), Len: 104}, ""},
		{"v1 TCP6 unspecified", []byte("PROXY TCP6 :: :: 0 0\r\n"),
			ProxyHeader{Version: 1, Source: ap("[::]:0"), Dest: ap("[::]:0"), Len: 22}, ""},
		{"v1 TCP6 IPv4-mapped, as inet_ntop writes it", []byte("PROXY TCP6 ::ffff:192.0.2.1 ::ffff:198.51.100.1 1 2\r\n"),
			ProxyHeader{Version: 1, Source: ap("[::ffff:192.0.2.1]:1"), Dest: ap("[::ffff:198.51.100.1]:2"), Len: 53}, ""},
		{"v1 TCP6 uncompressed with leading zeros", []byte("PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0001 2001:db8:0:0:0:0:0:2 80 8080\r\n"),
			ProxyHeader{Version: 1, Source: ap("[2001:db8::1]:80"), Dest: ap("[2001:db8::2]:8080"), Len: 81}, ""},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), ProxyHeader{Version: 1, Local: true, Len: 15}, ""},
		{"v1 UNKNOWN with a request after it", []byte("PROXY UNKNOWN\r\n" + request), ProxyHeader{Version: 1, Local: true, Len: 15}, ""},
		{"v1 UNKNOWN longest", []byte("PROXY UNKNOWN " + full6 + " " + full6 + " 65535 65535\r\n"), ProxyHeader{Version: 1, Local: true, Len: 107}, ""},
		{"v1 UNKNOWN with any text", []byte("PROXY UNKNOWN whatever: it is ignored\r\n"), ProxyHeader{Version: 1, Local: true, Len: 39}, ""},

		{"v2 TCP4", v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 56324, 443)),
			ProxyHeader{Version: 2, Source: ap("192.0.2.1:56324"), Dest: ap("198.51.100.1:443"), Len: 28}, ""},
		{"v2 TCP4 with a request after it", append(v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 56324, 443)), request...),
			ProxyHeader{Version: 2, Source: ap("192.0.2.1:56324"), Dest: ap("198.51.100.1:443"), Len: 28}, ""},
		{"v2 TCP6", v2Header(0x21, 0x21, addrs("2001:db8::1", "2001:db8::2", 56324, 443)),
			ProxyHeader{Version: 2, Source: ap("[2001:db8::1]:56324"), Dest: ap("[2001:db8::2]:443"), Len: 52}, ""},
		{"v2 TCP6 IPv4-mapped", v2Header(0x21, 0x21, addrs("::ffff:192.0.2.1", "::ffff:198.51.100.1", 1, 2)),
			ProxyHeader{Version: 2, Source: ap("[::ffff:192.0.2.1]:1"), Dest: ap("[::ffff:198.51.100.1]:2"), Len: 52}, ""},
		{"v2 TCP4 with TLVs", v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 56324, 443),
			tlv(0x01, []byte("h2")), tlv(0x02, []byte("www.example.com")), tlv(0x05, []byte("unique-id")),
			sslTLV, tlv(0x30, []byte("netns")), tlv(0x04, nil), tlv(0xe0, []byte{1, 2, 3})),
			ProxyHeader{Version: 2, Source: ap("192.0.2.1:56324"), Dest: ap("198.51.100.1:443"), Len: 140}, ""},
		{"v2 TCP6 with TLVs and a CRC32C", withCRC(v2Header(0x21, 0x21, addrs("2001:db8::1", "2001:db8::2", 56324, 443),
			tlv(0x02, []byte("www.example.com")))),
			ProxyHeader{Version: 2, Source: ap("[2001:db8::1]:56324"), Dest: ap("[2001:db8::2]:443"), Len: 77}, ""},
		{"v2 from an AWS NLB, with a CRC32C", awsNLBHeader,
			ProxyHeader{Version: 2, Source: ap("172.31.7.113:51442"), Dest: ap("172.31.10.31:80"), Len: 100}, ""},
		{"v2 longest", maxV2,
			ProxyHeader{Version: 2, Source: ap("192.0.2.1:1"), Dest: ap("198.51.100.1:2"), Len: MaxProxyV2Bytes}, ""},
		{"v2 LOCAL", v2Header(0x20, 0x00), ProxyHeader{Version: 2, Local: true, Len: 16}, ""},
		{"v2 LOCAL with a request after it", append(v2Header(0x20, 0x00), request...), ProxyHeader{Version: 2, Local: true, Len: 16}, ""},
		{"v2 LOCAL with TLVs", v2Header(0x20, 0x00, tlv(0x05, []byte("id"))), ProxyHeader{Version: 2, Local: true, Len: 21}, ""},
		{"v2 LOCAL with addresses", v2Header(0x20, 0x11, addrs("192.0.2.1", "198.51.100.1", 1, 2)), ProxyHeader{Version: 2, Local: true, Len: 28}, ""},
		// LOCAL: "discard the protocol block including the family".
		{"v2 LOCAL with a block too short for its family", v2Header(0x20, 0x21, []byte{1, 2, 3}), ProxyHeader{Version: 2, Local: true, Len: 19}, ""},
		{"v2 LOCAL with a datagram family", v2Header(0x20, 0x12, addrs("192.0.2.1", "198.51.100.1", 1, 2)), ProxyHeader{Version: 2, Local: true, Len: 28}, ""},
		{"v2 AF_UNSPEC", v2Header(0x21, 0x00), ProxyHeader{Version: 2, Local: true, Len: 16}, ""},
		{"v2 AF_UNSPEC with TLVs", withCRC(v2Header(0x21, 0x00, tlv(0x05, []byte("id")))), ProxyHeader{Version: 2, Local: true, Len: 28}, ""},
		{"v2 AF_UNIX stream", v2Header(0x21, 0x31, []byte("/run/haproxy.sock"), make([]byte, 108-17), []byte("/run/mpm.sock"), make([]byte, 108-13)),
			ProxyHeader{Version: 2, Local: true, Len: 232}, ""},
		{"v2 AF_UNIX stream with TLVs", v2Header(0x21, 0x31, make([]byte, 216), tlv(0x01, []byte("http/1.1"))),
			ProxyHeader{Version: 2, Local: true, Len: 243}, ""},
	}
}

func invalidProxyCases() []proxyCase {
	v1 := func(s string) []byte { return []byte(s) }
	tcp4 := addrs("192.0.2.1", "198.51.100.1", 1, 2)
	badCRC := withCRC(v2Header(0x21, 0x11, tcp4))
	badCRC[len(badCRC)-1] ^= 1
	crcOverAddr := withCRC(v2Header(0x21, 0x11, tcp4))
	crcOverAddr[16] ^= 0x80
	return []proxyCase{
		// Not a PROXY header at all: refused, not guessed around.
		{"plain HTTP", v1("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), ProxyHeader{}, `no PROXY header: the client sent plain HTTP ("GET / HTTP/1.1\r\n"...)`},
		{"plain HTTP after empty lines", v1("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), ProxyHeader{}, "no PROXY header: the client sent plain HTTP"},
		{"plain HTTP, POST", v1("POST /x HTTP/1.1\r\nHost: a\r\n\r\n"), ProxyHeader{}, "no PROXY header: the client sent plain HTTP"},
		{"TLS ClientHello", []byte{22, 3, 1, 2, 0, 1, 0, 1, 0xfc, 3, 3, 0, 0, 0, 0, 0}, ProxyHeader{}, "no PROXY header: a TLS handshake record came first"},
		{"SSH", v1("SSH-2.0-OpenSSH_9.2p1\r\n"), ProxyHeader{}, `no PROXY header: first bytes "SSH-2.0-OpenSSH_"...`},
		{"lower-case proxy", v1("proxy TCP4 192.0.2.1 198.51.100.1 1 2\r\n"), ProxyHeader{}, "no PROXY header: first bytes"},
		{"v2 signature broken", append([]byte("\r\n\r\n\x00\r\nQUIT\r"), 0x21, 0x11, 0, 12), ProxyHeader{}, "no PROXY header: first bytes"},

		// Version 1.
		{"v1 bare LF", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\n"), ProxyHeader{}, "v1: line ends in a bare LF (CRLF is required)"},
		{"v1 bare CR", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\rGET / HTTP/1.1\r\n"), ProxyHeader{}, "v1: bare CR at byte 43 (not followed by LF)"},
		{"v1 CR CR LF", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\r\n"), ProxyHeader{}, "v1: bare CR at byte 43"},
		{"v1 no space after PROXY", v1("PROXY\r\n\r\nGET / HTTP/1.1\r\n"), ProxyHeader{}, `v1: '\r' after "PROXY" (want a space)`},
		{"v1 tab for a space", v1("PROXY\tTCP4 192.0.2.1 198.51.100.1 1 2\r\n"), ProxyHeader{}, `v1: '\t' after "PROXY" (want a space)`},
		{"v1 two spaces after PROXY", v1("PROXY  TCP4 192.0.2.1 198.51.100.1 1 2\r\n"), ProxyHeader{}, "v1: empty protocol"},
		{"v1 lower-case protocol", v1("PROXY tcp4 192.0.2.1 198.51.100.1 1 2\r\n"), ProxyHeader{}, `v1: unknown protocol "tcp4" (want TCP4, TCP6 or UNKNOWN)`},
		{"v1 unknown protocol", v1("PROXY UDP4 192.0.2.1 198.51.100.1 1 2\r\n"), ProxyHeader{}, `v1: unknown protocol "UDP4"`},
		{"v1 long protocol", v1("PROXY UNKNOWNX\r\n"), ProxyHeader{}, `v1: unknown protocol "UNKNOWNX"...`},
		{"v1 protocol without addresses", v1("PROXY TCP4\r\n\r\n\r\n"), ProxyHeader{}, "v1: TCP4 line without addresses"},
		{"v1 three fields", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n"), ProxyHeader{}, "v1: TCP4 line has 3 of its 4 address fields"},
		{"v1 five fields", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 1\r\n"), ProxyHeader{}, "v1: TCP4 line has more than 4 address fields"},
		{"v1 space before CRLF", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443 \r\n"), ProxyHeader{}, "v1: TCP4 line has more than 4 address fields (or a space before CRLF)"},
		{"v1 two spaces between fields", v1("PROXY TCP4 192.0.2.1  198.51.100.1 56324 443\r\n"), ProxyHeader{}, "v1: empty field (two spaces in a row, or a space before CRLF)"},
		{"v1 tab between fields", v1("PROXY TCP4 192.0.2.1\t198.51.100.1 56324 443\r\n"), ProxyHeader{}, "v1: invalid byte 0x09 at byte 20"},
		{"v1 NUL", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\x00\r\n"), ProxyHeader{}, "v1: invalid byte 0x00 at byte 43"},
		{"v1 non-ASCII", v1("PROXY UNKNOWN \xff\r\n"), ProxyHeader{}, "v1: invalid byte 0xff at byte 14"},
		{"v1 leading zero in an IPv4 address", v1("PROXY TCP4 192.0.2.01 198.51.100.1 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP4 source address "192.0.2.01"`},
		{"v1 octal-looking address", v1("PROXY TCP4 010.0.0.1 198.51.100.1 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP4 source address "010.0.0.1"`},
		{"v1 octet over 255", v1("PROXY TCP4 192.0.2.1 198.51.100.256 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP4 destination address "198.51.100.256"`},
		{"v1 three-part IPv4", v1("PROXY TCP4 192.0.1 198.51.100.1 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP4 source address "192.0.1"`},
		{"v1 IPv6 in TCP4", v1("PROXY TCP4 2001:db8::1 198.51.100.1 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP4 source address "2001:db8::1"`},
		{"v1 IPv4 in TCP6", v1("PROXY TCP6 192.0.2.1 198.51.100.1 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP6 source address "192.0.2.1"`},
		{"v1 IPv6 with a zone", v1("PROXY TCP6 fe80::1%eth0 2001:db8::2 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP6 source address "fe80::1%eth0"`},
		{"v1 IPv6 in brackets", v1("PROXY TCP6 [2001:db8::1] 2001:db8::2 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP6 source address "[2001:db8::1]"`},
		{"v1 IPv6 with two ::", v1("PROXY TCP6 2001::db8::1 2001:db8::2 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP6 source address "2001::db8::1"`},
		{"v1 IPv6 group of five digits", v1("PROXY TCP6 2001:db8::00001 2001:db8::2 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP6 source address "2001:db8::00001"`},
		{"v1 IPv6 too short", v1("PROXY TCP6 2001:db8:1 2001:db8::2 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP6 source address "2001:db8:1"`},
		{"v1 IPv6 bad destination", v1("PROXY TCP6 2001:db8::1 2001:db8::g 56324 443\r\n"), ProxyHeader{}, `v1: invalid TCP6 destination address "2001:db8::g"`},
		{"v1 leading zero in a port", v1("PROXY TCP4 192.0.2.1 198.51.100.1 056324 443\r\n"), ProxyHeader{}, `v1: invalid source port "056324" (want 0 to 65535 in decimal, without leading zeros)`},
		{"v1 leading zero in the destination port", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 0443\r\n"), ProxyHeader{}, `v1: invalid destination port "0443"`},
		{"v1 port over 65535", v1("PROXY TCP4 192.0.2.1 198.51.100.1 65536 443\r\n"), ProxyHeader{}, `v1: invalid source port "65536"`},
		{"v1 port with a sign", v1("PROXY TCP4 192.0.2.1 198.51.100.1 +1 443\r\n"), ProxyHeader{}, `v1: invalid source port "+1"`},
		{"v1 port in hex", v1("PROXY TCP4 192.0.2.1 198.51.100.1 1 0x1bb\r\n"), ProxyHeader{}, `v1: invalid destination port "0x1bb"`},
		{"v1 no CRLF within 107 bytes", v1("PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n"), ProxyHeader{}, "v1: no CRLF within the first 107 bytes"},
		{"v1 108 bytes", v1("PROXY UNKNOWN " + strings.Repeat("f", 92) + "\r\n"), ProxyHeader{}, "v1: no CRLF within the first 107 bytes"},
		{"v1 field error before a bad byte", v1("PROXY TCP4 1.2.3.999 198.51.100.1 1 2\x00\r\n"), ProxyHeader{}, `v1: invalid TCP4 source address "1.2.3.999"`},

		// Version 2.
		{"v2 version 1", v2Header(0x11, 0x11, tcp4), ProxyHeader{}, "v2 signature with version 1 (want 2)"},
		{"v2 version 3", v2Header(0x31, 0x11, tcp4), ProxyHeader{}, "v2 signature with version 3 (want 2)"},
		{"v2 command 2", v2Header(0x22, 0x11, tcp4), ProxyHeader{}, "v2: command 0x2 (want LOCAL, 0x0, or PROXY, 0x1)"},
		{"v2 command 15", v2Header(0x2f, 0x11, tcp4), ProxyHeader{}, "v2: command 0xf"},
		{"v2 family 4", v2Header(0x21, 0x41, tcp4), ProxyHeader{}, "v2: address family 0x4 (want 0x0 to 0x3)"},
		{"v2 transport 3", v2Header(0x21, 0x13, tcp4), ProxyHeader{}, "v2: transport protocol 0x3 (want 0x0 to 0x2)"},
		{"v2 UNSPEC family with STREAM", v2Header(0x21, 0x01), ProxyHeader{}, "v2: family and protocol byte 0x01 mixes UNSPEC with a specified value"},
		{"v2 INET with UNSPEC transport", v2Header(0x21, 0x10, tcp4), ProxyHeader{}, "v2: family and protocol byte 0x10 mixes UNSPEC"},
		{"v2 reserved bits checked for LOCAL too", v2Header(0x20, 0x41), ProxyHeader{}, "v2: address family 0x4"},
		{"v2 UDP over IPv4", v2Header(0x21, 0x12, tcp4), ProxyHeader{}, "v2: PROXY for a datagram (AF_INET, SOCK_DGRAM) connection, on a stream listener"},
		{"v2 UDP over IPv6", v2Header(0x21, 0x22, addrs("2001:db8::1", "2001:db8::2", 1, 2)), ProxyHeader{}, "v2: PROXY for a datagram (AF_INET6"},
		{"v2 UNIX datagram", v2Header(0x21, 0x32, make([]byte, 216)), ProxyHeader{}, "v2: PROXY for a datagram (AF_UNIX"},
		{"v2 INET without addresses", v2Header(0x21, 0x11), ProxyHeader{}, "v2: length 0 is too short for AF_INET addresses (12 bytes)"},
		{"v2 INET short", v2Header(0x21, 0x11, tcp4[:11]), ProxyHeader{}, "v2: length 11 is too short for AF_INET addresses (12 bytes)"},
		{"v2 INET6 with IPv4 addresses", v2Header(0x21, 0x21, tcp4), ProxyHeader{}, "v2: length 12 is too short for AF_INET6 addresses (36 bytes)"},
		{"v2 UNIX short", v2Header(0x21, 0x31, make([]byte, 215)), ProxyHeader{}, "v2: length 215 is too short for AF_UNIX addresses (216 bytes)"},
		{"v2 one byte after the addresses", v2Header(0x21, 0x11, tcp4, []byte{0x04}), ProxyHeader{}, "v2: 1 bytes after the last TLV (a TLV takes at least 3)"},
		{"v2 two bytes after a TLV", v2Header(0x21, 0x11, tcp4, tlv(4, nil), []byte{0x04, 0}), ProxyHeader{}, "v2: 2 bytes after the last TLV"},
		{"v2 TLV overrunning the header", v2Header(0x21, 0x11, tcp4, []byte{0x02, 0, 5, 'a', 'b'}), ProxyHeader{}, "v2: TLV of type 0x02 and 5 bytes overruns the header by 3"},
		{"v2 bad CRC32C", badCRC, ProxyHeader{}, "v2: CRC32C mismatch"},
		{"v2 CRC32C over a changed address", crcOverAddr, ProxyHeader{}, "v2: CRC32C mismatch"},
		{"v2 CRC32C of 3 bytes", v2Header(0x21, 0x11, tcp4, tlv(tlvCRC32C, []byte{1, 2, 3})), ProxyHeader{}, "v2: CRC32C TLV of 3 bytes (want 4)"},
		{"v2 two CRC32Cs", withCRC(v2Header(0x21, 0x11, tcp4, tlv(tlvCRC32C, []byte{1, 2, 3, 4}))), ProxyHeader{}, "v2: more than one CRC32C TLV"},
		{"v2 over the size limit", v2Header(0x21, 0x11, tcp4, tlv(0x04, make([]byte, MaxProxyV2Bytes-16-12-3+1))), ProxyHeader{}, "v2: header of 2049 bytes (the limit is 2048)"},
		{"v2 announcing 64 KiB", append(proxyV2Sig[:12:12], 0x21, 0x11, 0xff, 0xff), ProxyHeader{}, "v2: header of 65551 bytes (the limit is 2048)"},

		// Incomplete.
		{"empty", nil, ProxyHeader{}, "incomplete: 0 bytes, at least 15 more needed"},
		{"v1 cut short", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 44"), ProxyHeader{}, "incomplete: 42 bytes, at least 2 more needed"},
		{"v1 cut before its LF", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r"), ProxyHeader{}, "incomplete: 44 bytes, at least 1 more needed"},
		{"v2 cut short", v2Header(0x21, 0x11, tcp4)[:27], ProxyHeader{}, "incomplete: 27 bytes, at least 1 more needed"},
		{"v2 fixed part cut short", proxyV2Sig[:], ProxyHeader{}, "incomplete: 12 bytes, at least 4 more needed"},
	}
}

func checkProxyResult(t *testing.T, tc proxyCase, h ProxyHeader, err error) {
	t.Helper()
	if tc.err == "" {
		if err != nil || h != tc.want {
			t.Errorf("%s: got %+v, %v\nwant %+v", tc.name, h, err, tc.want)
		}
		return
	}
	var pe *ProxyError
	if !errors.As(err, &pe) || !errors.Is(err, ErrBadProxy) {
		t.Errorf("%s: got %+v, %v; want a *ProxyError wrapping ErrBadProxy", tc.name, h, err)
		return
	}
	if !strings.Contains(err.Error(), tc.err) {
		t.Errorf("%s: error %q\nwant it to contain %q", tc.name, err, tc.err)
	}
	if h != (ProxyHeader{}) {
		t.Errorf("%s: error %v with a header %+v", tc.name, err, h)
	}
}

func TestParseProxyHeader(t *testing.T) {
	for _, tc := range append(validProxyCases(), invalidProxyCases()...) {
		h, err := ParseProxyHeader(tc.in)
		checkProxyResult(t, tc, h, err)
		if tc.err == "" && h.Len > len(tc.in) {
			t.Errorf("%s: Len %d of %d bytes", tc.name, h.Len, len(tc.in))
		}
	}
}

func TestParseProxyHeaderIncompleteWrapsUnexpectedEOF(t *testing.T) {
	_, err := ParseProxyHeader([]byte("PROXY TCP4 192.0.2.1"))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrBadProxy) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF and ErrBadProxy", err)
	}
}

// segConn hands out data in segments (ending at the offsets in cuts, then
// the rest at once), one segment at most per Read, and records how far
// into data any Read asked to reach.
type segConn struct {
	data      []byte
	cuts      []int // increasing
	pos       int
	asked     int // the furthest offset a Read's buffer reached
	reads     int
	deadlines []time.Time
}

func (c *segConn) Read(p []byte) (int, error) {
	c.reads++
	c.asked = max(c.asked, c.pos+len(p))
	if c.pos == len(c.data) {
		return 0, io.EOF
	}
	end := len(c.data)
	for _, cut := range c.cuts {
		if cut > c.pos {
			end = min(end, cut)
			break
		}
	}
	n := copy(p, c.data[c.pos:end])
	c.pos += n
	return n, nil
}

func (c *segConn) SetReadDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// The header arrives however the network splits it, and the reader takes
// exactly the header: it never asks for a byte past it.
func TestReadProxyHeaderSplit(t *testing.T) {
	var r HeadReader
	for _, tc := range append(validProxyCases(), invalidProxyCases()...) {
		whole, werr := ParseProxyHeader(tc.in)
		var splits [][]int
		for k := 1; k < len(tc.in); k++ {
			splits = append(splits, []int{k}) // two reads, at every boundary
		}
		every := make([]int, len(tc.in))
		for i := range every {
			every[i] = i + 1
		}
		splits = append(splits, nil, every) // all at once; a byte at a time
		for _, cuts := range splits {
			c := &segConn{data: tc.in, cuts: cuts}
			h, err := r.ReadProxyHeader(c)
			if tc.err == "" {
				if err != nil || h != whole {
					t.Fatalf("%s, cut at %v: got %+v, %v; want %+v", tc.name, cuts, h, err, whole)
				}
				if c.asked > h.Len || c.pos != h.Len {
					t.Fatalf("%s, cut at %v: read to %d and asked for up to %d, header of %d bytes", tc.name, cuts, c.pos, c.asked, h.Len)
				}
				continue
			}
			if err == nil {
				t.Fatalf("%s, cut at %v: got %+v, want an error", tc.name, cuts, h)
			}
			if !errors.Is(err, ErrBadProxy) {
				t.Fatalf("%s, cut at %v: %v does not wrap ErrBadProxy", tc.name, cuts, err)
			}
			// The verdict does not depend on the split; neither does the
			// reason, but for what came instead of a header (it quotes
			// what arrived) and for the end of the bytes.
			if !errors.Is(werr, io.ErrUnexpectedEOF) && !strings.Contains(werr.Error(), "no PROXY header") && err.Error() != werr.Error() {
				t.Fatalf("%s, cut at %v: %v\nwhole: %v", tc.name, cuts, err, werr)
			}
			if !strings.Contains(err.Error(), tc.err) && !strings.Contains(tc.err, "no PROXY header") && !strings.Contains(tc.err, "incomplete") {
				t.Fatalf("%s, cut at %v: %v, want %q", tc.name, cuts, err, tc.err)
			}
		}
	}
}

// What follows the header is left for the next reader: the request head,
// or a TLS ClientHello, exactly as the client sent it.
func TestReadProxyHeaderThenPayload(t *testing.T) {
	var r HeadReader
	headers := map[string][]byte{
		"v1 TCP4":    []byte("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"),
		"v1 TCP6":    []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
		"v1 UNKNOWN": []byte("PROXY UNKNOWN\r\n"),
		"v2 TCP4":    v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 56324, 443)),
		"v2 LOCAL":   v2Header(0x20, 0x00),
		"v2 AWS NLB": awsNLBHeader,
	}
	hello := readTestdata(t, "hello", "curl-7.88.1.bin")
	for name, hdr := range headers {
		for _, chunk := range []int{1, 7, 1 << 20} {
			c := &chunkConn{data: append(append([]byte{}, hdr...), browserHead...), chunk: chunk}
			ph, err := r.ReadProxyHeader(c)
			if err != nil || ph.Len != len(hdr) {
				t.Fatalf("%s: %+v, %v", name, ph, err)
			}
			h, err := r.ReadHead(c)
			if err != nil || string(h.Raw) != browserHead {
				t.Fatalf("%s, %d-byte reads: the request head read after the header is %q, %v", name, chunk, h.Raw, err)
			}

			c = &chunkConn{data: append(append([]byte{}, hdr...), hello...), chunk: chunk}
			if _, err := r.ReadProxyHeader(c); err != nil {
				t.Fatal(err)
			}
			var hr HelloReader
			ch, err := hr.ReadClientHello(c)
			if err != nil || ch.ServerName != "www.example.com" || !bytes.Equal(ch.Raw, hello) {
				t.Fatalf("%s, %d-byte reads: the ClientHello read after the header: %q, %d bytes, %v", name, chunk, ch.ServerName, len(ch.Raw), err)
			}
		}
	}
}

func TestReadProxyHeaderClearsDeadline(t *testing.T) {
	r := HeadReader{Timeout: 3 * time.Second}
	for _, in := range []string{"PROXY UNKNOWN\r\n", "GET / HTTP/1.1\r\n\r\n", "PROXY TCP4"} {
		c := &segConn{data: []byte(in)}
		start := time.Now()
		r.ReadProxyHeader(c)
		if len(c.deadlines) != 2 || c.deadlines[0].Before(start.Add(3*time.Second)) || c.deadlines[0].After(time.Now().Add(3*time.Second)) || !c.deadlines[1].IsZero() {
			t.Errorf("%q: deadlines set %v, want now+3s, then none", in, c.deadlines)
		}
	}
	c := &failingDeadline{}
	if _, err := r.ReadProxyHeader(c); err == nil || !errors.Is(err, ErrBadProxy) || c.reads != 0 {
		t.Errorf("without a deadline: %v, %d reads; want an error and no read", err, c.reads)
	}
}

// Closed connections, over net.Pipe.
func TestReadProxyHeaderClosed(t *testing.T) {
	tests := []struct {
		name, send string
		err        error
		reason     string
	}{
		{"closed at once", "", io.EOF, "connection closed before any byte"},
		{"closed mid-v1", "PROXY TCP4 192.0.2.1 19", io.ErrUnexpectedEOF, "connection closed after 23 bytes, in the header"},
		{"closed mid-v2", string(v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 1, 2))[:20]), io.ErrUnexpectedEOF, "connection closed after 20 bytes, in the header"},
		{"closed after an UNKNOWN without its LF", "PROXY UNKNOWN\r", io.ErrUnexpectedEOF, "connection closed after 14 bytes"},
	}
	for _, tc := range tests {
		client, server := net.Pipe()
		go func() {
			client.Write([]byte(tc.send))
			client.Close()
		}()
		r := HeadReader{Timeout: 5 * time.Second}
		_, err := r.ReadProxyHeader(server)
		server.Close()
		var pe *ProxyError
		if !errors.As(err, &pe) || !errors.Is(err, tc.err) || !errors.Is(err, ErrBadProxy) || pe.Timeout || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v; want %q wrapping %v", tc.name, err, tc.reason, tc.err)
		}
	}
}

// Slow clients over loopback TCP: one deadline for the whole header,
// however the bytes are paced.
func TestReadProxyHeaderSlowClients(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name   string
		send   string
		every  time.Duration // pause between single bytes; 0 sends send at once, then stalls
		reason string
	}{
		{"connect and say nothing", "", 0, "nothing received within 300ms"},
		{"stall mid-v1", "PROXY TCP4 192.0.2.1 198.51", 0, "header not complete within 300ms (27 bytes received)"},
		{"stall before the LF", "PROXY UNKNOWN\r", 0, "header not complete within 300ms (14 bytes received)"},
		{"stall mid-v2", string(v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 1, 2))[:16]), 0, "header not complete within 300ms (16 bytes received)"},
		{"v1 one byte every 20ms", "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n", 20 * time.Millisecond, "header not complete within 300ms"},
		{"v2 one byte every 20ms", string(v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 1, 2))), 20 * time.Millisecond, "header not complete within 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, server := loopbackPair(t)
			done := make(chan struct{})
			defer close(done)
			go func() {
				if tc.every == 0 {
					client.Write([]byte(tc.send))
					return
				}
				for i := 0; i < len(tc.send); i++ {
					select {
					case <-done:
						return
					case <-time.After(tc.every):
					}
					if _, err := client.Write([]byte{tc.send[i]}); err != nil {
						return
					}
				}
			}()
			r := HeadReader{Timeout: timeout}
			start := time.Now()
			_, err := r.ReadProxyHeader(server)
			elapsed := time.Since(start)
			var pe *ProxyError
			if !errors.As(err, &pe) || !pe.Timeout || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, ErrBadProxy) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v; want a timeout, %q", err, tc.reason)
			}
			if elapsed < timeout || elapsed > timeout+time.Second {
				t.Errorf("gave up after %v, want about %v", elapsed, timeout)
			}
		})
	}
}

// A slow header that completes within the deadline is read, and the
// request after it is left on the connection.
func TestReadProxyHeaderSlowButInTime(t *testing.T) {
	client, server := loopbackPair(t)
	hdr := "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"
	go func() {
		for i := range len(hdr) {
			client.Write([]byte{hdr[i]})
			time.Sleep(time.Millisecond)
		}
		client.Write([]byte(request))
	}()
	r := HeadReader{Timeout: 5 * time.Second}
	ph, err := r.ReadProxyHeader(server)
	if err != nil || ph.Source != ap("[2001:db8::1]:56324") {
		t.Fatalf("%+v, %v", ph, err)
	}
	h, err := r.ReadHead(server)
	if err != nil || string(h.Raw) != request {
		t.Fatalf("%q, %v", h.Raw, err)
	}
}

// The hand-written address parsers accept exactly what net/netip does
// (zones aside), without allocating.
func TestParseIPAgreesWithNetip(t *testing.T) {
	cases := []string{
		"", "0.0.0.0", "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.2.3.04", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ",
		"1..2.3", ".1.2.3.4", "1.2.3.4.", "0x1.2.3.4", "1.2.3.-4", "١.٢.٣.٤", "1.2.3.0004",
		"::", "::1", "1::", "1::2", ":", ":::", "1:::2", "::1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
		"1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::3:4:5:6:7:8", "1:2:3:4:5:6::7:8", "::ffff:1.2.3.4", "::1.2.3.4",
		"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::ffff:1.2.3", "::ffff:01.2.3.4",
		"::1.2.3.4:1", "abcd:ef01:2345:6789:ABCD:EF01:2345:6789", "00000::", "0000::", "g::", "fe80::1%eth0",
		":1::", "1:", "1:2", "2001:db8::1.2.3.4", "::ffff:255.255.255.255", "1.2.3.4::", "::1.2.3.4.5",
	}
	for _, s := range cases {
		want, err := netip.ParseAddr(s)
		ok4 := err == nil && want.Is4()
		ok6 := err == nil && want.Is6() && want.Zone() == ""
		if got, ok := parseIPv4([]byte(s)); ok != ok4 || ok && got != want {
			t.Errorf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
		if got, ok := parseIPv6([]byte(s)); ok != ok6 || ok && got != want {
			t.Errorf("parseIPv6(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
	}
}

// The parse path does not allocate.
func TestParseProxyHeaderNoAlloc(t *testing.T) {
	for _, tc := range validProxyCases() {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseProxyHeader(tc.in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, allocs)
		}
	}
}

// Random splits of random valid headers followed by random payloads.
func TestReadProxyHeaderRandomSplits(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var r HeadReader
	valid := validProxyCases()
	for range 2000 {
		tc := valid[rnd.IntN(len(valid))]
		want, _ := ParseProxyHeader(tc.in)
		data := append(append([]byte{}, tc.in[:want.Len]...), make([]byte, rnd.IntN(64))...)
		for i := want.Len; i < len(data); i++ {
			data[i] = byte(rnd.Uint32())
		}
		var cuts []int
		for p := 0; p < len(data); {
			p += 1 + rnd.IntN(20)
			cuts = append(cuts, p)
		}
		c := &segConn{data: data, cuts: cuts}
		h, err := r.ReadProxyHeader(c)
		if err != nil || h != want || c.asked > want.Len {
			t.Fatalf("%s cut at %v: %+v, %v, asked up to %d", tc.name, cuts, h, err, c.asked)
		}
	}
}
