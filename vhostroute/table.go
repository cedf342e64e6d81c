package vhostroute

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrDuplicate is wrapped by the error [Builder.Build] returns when two
// entries claim the same name, or two defaults the same listener.
var ErrDuplicate = errors.New("duplicate name")

// Entry is one virtual host: the names it answers to, the listener it
// belongs to, and the value a lookup returns for it (a pool, a site
// configuration, anything). It corresponds to one Apache <VirtualHost>
// block: ServerName and ServerAlias are Names, the address is Listener.
type Entry[V any] struct {
	// ID is how errors refer to the entry, such as the file and line it
	// came from. Empty means `entry #N (first name)`, N counting from 1
	// in the order of Add.
	ID string

	// Listener is the local address the entry is served on:
	//
	//	"192.0.2.1:443", "[2001:db8::1]:443"  this address and port only
	//	"*:443", ":443", "0.0.0.0:443", "[::]:443"
	//	                                       any address, this port
	//	"" or "*"                              any address, any port
	//
	// An unspecified address (0.0.0.0 or ::) means any address because a
	// socket bound to it accepts on every address of the host, and the
	// lookups see the address each connection actually reached: the bind
	// address of a listener can be given here as it is.
	//
	// As with Apache, a connection is matched against the names of the
	// most specific listener scope that has any entries, and only
	// against those: an address:port scope hides the *:port scope, which
	// hides the catch-all scope.
	Listener string

	// Names are the exact names ("example.com") and wildcards
	// ("*.example.com") the entry answers to, in any form NormalizeHost
	// accepts but without a port. A wildcard matches one or more labels
	// in front of its suffix ("www.example.com", "a.b.example.com", not
	// "example.com"); an exact name beats any wildcard, and a longer
	// wildcard suffix beats a shorter one. Wildcards apply to names, not
	// to IP literals.
	Names []string

	// Default makes this entry the answer for its listener scope when no
	// name matches, including requests without a name (HTTP/1.0 without
	// Host, TLS without SNI). At most one entry per scope may be the
	// default. A scope without one has no answer for unknown names.
	Default bool

	Value V
}

// Builder collects entries and builds a [Table]. The zero value is ready
// to use. A Builder is not safe for concurrent use.
type Builder[V any] struct {
	entries []Entry[V]
}

// Add appends an entry. Problems with it are reported by Build, together
// with every other problem found.
func (b *Builder[V]) Add(e Entry[V]) {
	e.Names = append([]string(nil), e.Names...) // the caller keeps its slice
	b.entries = append(b.entries, e)
}

// Table is an immutable routing table built by [Builder.Build]. Lookups
// are safe for concurrent use and do not allocate for ASCII host names.
type Table[V any] struct {
	values []V
	byAddr map[netip.AddrPort]*scope
	byPort map[uint16]*scope
	any    *scope
}

// scope holds the names of one listener scope; values are indexes into
// Table.values.
type scope struct {
	exact map[string]int32
	wild  map[string]int32 // key: the suffix after "*."
	def   int32            // -1: none

	// for error messages only, dropped after Build
	owner map[string]int
	defBy int
}

func newScope() *scope {
	return &scope{exact: map[string]int32{}, wild: map[string]int32{}, def: -1, owner: map[string]int{}, defBy: -1}
}

// listenerKey is the parsed form of Entry.Listener.
type listenerKey struct {
	kind int // 0 any, 1 port, 2 address and port
	ap   netip.AddrPort
}

func (k listenerKey) String() string {
	switch k.kind {
	case 0:
		return "any listener"
	case 1:
		return "*:" + strconv.Itoa(int(k.ap.Port()))
	}
	return k.ap.String()
}

func parseListener(s string) (listenerKey, error) {
	if s == "" || s == "*" {
		return listenerKey{}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return listenerKey{}, fmt.Errorf("listener %q: want address:port, *:port, :port or *", s)
	}
	host, ps := s[:i], s[i+1:]
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || ps == "" || ps[0] == '+' {
		return listenerKey{}, fmt.Errorf("listener %q: port %q is not a number from 0 to 65535", s, ps)
	}
	if host == "" || host == "*" {
		return listenerKey{kind: 1, ap: netip.AddrPortFrom(netip.Addr{}, uint16(port))}, nil
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.IndexByte(host, ':') >= 0 {
		return listenerKey{}, fmt.Errorf("listener %q: an IPv6 address must be in brackets", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return listenerKey{}, fmt.Errorf("listener %q: address %q is not an IP address (names are not resolved)", s, host)
	}
	if a.Zone() != "" {
		return listenerKey{}, fmt.Errorf("listener %q: an address with a zone is not supported", s)
	}
	if a.IsUnspecified() {
		return listenerKey{kind: 1, ap: netip.AddrPortFrom(netip.Addr{}, uint16(port))}, nil
	}
	return listenerKey{kind: 2, ap: netip.AddrPortFrom(a.Unmap(), uint16(port))}, nil
}

func (b *Builder[V]) label(i int) string {
	e := &b.entries[i]
	if e.ID != "" {
		return strconv.Quote(e.ID)
	}
	if len(e.Names) > 0 {
		return fmt.Sprintf("entry #%d (%s)", i+1, e.Names[0])
	}
	return fmt.Sprintf("entry #%d", i+1)
}

// Build checks every entry and returns the table. Its error lists every
// problem found (errors.Join), each naming the entry, and for a duplicate
// both entries (wrapping [ErrDuplicate]); invalid names wrap
// [ErrInvalidHost]. The Builder can be reused; the table does not share
// memory with it.
func (b *Builder[V]) Build() (*Table[V], error) {
	t := &Table[V]{
		values: make([]V, 0, len(b.entries)),
		byAddr: map[netip.AddrPort]*scope{},
		byPort: map[uint16]*scope{},
	}
	var errs []error
	for i := range b.entries {
		e := &b.entries[i]
		k, err := parseListener(e.Listener)
		if err != nil {
			errs = append(errs, fmt.Errorf("vhostroute: %s: %w", b.label(i), err))
			continue
		}
		var sc *scope
		switch k.kind {
		case 0:
			if t.any == nil {
				t.any = newScope()
			}
			sc = t.any
		case 1:
			if sc = t.byPort[k.ap.Port()]; sc == nil {
				sc = newScope()
				t.byPort[k.ap.Port()] = sc
			}
		default:
			if sc = t.byAddr[k.ap]; sc == nil {
				sc = newScope()
				t.byAddr[k.ap] = sc
			}
		}
		idx := int32(len(t.values))
		t.values = append(t.values, e.Value)
		if e.Default {
			if sc.defBy >= 0 {
				errs = append(errs, fmt.Errorf("vhostroute: %s and %s are both the default for %s: %w", b.label(sc.defBy), b.label(i), k, ErrDuplicate))
			} else {
				sc.def, sc.defBy = idx, i
			}
		}
		if len(e.Names) == 0 && !e.Default {
			errs = append(errs, fmt.Errorf("vhostroute: %s has no names and is not a default: nothing can reach it", b.label(i)))
		}
		for _, raw := range e.Names {
			wild, key, err := parsePattern(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("vhostroute: %s: %w", b.label(i), err))
				continue
			}
			ownerKey, target := key, sc.exact
			if wild {
				ownerKey, target = "*."+key, sc.wild
			}
			if prev, dup := sc.owner[ownerKey]; dup {
				if prev == i {
					errs = append(errs, fmt.Errorf("vhostroute: %s lists name %q twice (as %q after normalizing): %w", b.label(i), raw, ownerKey, ErrDuplicate))
				} else {
					errs = append(errs, fmt.Errorf("vhostroute: name %q on %s is claimed by both %s and %s: %w", ownerKey, k, b.label(prev), b.label(i), ErrDuplicate))
				}
				continue
			}
			sc.owner[ownerKey] = i
			target[key] = idx
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, sc := range t.allScopes() {
		sc.owner = nil
	}
	return t, nil
}

func (t *Table[V]) allScopes() []*scope {
	var all []*scope
	for _, sc := range t.byAddr {
		all = append(all, sc)
	}
	for _, sc := range t.byPort {
		all = append(all, sc)
	}
	if t.any != nil {
		all = append(all, t.any)
	}
	return all
}

// parsePattern normalizes a configured name or wildcard. For a wildcard
// it returns the suffix after "*.".
func parsePattern(raw string) (wild bool, key string, err error) {
	s := raw
	if strings.HasPrefix(s, "*.") {
		wild, s = true, s[2:]
	} else if strings.IndexByte(s, '*') >= 0 {
		return false, "", &HostError{Host: raw, Reason: "a wildcard must be a leading \"*.\" followed by a name"}
	}
	key, err = normalizeName(s)
	if err != nil {
		if wild {
			return false, "", &HostError{Host: raw, Reason: err.(*HostError).Reason}
		}
		return false, "", err
	}
	switch {
	case key == "":
		return false, "", &HostError{Host: raw, Reason: "empty name"}
	case wild && (key[0] == '[' || isDottedQuad([]byte(key))):
		return false, "", &HostError{Host: raw, Reason: "a wildcard cannot cover an IP address"}
	}
	return wild, key, nil
}

// Lookup returns the value for a host arriving on the listener address
// local (the connection's LocalAddr; an IPv4-mapped IPv6 address counts
// as IPv4). host is a Host header value or SNI server name, normalized or
// not: Lookup lower-cases it and strips a port and a trailing dot itself,
// without allocating for ASCII names (internationalized names, in
// Unicode or xn-- form, are checked against the IDNA rules, which
// allocates). A host is valid for Lookup exactly when NormalizeHost
// accepts it. An empty host matches only the default; a host that is not
// valid matches nothing, not even the default, and returns false.
//
// Order: the scope is the most specific of address:port, *:port and the
// catch-all that has entries; within it, an exact name, then the longest
// matching wildcard suffix, then the scope's default.
func (t *Table[V]) Lookup(local netip.AddrPort, host string) (v V, ok bool) {
	sc := t.scopeFor(local)
	if sc == nil {
		return v, false
	}
	var buf [MaxHostLen + 2]byte
	name, _, r := normalize(buf[:0], host, true)
	if r == rNonASCII {
		h, err := NormalizeHost(host)
		if err != nil {
			return v, false
		}
		name = append(buf[:0], h...)
		r = rOK
	}
	if r != rOK {
		return v, false
	}
	if bytes.Contains(name, []byte("xn--")) {
		// Hold a name in xn-- form to the same IDNA rules as
		// NormalizeHost, so that a host is valid here exactly when it is
		// there (this allocates; only internationalized names pay).
		if checkPunycode(host, string(name)) != nil {
			return v, false
		}
	}
	if len(name) > 0 {
		if i, ok := sc.exact[string(name)]; ok {
			return t.values[i], true
		}
		if name[0] != '[' {
			for j := 0; j < len(name); j++ {
				if name[j] == '.' {
					if i, ok := sc.wild[string(name[j+1:])]; ok {
						return t.values[i], true
					}
				}
			}
		}
	}
	if sc.def >= 0 {
		return t.values[sc.def], true
	}
	return v, false
}

func (t *Table[V]) scopeFor(local netip.AddrPort) *scope {
	if len(t.byAddr) > 0 {
		k := netip.AddrPortFrom(local.Addr().Unmap().WithZone(""), local.Port())
		if sc := t.byAddr[k]; sc != nil {
			return sc
		}
	}
	if sc := t.byPort[local.Port()]; sc != nil {
		return sc
	}
	return t.any
}

// Len returns the number of entries in the table.
func (t *Table[V]) Len() int { return len(t.values) }
