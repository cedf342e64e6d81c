package vhostroute

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeHost(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(long63+".", 3) + strings.Repeat("b", 61) // 3*64+61 = 253
	tests := []struct {
		in, host, port string
	}{
		{"", "", ""},
		{"example.com", "example.com", ""},
		{"Example.COM", "example.com", ""},
		{"example.com.", "example.com", ""},
		{"EXAMPLE.com.:8080", "example.com", "8080"},
		{"example.com:", "example.com", ""},
		{":80", "", "80"},
		{"localhost", "localhost", ""},
		{"my_host.example", "my_host.example", ""},
		{"a-b.c-d.example", "a-b.c-d.example", ""},
		{"127.0.0.1", "127.0.0.1", ""},
		{"192.0.2.1:443", "192.0.2.1", "443"},
		{"[::1]", "[::1]", ""},
		{"[::1]:8443", "[::1]", "8443"},
		{"[2001:DB8:0:0:0:0:0:1]", "[2001:db8::1]", ""},
		{"[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"BÜCHER.example:81", "xn--bcher-kva.example", "81"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example", ""},
		{"faß.de", "xn--fa-hia.de", ""},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah", ""},
		{"a\u3002b", "a.b", ""},                    // ideographic full stop is a dot in UTS #46
		{"ü\u200b.example", "xn--tda.example", ""}, // zero-width space maps to nothing, as in browsers
		{name253, name253, ""},
		{name253 + ".", name253, ""},
		{long63 + ".com", long63 + ".com", ""},
		{"1.2.3.example", "1.2.3.example", ""},
		{"x:65535", "x", "65535"},
	}
	for _, tt := range tests {
		host, port, err := SplitHostPort(tt.in)
		if err != nil {
			t.Errorf("SplitHostPort(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff([2]string{tt.host, tt.port}, [2]string{host, port}); diff != "" {
			t.Errorf("SplitHostPort(%q) (-want +got):\n%s", tt.in, diff)
		}
		if h, err := NormalizeHost(tt.in); h != tt.host || err != nil {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", tt.in, h, err, tt.host)
		}
	}
}

func TestNormalizeHostRejects(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	tests := []struct {
		in, reason string
	}{
		{"exa mple.com", "character not allowed"},
		{"example.com\x00.evil", "character not allowed"},
		{"example.com\r\nX: y", "character not allowed"},
		{"example.com/../x", "character not allowed"},
		{"a/b", "character not allowed"},
		{"a\\b", "character not allowed"},
		{"user@example.com", "character not allowed"},
		{"exa%6dple.com", "character not allowed"},
		{"ex\tample.com", "character not allowed"},
		{".", "empty label"},
		{"..", "empty label"},
		{".example.com", "empty label"},
		{"a..b", "empty label"},
		{"example.com..", "empty label"},
		{"..:80", "empty label"},
		{long63 + "a.com", "label is longer"},
		{strings.Repeat("a.", 127) + "ab", "longer than 253"},
		{strings.Repeat("a", 5000), "longer than 253"},
		{"127.1", "numeric top-level"},
		{"0x7f.0.0.1", "numeric top-level"},
		{"0177.0.0.1", "numeric top-level"},
		{"1.2.3.4.5", "numeric top-level"},
		{"256.0.0.1", "numeric top-level"},
		{"123", "numeric top-level"},
		{"::1", "without brackets"},
		{"a:b:c", "without brackets"},
		{"example.com:80a", "invalid port"},
		{"example.com:65536", "invalid port"},
		{"example.com:123456", "invalid port"},
		{"example.com:-1", "invalid port"},
		{"[::1", "brackets"},
		{"[::1]x", "brackets"},
		{"::1]", "without brackets"},
		{"ex]ample", "brackets"},
		{"[192.0.2.1]", "IPv6 literal"},
		{"[]", "IPv6 literal"},
		{"[fe80::1%25eth0]", "zone"},
		{"[v1.fe]", "IPv6 literal"},
		{"[example.com]", "IPv6 literal"},
		{"xn--zz.example", "punycode"},
		{"xn--.example", "punycode"},
		{"b\xfcr.example", "punycode"}, // Latin-1, not UTF-8
		{"ü..example", "empty label"},
	}
	for _, tt := range tests {
		h, err := NormalizeHost(tt.in)
		if err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want an error (%s)", tt.in, h, tt.reason)
			continue
		}
		var he *HostError
		if !errors.As(err, &he) || !errors.Is(err, ErrInvalidHost) {
			t.Errorf("NormalizeHost(%q): error %v (%T) is not a *HostError wrapping ErrInvalidHost", tt.in, err, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("NormalizeHost(%q): error %q does not say %q", tt.in, err, tt.reason)
		}
		if len(tt.in) < 300 && he.Host != tt.in {
			t.Errorf("NormalizeHost(%q): HostError.Host = %q, want the value as given", tt.in, he.Host)
		}
	}
}

func TestNormalizeSNI(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM":   "example.com",
		"example.com.":  "example.com",
		"xn--bcher-kva": "xn--bcher-kva",
	} {
		got, err := normalizeSNI([]byte(in))
		if got != want || err != nil {
			t.Errorf("normalizeSNI(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "192.0.2.1", "[::1]", "example.com:443", "bücher.example", "a..b", "xn--zz"} {
		if got, err := normalizeSNI([]byte(in)); err == nil {
			t.Errorf("normalizeSNI(%q) = %q, want an error", in, got)
		}
	}
}

// The common case, a lower-case name, costs no allocation: the result is
// the input's own memory.
func TestNormalizeHostNoAlloc(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if h, err := NormalizeHost("www.example.com:443"); h != "www.example.com" || err != nil {
			t.Fatal(h, err)
		}
	})
	if allocs != 0 {
		t.Errorf("NormalizeHost allocates %v times for a lower-case name, want 0", allocs)
	}
}
