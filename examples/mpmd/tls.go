package main

// TLS: the multiplexer peeks at the ClientHello and routes on SNI without
// ever holding a key; the worker, already running as the site's user,
// loads its own vhosts' certificates and keys and terminates TLS itself.
// The master never opens a key file: `mpmd -check` and every (re)start
// read the keys in a short-lived child running as each identity.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/vhostroute"
)

// ---- configuration ----

// defaultListeners are the listeners of a vhost without `listen`: every
// plain listener, and every TLS listener when it has a certificate.
func (c *Config) defaultListeners(v *VHost) []string {
	ls := slices.Clone(c.Server.Listen)
	if v.TLSCertificate != "" {
		ls = append(ls, c.Server.TLSListen...)
	}
	return ls
}

func (c *Config) checkTLSListen() error {
	s := &c.Server
	for i, l := range s.TLSListen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return c.errAt("server.tls_listen", "tls_listen address %q: %v", l, err)
		}
		if slices.Contains(s.TLSListen[:i], l) {
			return c.errAt("server.tls_listen", "tls_listen address %q given twice", l)
		}
		if slices.Contains(s.Listen, l) {
			return c.errAt("server.tls_listen", "address %q is in both listen and tls_listen: a port speaks either HTTP or TLS", l)
		}
	}
	return nil
}

// checkVHostTLS checks vhost i's certificate settings once its listeners
// are known. It does not open the files: the master never reads a key,
// and the key is only readable by the identity (see checkIdentities).
func (c *Config) checkVHostTLS(i int) error {
	v := &c.VHosts[i]
	where := fmt.Sprintf("vhost.%d", i)
	switch {
	case v.TLSCertificate != "" && v.TLSKey == "":
		return c.errAt(where+".tls_certificate", "vhost %q has tls_certificate but no tls_key", v.ServerName)
	case v.TLSKey != "" && v.TLSCertificate == "":
		return c.errAt(where+".tls_key", "vhost %q has tls_key but no tls_certificate", v.ServerName)
	}
	for _, k := range []struct{ key, path string }{{"tls_certificate", v.TLSCertificate}, {"tls_key", v.TLSKey}} {
		if k.path != "" && !filepath.IsAbs(k.path) {
			return c.errAt(where+"."+k.key, "vhost %q: %s %q is not an absolute path", v.ServerName, k.key, k.path)
		}
	}
	onTLS := false
	for _, l := range v.Listen {
		if slices.Contains(c.Server.TLSListen, l) {
			onTLS = true
			if v.TLSCertificate == "" {
				return c.errAt(where+".listen", "vhost %q listens on TLS listener %s but has no tls_certificate and tls_key", v.ServerName, l)
			}
		}
	}
	if v.TLSCertificate != "" && !onTLS {
		return c.errAt(where+".tls_certificate", "vhost %q has a certificate but is on no TLS listener (set server.tls_listen)", v.ServerName)
	}
	return nil
}

// ---- multiplexer ----

// tlsAlert writes a fatal TLS alert record (RFC 8446 §6): the client sees
// why, not just a closed connection.
func tlsAlert(c net.Conn, desc byte) {
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte{21, 3, 1, 0, 2, 2, desc})
}

const (
	alertInternalError    = 80
	alertUnrecognizedName = 112
)

// routeTLS peeks at the ClientHello on c, a connection accepted on a TLS
// listener, and passes c with exactly the bytes read to the pool of the
// vhost its SNI names on that listener (no SNI, or a name no vhost has:
// the listener's default). What is not TLS never reaches a worker.
func (m *mux) routeTLS(c net.Conn) {
	m.routeTLSProxied(c, vhostroute.ProxyHeader{Local: true})
}

// routeTLSProxied is routeTLS for a connection whose PROXY header, ph,
// was read (a LOCAL one when there was none).
func (m *mux) routeTLSProxied(c net.Conn, ph vhostroute.ProxyHeader) {
	defer c.Close()
	hr := vhostroute.HelloReader{Timeout: m.plan.HeaderTimeout}
	hello, err := hr.ReadClientHello(c.(vhostroute.DeadlineReader))
	if err != nil {
		var he *vhostroute.HelloError
		switch {
		case len(hello.Raw) == 0:
			// Connected and closed (or timed out) without a byte.
		case errors.Is(err, vhostroute.ErrNotTLS) && errors.As(err, &he) && strings.Contains(he.Reason, "plain HTTP"):
			writeAnswer(c, http.StatusBadRequest, "this port speaks TLS: use https://", nil)
			drain(c)
		default:
			m.log.Debug("not a TLS ClientHello", "local", c.LocalAddr().String(), "remote", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	local := addrPort(c.LocalAddr())
	rt, ok := m.table.Lookup(local, hello.ServerName)
	if !ok {
		tlsAlert(c, alertUnrecognizedName)
		return
	}
	info := fdpass.ConnInfo{Listener: local.String(), TLS: true}
	m.withProxy(c, &info, ph)
	if err := m.pass(c, rt, hello.Raw, info, hello.ServerName); err != nil {
		tlsAlert(c, alertInternalError)
	}
}

// drain lets the client read an answer before the close: closing with
// unread bytes would reset the connection and could destroy the answer.
func drain(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// ---- worker ----

// ticketRotation is how long one session ticket key encrypts tickets;
// a ticket is accepted for up to two periods.
const ticketRotation = time.Hour

// workerTLS is a worker's TLS side: its identity's certificates, chosen
// by the same routing table lookup that routes requests.
type workerTLS struct {
	cfg      *tls.Config
	identity string
	table    *vhostroute.Table[*route]
	certs    map[int]*certEntry // by vhost index
	secret   []byte
}

type certEntry struct {
	vhost string
	cert  *tls.Certificate
}

// newWorkerTLS loads the certificates and keys of the plan's vhosts, as
// this worker's identity. A vhost whose files cannot be loaded is logged
// and left out (its handshakes fail), the other sites keep working.
// It returns nil when no vhost has a certificate.
func newWorkerTLS(plan *workerPlan, table *vhostroute.Table[*route], log *slog.Logger) *workerTLS {
	t := &workerTLS{identity: plan.Identity, table: table, certs: map[int]*certEntry{}, secret: plan.TicketSecret}
	for i := range plan.VHosts {
		v := &plan.VHosts[i]
		if v.TLSCertificate == "" {
			continue
		}
		cert, err := tls.LoadX509KeyPair(v.TLSCertificate, v.TLSKey)
		if err != nil {
			log.Error("vhost certificate not loaded; its TLS handshakes will fail", "vhost", v.ServerName, "err", err)
			continue
		}
		t.certs[v.N] = &certEntry{vhost: v.ServerName, cert: &cert}
	}
	if len(t.certs) == 0 {
		return nil
	}
	t.cfg = &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			rt, e := t.lookup(addrPort(hi.Conn.LocalAddr()), hi.ServerName)
			if e == nil {
				return nil, fmt.Errorf("no certificate of identity %s for server name %q (routed to %v)", t.identity, hi.ServerName, rt)
			}
			return e.cert, nil
		},
	}
	if len(t.secret) == 0 {
		t.cfg.SessionTicketsDisabled = true
	} else {
		t.setTicketKeys(time.Now())
	}
	return t
}

// lookup finds the route of a server name on a listener, as the
// multiplexer routed the connection, and this identity's certificate for
// it (nil when the route is another identity's or has none).
func (t *workerTLS) lookup(local netip.AddrPort, sni string) (*route, *certEntry) {
	rt, ok := t.table.Lookup(local, sni)
	if !ok || rt.Identity != t.identity {
		return rt, nil
	}
	return rt, t.certs[rt.VHost]
}

// ticketKey derives the session ticket key of an epoch from the pool's
// secret: every worker of the pool computes the same keys without
// talking to the others, and no other pool knows the secret.
func ticketKey(secret []byte, epoch int64) [32]byte {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "mpmd session ticket key, epoch %d", epoch)
	var k [32]byte
	copy(k[:], mac.Sum(nil))
	return k
}

// setTicketKeys installs the current epoch's key (it encrypts new
// tickets) and the previous and next ones (tickets from a worker whose
// clock is just across the boundary).
func (t *workerTLS) setTicketKeys(now time.Time) {
	e := now.Unix() / int64(ticketRotation/time.Second)
	t.cfg.SetSessionTicketKeys([][32]byte{ticketKey(t.secret, e), ticketKey(t.secret, e-1), ticketKey(t.secret, e+1)})
}

// rotate renews the ticket keys at each epoch boundary until ctx ends.
func (t *workerTLS) rotate(ctx context.Context) {
	if len(t.secret) == 0 {
		return
	}
	for {
		now := time.Now()
		next := now.Truncate(ticketRotation).Add(ticketRotation)
		select {
		case <-ctx.Done():
			return
		case <-time.After(next.Sub(now) + 10*time.Millisecond):
			t.setTicketKeys(time.Now())
		}
	}
}

// tlsState is the TLS state of the connection r came on, when net/http
// did not set r.TLS: an HTTP/1.1 connection over TLS reaches it wrapped
// in a vhostroute.CheckedConn, which net/http does not know for TLS.
func tlsState(r *http.Request) *tls.ConnectionState {
	if r.TLS != nil {
		return r.TLS
	}
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if cc, ok := c.(*vhostroute.CheckedConn); ok {
		if tc, ok := cc.NetConn().(*tls.Conn); ok {
			st := tc.ConnectionState()
			return &st
		}
	}
	return nil
}

type connKey struct{}

// tlsConnContext keeps the connection in its requests' context: the
// handler needs the listener it came through.
func tlsConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

type tlsInfoKey struct{}

// tlsRequest is what the handler learned about a TLS request.
type tlsRequest struct {
	cert *certEntry // the certificate the connection was given
}

// admitTLS decides whether a request that came over TLS, whose Host
// routes to rt (one of this identity's vhosts), may be served on this
// connection: when its Host routes where its SNI did, or when the
// connection's certificate covers the Host (a client may reuse a
// connection for another name the certificate covers, RFC 9113 §9.1.1).
// Otherwise the Host was never authenticated to the client, and it gets
// 421 Misdirected Request, which makes clients retry on a new connection.
// It returns the request to serve, or nil once it answered.
func (h *workerHandler) admitTLS(rw http.ResponseWriter, r *http.Request, rt *route) *http.Request {
	if h.tls == nil {
		http.Error(rw, "misdirected request: this connection does not serve "+rt.Name, http.StatusMisdirectedRequest)
		return nil
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	sniRoute, e := h.tls.lookup(addrPort(local), r.TLS.ServerName)
	if e == nil {
		http.Error(rw, "misdirected request: this connection does not serve "+rt.Name, http.StatusMisdirectedRequest)
		return nil
	}
	if sniRoute != rt {
		host, _ := vhostroute.NormalizeHost(r.Host)
		if leaf := e.cert.Leaf; leaf == nil || leaf.VerifyHostname(host) != nil {
			http.Error(rw, "misdirected request: the certificate of this connection does not cover "+host, http.StatusMisdirectedRequest)
			return nil
		}
	}
	return r.WithContext(context.WithValue(r.Context(), tlsInfoKey{}, &tlsRequest{cert: e}))
}

// ---- master ----

// ticketSecret returns the session ticket secret of an identity, the same
// across reloads (tickets stay valid) and never shared with another
// identity (the key includes uid and gid, not only the name).
func (m *master) ticketSecret(cfg *Config, name string) ([]byte, error) {
	id := cfg.Identities[name].resolved
	key := fmt.Sprintf("%s/%d/%d", name, id.UID, id.GID)
	m.ticketMu.Lock()
	defer m.ticketMu.Unlock()
	if s, ok := m.tickets[key]; ok {
		return s, nil
	}
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	if m.tickets == nil {
		m.tickets = map[string][]byte{}
	}
	m.tickets[key] = s
	return s, nil
}

// checkCertKey checks a vhost's certificate and key, as its identity: that
// it can read them, that they go together, cover the vhost's names and
// are valid now. It returns one message per problem.
func checkCertKey(v checkVHost, now time.Time) []string {
	var out []string
	bad := func(format string, args ...any) {
		out = append(out, "vhost "+v.ServerName+": "+fmt.Sprintf(format, args...))
	}
	certPEM, err := os.ReadFile(v.Cert)
	if err != nil {
		bad("cannot read tls_certificate: %v", err)
		return out
	}
	keyPEM, err := os.ReadFile(v.Key)
	if err != nil {
		bad("this identity cannot read tls_key: %v", err)
		return out
	}
	if fi, err := os.Stat(v.Key); err == nil && fi.Mode().Perm()&0o077 != 0 {
		bad("tls_key %s is mode %#o: only its owner should read it (0400 or 0600)", v.Key, fi.Mode().Perm())
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		bad("certificate %s and key %s do not go together: %v", v.Cert, v.Key, err)
		return out
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			bad("certificate %s: %v", v.Cert, err)
			return out
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		bad("certificate %s expired on %s", v.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		bad("certificate %s is not valid before %s", v.Cert, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	for _, n := range v.Names {
		probe := n
		if suffix, ok := strings.CutPrefix(n, "*."); ok {
			probe = "mpmd-check." + suffix // the name must be covered by a wildcard too
		}
		if err := leaf.VerifyHostname(probe); err != nil {
			bad("certificate %s does not cover the name %s", v.Cert, n)
		}
	}
	return out
}

// selfSigned makes a self-signed ECDSA P-256 certificate for names, valid
// from an hour ago until notAfter, and its key, both in PEM.
func selfSigned(names []string, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}
