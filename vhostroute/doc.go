// Package vhostroute decides which site a connection is for, reading as
// little of it as it can and trusting none of it: it normalizes host
// names, holds the table of virtual hosts, reads an HTTP/1.x request
// head within bounds, peeks at a TLS ClientHello for its server name,
// and reads the PROXY protocol header a load balancer puts in front of
// both.
//
// It is the part of a multiplexer that touches a client's bytes before
// they reach the site's own process. In mpm, that multiplexer runs with
// no privileges, but it is shared by every site: a parser it gets wrong
// is a way to reach another site's worker, and a read it does not bound
// is a way to stall everyone. So every read here has a size limit and a
// deadline, every rejection says what was wrong with which value, and
// whatever was read is handed back unchanged, to be passed on with the
// connection.
//
// # The flow
//
// On a plain HTTP listener:
//
//	h, err := headReader.ReadHead(conn)     // bounded, deadline, *HeadError on failure
//	if err != nil { answer the HeadError's Status; close }
//	site, ok := table.Lookup(localAddrPort, h.Host)
//	if !ok { answer 421 Misdirected Request; close }
//	pass conn and h.Raw (all bytes read) to site's pool
//
// On a TLS listener:
//
//	hello, err := helloReader.ReadClientHello(conn)
//	if errors.Is(err, vhostroute.ErrNotTLS) { it is plain HTTP or worse; close }
//	site, ok := table.Lookup(localAddrPort, hello.ServerName)
//	pass conn and hello.Raw to site's pool, whose TLS server reads them first
//
// # Host names
//
// [NormalizeHost] turns a Host header value, an authority or a configured
// name into one canonical spelling: lower case; port and one trailing dot
// removed; IPv6 literals in brackets in canonical form ("[2001:db8::1]");
// internationalized names in ASCII ("bücher.example" becomes
// "xn--bcher-kva.example", by UTS #46 as browsers do, through
// golang.org/x/net/idna). It refuses what is not a host name, with a
// *[HostError] that quotes the value: control bytes, spaces, '/', '%',
// '@' and any other byte but letters, digits, '-', '_' and '.'; empty
// labels (".x", "a..b"); names over 253 characters and labels over 63;
// numeric forms that resolvers read differently ("127.1", "0x7f.0.0.1");
// IPv6 without brackets or with a zone; invalid punycode. Underscores are
// accepted because real hostnames have them; a name is otherwise never
// repaired, only refused.
//
// Server names from SNI follow RFC 6066: ASCII only and no IP literals
// (refused); a trailing dot is removed.
//
// # The routing table
//
// A [Table] maps a connection's local address and a host name to a value
// of any type (a pool, a site's configuration). It is built once by a
// [Builder] and then never changes, so lookups need no lock; rebuild to
// reload and swap the pointer (an atomic.Pointer does).
//
// Entries work like Apache's <VirtualHost> blocks. Each has a Listener:
// an address and port ("192.0.2.1:443", "[2001:db8::1]:443"), any
// address on a port ("*:443", or a bind address such as "0.0.0.0:443" or
// "[::]:443", which accepts on every address), or any listener (""). A
// connection is
// matched only against the most specific scope that has entries for its
// local address: address:port, else *:port, else the catch-all, as Apache
// and nginx do. Within that scope:
//
//  1. an exact name or alias ("example.com", "www.example.com");
//  2. the longest matching wildcard ("*.shop.example.com" before
//     "*.example.com"); a wildcard needs at least one label in front
//     of it, so "*.example.com" does not match "example.com";
//  3. the scope's default (the entry marked Default), which also takes
//     requests without a name (HTTP/1.0 without Host, TLS without SNI).
//
// Without a match and without a default, Lookup reports false; answer 421
// Misdirected Request. A host that is not valid never matches, not even
// the default. The same name may appear in different scopes; within one
// scope a name claimed twice, or two defaults, is an error that names
// both entries ([ErrDuplicate]). Build reports every problem at once.
//
// Lookup normalizes its host argument itself (case, port, trailing dot)
// and does not allocate for ASCII names; with 10,000 names an exact or
// wildcard lookup costs well under a microsecond (see the benchmarks).
//
// # Reading a request head
//
// [HeadReader.ReadHead] reads from a connection until the blank line that
// ends the head. It never reads more than MaxHeadBytes in all and never
// waits past Timeout in all, however slowly the client sends; it checks
// each line as it completes, so a bad byte is answered when it arrives.
// It returns the method, target, protocol and the normalized Host, and
// Raw: every byte it read, the head and anything read behind it (a body,
// a pipelined request), to be passed on unchanged with the connection.
//
// A failure is a *[HeadError] with the status to answer:
//
//	400  malformed request line or header line; bare LF or bare CR;
//	     obs-fold (a line starting with whitespace); whitespace before a
//	     colon; a header name that is not a token; control bytes in a
//	     value; HTTP/1.1 without Host; more than one Host field (even if
//	     equal); an invalid Host; an invalid absolute-form target
//	     (userinfo, empty host, a scheme other than http or https);
//	     the connection closed before the head ended (io.EOF when no byte
//	     came at all: nobody to answer)
//	408  the head did not arrive within Timeout
//	414  the request line is longer than MaxRequestLine
//	431  the head is longer than MaxHeadBytes, or has more than
//	     MaxHeaderFields fields
//	505  a protocol version other than HTTP/1.x
//
// Choices made where RFC 9112 allows more than one:
//
//   - Lines must end in CRLF. A bare LF, which RFC 9112 §2.2 lets a
//     recipient accept, is refused: real clients send CRLF, and a head
//     whose end two parsers could find in different places is how
//     requests are smuggled past a router.
//   - Up to two empty lines before the request line are skipped (§2.2
//     says to skip at least one; net/http's server skips as many).
//   - An absolute-form target ("GET http://b.example/ HTTP/1.1") decides
//     the host: its authority replaces the Host field's value, as §3.2.2
//     requires of an origin server, and as net/http does, so the worker
//     sees the request for the host it was routed by. An HTTP/1.1
//     request must still carry a Host field (§3.2). A CONNECT target
//     (authority-form, "host:port") decides the host the same way.
//   - HTTP/1.0 without Host is valid and has Host "": route it to the
//     listener's default. An empty Host field is the same.
//   - HTTP/1.2 to 1.9 are read as HTTP/1.1 would be; HTTP/0.9 (a
//     request line without a version) is refused.
//   - Bytes above 0x7F are refused in the request target (send them
//     percent-encoded) and accepted in field values (obs-text).
//
// Every head accepted here is also accepted by net/http with the same
// method, target and host: the tests and the fuzz target check it.
// A head with both Content-Length and Transfer-Encoding is refused (400):
// RFC 9112 §6.3 says to treat it as an error, and it is how request
// smuggling works. Otherwise the body is the worker's business: the
// worker reads it from Raw and the connection as one stream.
//
// # Peeking at a ClientHello
//
// [HelloReader.ReadClientHello] reads whole TLS records, header first,
// until it holds the complete ClientHello handshake message, however it
// is split across TCP segments and records. It consumes exactly those
// records and nothing after them (a TLS 1.3 client may send early data
// right behind the hello), and returns them in Raw to replay to the TLS
// server. It returns the server name (normalized) and the ALPN protocol
// list. Limits: 16 KiB per record (RFC 8446 §5.1), MaxBytes (64 KiB by
// default) for the hello, Timeout for the whole read. Real clients send
// 0.5 to 2 KB; a post-quantum key share (X25519MLKEM768) accounts for
// about 1.2 KB of that.
//
// Errors wrap [ErrNotTLS] when the first bytes are not a TLS handshake,
// and say what they look like instead ("the client sent plain HTTP ...
// to a TLS port", an SSL 2.0 hello, another protocol); and [ErrBadHello]
// for malformed or over-limit TLS, a duplicate extension, more than one
// host name, or an invalid server name. A *[HelloError] with Timeout set
// means the deadline passed.
//
// # The PROXY protocol
//
// Behind HAProxy, an AWS Network Load Balancer or another layer-4 proxy,
// every connection comes from the proxy, and the client's address
// arrives in a PROXY protocol header at the start of the connection,
// before the request or the ClientHello (HAProxy's proxy-protocol.txt,
// versions 1 and 2). On a listener configured for it, and only there:
//
//	peer := conn's remote address
//	if !trustedProxies.Contains(peer.Addr()) { close, unread }
//	ph, err := headReader.ReadProxyHeader(conn)  // bounded, deadline, *ProxyError
//	if err != nil { close, with no answer }     // errors.Is(err, ErrBadProxy)
//	client := peer; if !ph.Local { client = ph.Source }
//	then ReadHead or ReadClientHello on conn, as on any listener
//
// The specification forbids guessing whether a header is there: a
// listener requires one on every connection, or takes none. A plain
// HTTP request or a ClientHello where a header is required is refused
// ("no PROXY header"): it came from a client that reached the listener
// without going through the proxy, and must not be served under the
// proxy's address. A peer outside the trusted ranges ([CIDRList]) is
// closed before a byte is read: a header from it would let anyone
// choose their address.
//
// [HeadReader.ReadProxyHeader] reads the header and not a byte more, so
// the readers after it see the connection as the client sent it, and
// what they return (Head.Raw, ClientHello.Raw) is all that needs passing
// on. It first reads 15 bytes (the shortest header, "PROXY UNKNOWN\r\n");
// for v2, the rest of the 16-byte fixed part, then exactly the length
// it announces; for v1, each time the least a valid line could still
// need, up to the CRLF. That takes three reads for v2 and more for v1
// (six for a typical IPv4 line, nine for IPv6), each of bytes already in
// the socket: prefer v2 where the proxy can send it (HAProxy's
// send-proxy-v2). The reader's Timeout bounds the whole header, however its
// bytes are paced; the head or ClientHello read after it has its own.
// A client that sends nothing, or too little, gets a *[ProxyError] with
// Timeout set; one that closes gets one wrapping io.EOF or
// io.ErrUnexpectedEOF.
//
// The parser is strict, and refuses with a *ProxyError that names what
// was wrong:
//
//   - v1: exactly "PROXY", one space, "TCP4", "TCP6" or "UNKNOWN", then
//     for TCP4/TCP6 exactly four fields separated by single spaces, and
//     CRLF: no other white space, no bare CR or LF, only printable
//     US-ASCII, at most 107 bytes (MaxProxyV1Bytes, the
//     specification's bound, CRLF included). IPv4 addresses are four
//     decimal numbers without leading zeros (the specification forbids
//     them; some parsers read them as octal); IPv6 addresses are any
//     text form without a zone or brackets, IPv4-mapped ones included
//     ("::ffff:192.0.2.1", as inet_ntop writes them); the family must
//     match the protocol. Ports are 0 to 65535 in decimal without
//     leading zeros or a sign (the specification forbids leading zeros
//     for ports too). After "UNKNOWN" any text is ignored, as the
//     specification says, and the header is Local.
//   - v2: the version nibble must be 2 and the command LOCAL or PROXY;
//     the family and transport must be assigned values (AF_UNSPEC,
//     AF_INET, AF_INET6, AF_UNIX; UNSPEC, STREAM, DGRAM), with UNSPEC
//     in both or neither. A LOCAL header (the proxy's own connection: a
//     health check) is accepted whatever its block holds, which the
//     specification says to discard. A PROXY header over DGRAM (UDP) is
//     refused: this is a stream listener. AF_INET and AF_INET6 need the
//     12 and 36 bytes of their addresses; AF_UNIX (216 bytes) and
//     AF_UNSPEC (none) are accepted without an address, as Local. The
//     TLVs after the addresses are skipped, but must fill the header
//     exactly, and a CRC32C TLV must be the only one and match. The
//     whole header is at most 2,048 bytes (MaxProxyV2Bytes): the
//     specification's 536 covers the fixed part and the addresses;
//     this leaves at least 1,816 bytes for TLVs, about twice what
//     HAProxy sends with all of its own.
//
// The verdict, and the reason but for its quote of what came instead of
// a header, do not depend on how the bytes arrive. Addresses are kept
// as sent: Unmap an IPv4-mapped Source for display.
//
// What the daemon does with the address, and with X-Forwarded-For:
//
//   - The client is ph.Source from a trusted peer's header: it is
//     REMOTE_ADDR and REMOTE_PORT for PHP, the address in the access
//     log and in any per-client limit. A LOCAL or UNKNOWN header (and
//     AF_UNIX or AF_UNSPEC) leaves the connection's peer, the proxy
//     itself.
//   - X-Forwarded-For, Forwarded and X-Real-IP are passed to PHP
//     untouched (HTTP_X_FORWARDED_FOR and so on), neither read for
//     REMOTE_ADDR nor appended to: any client can write them, and a
//     layer-4 proxy that sends PROXY headers does not even parse HTTP.
//     An application that trusts them does so on its own terms.
//   - Routing still uses the listener's own local address, as without
//     a proxy: the table is keyed by the daemon's listeners. ph.Dest,
//     the address the client connected to on the proxy, may be logged.
//   - The header is read once per connection. A connection handed to a
//     worker, or handed back to a multiplexer for its next request,
//     carries the client address with it in its metadata: the socket
//     can only say the proxy's.
//
// # Testing
//
// The tests are table-driven and compare with go-cmp; slow-client tests
// send one byte at a time or stall mid-head over loopback TCP and check
// that the readers give up at the deadline with 408. The ClientHello
// tests use hellos recorded from curl, openssl s_client and a Go client
// (testdata/hello), re-split into small records. The PROXY header tests
// split every header at every byte, and check that the reader never asks
// for a byte past the header. Fuzz targets check properties:
// FuzzNormalizeHost, FuzzReadHead and FuzzClientHello against net/http
// and crypto/tls, FuzzProxyHeader whole against in pieces, its fields
// written back as v1 and v2, and its address parsers against net/netip;
// go test runs their seed corpora in testdata/fuzz, and
//
//	go test -run '^$' -fuzz '^FuzzReadHead$' -fuzztime 60s ./vhostroute
//
// explores further. Benchmarks: go test -run '^$' -bench . -benchmem
// ./vhostroute.
package vhostroute
