package vhostroute

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// CIDRList is a list of address ranges, such as the proxies trusted to
// send a PROXY header. The zero value contains nothing.
type CIDRList []netip.Prefix

// ParseCIDRList parses address ranges in CIDR notation ("192.0.2.0/24",
// "2001:db8::/32"); a bare address is a range of one ("192.0.2.1" is
// 192.0.2.1/32, "2001:db8::1" is 2001:db8::1/128).
//
// It refuses, naming the entry, what is not exactly that: an empty
// entry, spaces, a zone ("fe80::1%eth0"), a prefix with bits set past
// its length ("192.0.2.1/24": say 192.0.2.0/24 if that is meant, or
// 192.0.2.1 for the one host), and an IPv4-mapped IPv6 range or
// address ("::ffff:192.0.2.0/120": write it as IPv4; Contains matches an
// IPv4-mapped address against the IPv4 ranges). Every bad entry is
// reported, joined into one error.
func ParseCIDRList(entries []string) (CIDRList, error) {
	l := make(CIDRList, 0, len(entries))
	var errs []error
	for _, e := range entries {
		p, err := parseCIDR(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("vhostroute: address range %q: %s", e, err))
			continue
		}
		l = append(l, p)
	}
	if errs != nil {
		return nil, errors.Join(errs...)
	}
	return l, nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return netip.Prefix{}, errors.New("contains white space")
	}
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Prefix{}, errors.New("has a zone (an interface-scoped address cannot name a proxy)")
	}
	var p netip.Prefix
	if strings.IndexByte(s, '/') >= 0 {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() >= 96 {
			return netip.Prefix{}, fmt.Errorf("IPv4-mapped IPv6; write it as IPv4: %s", netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked())
		}
		return netip.Prefix{}, errors.New("IPv4-mapped IPv6; write it as IPv4")
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("bits set after the prefix length (the range is %s; for one address write %s)", m, p.Addr())
	}
	return p, nil
}

// Contains reports whether a is in one of the ranges. An IPv4-mapped
// IPv6 address (::ffff:192.0.2.1, as a dual-stack socket reports an IPv4
// peer) is matched as the IPv4 address it is, and a zone is ignored. The
// invalid Addr is in no range.
func (l CIDRList) Contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
