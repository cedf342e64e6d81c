package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/vhostroute"
)

// ListenerConfig is a [listener."ADDR"] table: settings of one address of
// server.listen or server.tls_listen.
type ListenerConfig struct {
	// ProxyProtocol requires a PROXY protocol header (v1 or v2) at the
	// start of every connection, from a peer in TrustedProxies; the
	// client address it carries is the one PHP, the access log and the
	// status page see.
	ProxyProtocol  bool     `toml:"proxy_protocol"`
	TrustedProxies []string `toml:"trusted_proxies"`
}

// checkListeners checks the [listener."ADDR"] tables: each names a
// configured address, and a PROXY listener has at least one trusted
// range (without one it would refuse every connection).
func (c *Config) checkListeners() error {
	s := &c.Server
	for _, addr := range sortedKeys(c.Listeners) {
		l := c.Listeners[addr]
		where := "listener." + addr
		if !slices.Contains(s.Listen, addr) && !slices.Contains(s.TLSListen, addr) {
			return c.errAt(where, "listener %q is not one of server.listen %v or server.tls_listen %v", addr, s.Listen, s.TLSListen)
		}
		switch {
		case l.ProxyProtocol && len(l.TrustedProxies) == 0:
			return c.errAt(where, "listener %q: proxy_protocol needs trusted_proxies, the addresses of the proxies (\"10.0.0.5\", \"10.0.0.0/24\")", addr)
		case !l.ProxyProtocol && len(l.TrustedProxies) > 0:
			return c.errAt(where, "listener %q: trusted_proxies without proxy_protocol = true does nothing", addr)
		}
		if _, err := vhostroute.ParseCIDRList(l.TrustedProxies); err != nil {
			return c.errAt(where+".trusted_proxies", "listener %q: trusted_proxies: %v", addr, err)
		}
	}
	return nil
}

// trustedProxies returns, by listen address in the order given, the
// trusted proxies of each PROXY protocol listener, nil for the others.
func (c *Config) trustedProxies(listeners []string) [][]string {
	out := make([][]string, len(listeners))
	for i, addr := range listeners {
		if l, ok := c.Listeners[addr]; ok && l.ProxyProtocol {
			out[i] = l.TrustedProxies
		}
	}
	return out
}

// sealKeyLen is the length of a seal key, in bytes.
const sealKeyLen = 32

// newSealKey makes the key with which multiplexers seal the client
// address of a PROXY connection they pass to a worker. The master makes
// it once and gives it to every generation's multiplexers: a worker
// retiring after a reload hands back to the new ones. An upgrade passes
// it to the new master (on a pipe, see envUpgrade) for the same reason.
func newSealKey() []byte {
	k := make([]byte, sealKeyLen)
	rand.Read(k) // never fails (crypto/rand, Go 1.24 and later)
	return k
}

// ---- multiplexer ----

// proxyListener is a listener that requires a PROXY header from one of
// its trusted proxies before anything else.
type proxyListener struct {
	m       *mux
	addr    string
	trusted vhostroute.CIDRList
	tls     bool
}

// refuse closes a connection that may not be routed: a peer that is not
// a trusted proxy (anyone may try; logged at debug level), or a trusted
// proxy that sent no valid header (a misconfigured proxy: info). Routing
// it with the proxy's own address would make every client the proxy.
func (p *proxyListener) refuse(c net.Conn, peer netip.AddrPort, trusted bool, err error) {
	log := p.m.log.Debug
	msg := "refused a connection from a peer that is not a trusted proxy"
	if trusted {
		msg = "refused a connection without a valid PROXY header"
		if !errors.Is(err, io.EOF) { // connected and closed at once: a TCP check
			log = p.m.log.Info
		}
	}
	log(msg, "listener", p.addr, "peer", peer, "err", err)
	c.Close()
}

// accepts reports whether c comes from a trusted proxy; it closes c when
// not.
func (p *proxyListener) accepts(c net.Conn) bool {
	peer := addrPort(c.RemoteAddr())
	if p.trusted.Contains(peer.Addr()) {
		return true
	}
	p.refuse(c, peer, false, nil)
	return false
}

// routeFast is mux.routeFast for a PROXY listener: the header and the
// request head usually arrive in one segment, so one non-blocking read
// gets both. A bad header is refused at once; anything else not
// complete continues in the slow path with what was read.
func (p *proxyListener) routeFast(c net.Conn, buf []byte) (bool, []byte) {
	if !p.accepts(c) {
		return true, nil
	}
	n := readNow(c, buf)
	if n <= 0 {
		return false, nil
	}
	read := buf[:n]
	ph, err := vhostroute.ParseProxyHeader(read)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return false, slices.Clone(read) // the rest of the header is on its way
		}
		p.refuse(c, addrPort(c.RemoteAddr()), true, err)
		return true, nil
	}
	rest := read[ph.Len:]
	h, err := p.m.heads.ParseHead(rest)
	if err != nil {
		return false, slices.Clone(read)
	}
	local := addrPort(c.LocalAddr())
	rt, ok := p.m.table.Lookup(local, h.Host)
	if !ok {
		return false, slices.Clone(read)
	}
	info := fdpass.ConnInfo{LocalAddr: c.LocalAddr(), RemoteAddr: c.RemoteAddr(), Listener: local.String()}
	if !p.m.withProxy(c, &info, ph) {
		return false, slices.Clone(read)
	}
	if err := p.m.pools[rt.Pool].TrySendConn(c, rest, info); err != nil {
		return false, slices.Clone(read)
	}
	c.Close()
	return true, nil
}

// route is the slow path of a plain PROXY listener: the header (the part
// not in prefix) within header_timeout, then the request head as on any
// listener.
func (p *proxyListener) route(c net.Conn, prefix []byte) {
	if !p.accepts(c) {
		return
	}
	ph, rest, err := p.m.readProxy(c, prefix)
	if err != nil {
		p.refuse(c, addrPort(c.RemoteAddr()), true, err)
		return
	}
	defer c.Close()
	info := fdpass.ConnInfo{LocalAddr: c.LocalAddr(), RemoteAddr: c.RemoteAddr()}
	if !p.m.withProxy(c, &info, ph) {
		return
	}
	p.m.routeHeadAfter(c, info, rest)
}

// routeTLS is mux.routeTLS for a PROXY listener: the header precedes the
// ClientHello.
func (p *proxyListener) routeTLS(c net.Conn) {
	if !p.accepts(c) {
		return
	}
	ph, _, err := p.m.readProxy(c, nil)
	if err != nil {
		p.refuse(c, addrPort(c.RemoteAddr()), true, err)
		return
	}
	p.m.routeTLSProxied(c, ph)
}

// readProxy reads the PROXY header of c, of which prefix was read
// already, bounded by the header reader's timeout, and returns the bytes
// of prefix that follow it.
func (m *mux) readProxy(c net.Conn, prefix []byte) (vhostroute.ProxyHeader, []byte, error) {
	pr := &prefixReader{DeadlineReader: c.(vhostroute.DeadlineReader), prefix: prefix}
	ph, err := m.heads.ReadProxyHeader(pr)
	return ph, pr.prefix, err
}

// prefixReader reads prefix, then the connection. ReadProxyHeader reads
// no further than the header, so what is left of prefix follows it.
type prefixReader struct {
	vhostroute.DeadlineReader
	prefix []byte
}

func (r *prefixReader) Read(b []byte) (int, error) {
	if len(r.prefix) > 0 {
		n := copy(b, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	return r.DeadlineReader.Read(b)
}

// withProxy puts the client address of ph into info (a LOCAL header,
// such as a proxy's health check, keeps the connection's own), and the
// seal with which the multiplexer will know it again when a worker
// hands the connection back. False when the socket cannot be named.
func (m *mux) withProxy(c net.Conn, info *fdpass.ConnInfo, ph vhostroute.ProxyHeader) bool {
	if !ph.Local {
		info.ProxyClient = netip.AddrPortFrom(ph.Source.Addr().Unmap(), ph.Source.Port())
	}
	if info.TLS {
		return true // a TLS connection never comes back
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	cookie, _, err := handbackSocket(tc)
	if err != nil {
		m.log.Error("PROXY connection", "err", err)
		return false
	}
	info.Seal = m.seal(cookie, addrPort(c.LocalAddr()), info.ProxyClient)
	return true
}

// seal authenticates, under the multiplexers' key, that the connection
// with this cookie (unique to the socket while the system runs) reached
// local from client (invalid: a LOCAL header, the peer's own address).
// A worker cannot make a seal for another address or connection.
func (m *mux) seal(cookie uint64, local, client netip.AddrPort) []byte {
	mac := hmac.New(sha256.New, m.plan.SealKey)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], cookie)
	mac.Write(b[:])
	mac.Write([]byte(local.String()))
	mac.Write([]byte{0})
	if client.IsValid() {
		mac.Write([]byte(client.String()))
	}
	return mac.Sum(nil)
}

// handbackProxy is what a hand-back's info says about a PROXY client, if
// the multiplexers sealed it for this very socket; ok is false when the
// seal is missing or wrong.
func (m *mux) handbackProxy(back fdpass.ConnInfo, cookie uint64, local netip.AddrPort) (client netip.AddrPort, ok bool) {
	if len(back.Seal) == 0 || !hmac.Equal(back.Seal, m.seal(cookie, local, back.ProxyClient)) {
		return netip.AddrPort{}, false
	}
	return back.ProxyClient, true
}

// isProxyListener reports whether local is the address of a PROXY
// protocol listener.
func (m *mux) isProxyListener(local netip.AddrPort) bool {
	for i, trusted := range m.plan.Proxy {
		if trusted != nil && listenerSet(m.listening[i:i+1]).contains(local) {
			return true
		}
	}
	return false
}

// accept serves a PROXY listener: plain ones with the fast path.
func (p *proxyListener) accept(ctx context.Context, ln net.Listener) {
	if p.tls {
		p.m.accept(ctx, ln, p.addr, nil, p.routeTLS)
		return
	}
	p.m.acceptWith(ctx, ln, p.addr, nil, p.routeFast, p.route)
}

// passedInfo is the ConnInfo a multiplexer passed with c, found through
// the wrappers around it (a vhostroute.CheckedConn): a worker hands it
// back as it was given, the seal on a PROXY client address included.
func passedInfo(c net.Conn) fdpass.ConnInfo {
	for c != nil {
		if fc, ok := c.(*fdpass.Conn); ok {
			return fc.Info()
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return fdpass.ConnInfo{}
}
