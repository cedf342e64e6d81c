package htaccess

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// hostMatch is one host argument of Allow from, Deny from or Require ip.
type hostMatch struct {
	all    bool         // "all"
	prefix netip.Prefix // an address, a partial IPv4 address, addr/bits or addr/mask
	never  bool         // a host name or env=: mpmd cannot evaluate it, so it never matches
}

func (h hostMatch) match(addr netip.Addr) bool {
	switch {
	case h.all:
		return true
	case h.never || !addr.IsValid():
		return false
	}
	return h.prefix.Contains(addr.Unmap())
}

// parseIP parses the address forms of mod_authz_host and
// mod_access_compat: "192.0.2.7", "10.1" (the whole octets given),
// "10.1.0.0/16", "10.1.0.0/255.255.0.0", "2001:db8::/32". ok is false
// for anything else (a host name).
func parseIP(s string) (netip.Prefix, bool, error) {
	if a, m, found := strings.Cut(s, "/"); found {
		addr, err := netip.ParseAddr(a)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, false, fmt.Errorf("bad network %q", s)
		}
		bits, err := strconv.Atoi(m)
		if err != nil {
			mask, merr := netip.ParseAddr(m)
			if merr != nil || !mask.Is4() || !addr.Is4() {
				return netip.Prefix{}, false, fmt.Errorf("bad network mask in %q", s)
			}
			b := mask.As4()
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			bits = 0
			for v&(1<<31) != 0 {
				bits++
				v <<= 1
			}
			if v != 0 {
				return netip.Prefix{}, false, fmt.Errorf("network mask in %q is not contiguous", s)
			}
		}
		pfx, err := addr.Prefix(bits)
		if err != nil || bits < 0 {
			return netip.Prefix{}, false, fmt.Errorf("bad prefix length in %q", s)
		}
		return pfx, true, nil
	}
	if addr, err := netip.ParseAddr(s); err == nil {
		if addr.Zone() != "" {
			return netip.Prefix{}, false, fmt.Errorf("address %q has a zone", s)
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), true, nil
	}
	// A partial IPv4 address: one to three whole octets, maybe with a
	// trailing dot.
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) > 3 {
		return netip.Prefix{}, false, nil
	}
	var b [4]byte
	for i, part := range parts {
		v, err := strconv.Atoi(part)
		if err != nil || !allDigits(part) || v > 255 {
			return netip.Prefix{}, false, nil
		}
		b[i] = byte(v)
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts)), true, nil
}
