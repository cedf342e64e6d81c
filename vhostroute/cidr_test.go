package vhostroute

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseCIDRList(t *testing.T) {
	l, err := ParseCIDRList([]string{"192.0.2.0/24", "198.51.100.7", "2001:db8::/32", "2001:db8:ffff::1", "10.0.0.0/8", "172.16.0.0/12"})
	if err != nil {
		t.Fatal(err)
	}
	want := CIDRList{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8:ffff::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	}
	if len(l) != len(want) {
		t.Fatalf("got %v, want %v", l, want)
	}
	for i := range want {
		if l[i] != want[i] {
			t.Errorf("entry %d: %v, want %v", i, l[i], want[i])
		}
	}

	if l, err := ParseCIDRList(nil); err != nil || len(l) != 0 || l.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Errorf("empty list: %v, %v", l, err)
	}
}

func TestParseCIDRListErrors(t *testing.T) {
	tests := []struct {
		entry, err string
	}{
		{"", `vhostroute: address range "": empty`},
		{" 192.0.2.0/24", `vhostroute: address range " 192.0.2.0/24": contains white space`},
		{"192.0.2.0/24\n", "contains white space"},
		{"192.0.2.1/24", `vhostroute: address range "192.0.2.1/24": bits set after the prefix length (the range is 192.0.2.0/24; for one address write 192.0.2.1)`},
		{"2001:db8::1/32", "bits set after the prefix length (the range is 2001:db8::/32; for one address write 2001:db8::1)"},
		{"192.0.2.0/33", "prefix length out of range"},
		{"192.0.2.0/024", "bad bits after slash"},
		{"192.0.2.0/", "bad bits after slash"},
		{"192.0.2.256", "IPv4 field has value >255"},
		{"192.0.2.01", "leading zero"},
		{"example.com", "unexpected character"},
		{"fe80::1%eth0", "has a zone"},
		{"fe80::%eth0/64", "has a zone"},
		{"::ffff:192.0.2.0/120", "IPv4-mapped IPv6; write it as IPv4: 192.0.2.0/24"},
		{"::ffff:192.0.2.1", "IPv4-mapped IPv6; write it as IPv4: 192.0.2.1/32"},
		{"::ffff:0:0/80", "IPv4-mapped IPv6; write it as IPv4"},
	}
	for _, tc := range tests {
		l, err := ParseCIDRList([]string{"192.0.2.0/24", tc.entry})
		if err == nil || l != nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, %v; want an error with %q", tc.entry, l, err, tc.err)
		}
	}
	// Every bad entry is named.
	_, err := ParseCIDRList([]string{"192.0.2.1/24", "10.0.0.0/8", "nonsense", ""})
	for _, e := range []string{`"192.0.2.1/24"`, `"nonsense"`, `""`} {
		if err == nil || !strings.Contains(err.Error(), e) {
			t.Errorf("error %v does not name %s", err, e)
		}
	}
	if strings.Contains(err.Error(), "10.0.0.0/8") {
		t.Errorf("error %v names a good entry", err)
	}
}

func TestCIDRListContains(t *testing.T) {
	l, err := ParseCIDRList([]string{"192.0.2.0/24", "198.51.100.7", "2001:db8::/32", "fe80::/10"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"192.0.2.0", true},
		{"192.0.2.255", true},
		{"192.0.3.0", false},
		{"198.51.100.7", true},
		{"198.51.100.8", false},
		{"::ffff:192.0.2.1", true}, // a dual-stack socket's IPv4 peer
		{"::ffff:198.51.100.7", true},
		{"::ffff:198.51.100.8", false},
		{"::192.0.2.1", false}, // IPv4-compatible is not IPv4-mapped
		{"2001:db8::1", true},
		{"2001:db9::1", false},
		{"fe80::1%eth0", true}, // the zone does not matter
		{"::1", false},
		{"127.0.0.1", false},
	}
	for _, tc := range tests {
		if got := l.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if l.Contains(netip.Addr{}) {
		t.Error("the invalid Addr is contained")
	}
	all, _ := ParseCIDRList([]string{"0.0.0.0/0"})
	if all.Contains(netip.MustParseAddr("2001:db8::1")) || !all.Contains(netip.MustParseAddr("::ffff:203.0.113.9")) {
		t.Error("0.0.0.0/0 is every IPv4 address (mapped ones too) and no IPv6 one")
	}
}
