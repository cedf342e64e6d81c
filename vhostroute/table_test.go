package vhostroute

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustBuild[V any](t testing.TB, entries ...Entry[V]) *Table[V] {
	t.Helper()
	var b Builder[V]
	for _, e := range entries {
		b.Add(e)
	}
	tab, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func testTable(t testing.TB) *Table[string] {
	return mustBuild(t,
		// the catch-all scope
		Entry[string]{Listener: "", Names: []string{"any.example"}, Value: "any"},
		Entry[string]{Listener: "*", Default: true, Value: "any-default"},
		// *:80
		Entry[string]{Listener: "*:80", Names: []string{"example.com", "www.example.com", "Alias.Example.COM."}, Value: "alice", Default: true},
		Entry[string]{Listener: ":80", Names: []string{"*.example.com"}, Value: "wild"},
		Entry[string]{Listener: "*:80", Names: []string{"*.shop.example.com", "bücher.example"}, Value: "shop"},
		Entry[string]{Listener: "*:80", Names: []string{"*.a.shop.example.com"}, Value: "deep"},
		Entry[string]{Listener: "*:80", Names: []string{"192.0.2.7", "[2001:db8::7]"}, Value: "by-ip"},
		// 192.0.2.1:80 hides *:80 for that address
		Entry[string]{Listener: "192.0.2.1:80", Names: []string{"example.com"}, Value: "bob"},
		// [2001:db8::1]:443 without a default
		Entry[string]{Listener: "[2001:db8::1]:443", Names: []string{"v6.example"}, Value: "v6"},
	)
}

func TestLookup(t *testing.T) {
	tab := testTable(t)
	any80 := netip.MustParseAddrPort("203.0.113.5:80")
	bob80 := netip.MustParseAddrPort("192.0.2.1:80")
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:80")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	other := netip.MustParseAddrPort("198.51.100.1:8080")
	tests := []struct {
		local netip.AddrPort
		host  string
		want  string // "" means no match
	}{
		{any80, "example.com", "alice"},
		{any80, "EXAMPLE.COM.", "alice"},
		{any80, "example.com:80", "alice"},
		{any80, "www.example.com", "alice"},
		{any80, "alias.example.com", "alice"},
		{any80, "foo.example.com", "wild"},
		{any80, "a.b.example.com", "wild"},
		{any80, "shop.example.com", "wild"},     // the wildcard *.shop... does not cover shop... itself
		{any80, "x.shop.example.com", "shop"},   // longer suffix wins
		{any80, "x.a.shop.example.com", "deep"}, // and longer still
		{any80, "a.shop.example.com", "shop"},
		{any80, "xn--bcher-kva.example", "shop"},
		{any80, "Bücher.example", "shop"},
		{any80, "192.0.2.7", "by-ip"},
		{any80, "[2001:DB8:0::7]:80", "by-ip"},
		{any80, "unknown.test", "alice"}, // the *:80 default
		{any80, "", "alice"},
		{any80, "bad host", ""}, // invalid: no match at all
		{any80, "example.com/..", ""},
		{any80, "any.example", "alice"}, // the catch-all scope is hidden by *:80
		{bob80, "example.com", "bob"},
		{bob80, "www.example.com", ""}, // 192.0.2.1:80 has no such name and no default
		{mapped, "example.com", "bob"},
		{v6, "v6.example", "v6"},
		{v6, "example.com", ""},
		{other, "any.example", "any"},
		{other, "example.com", "any-default"},
		{other, "", "any-default"},
	}
	for _, tt := range tests {
		got, ok := tab.Lookup(tt.local, tt.host)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("Lookup(%v, %q) = %q, %v; want %q", tt.local, tt.host, got, ok, tt.want)
		}
	}
	if tab.Len() != 9 {
		t.Errorf("Len() = %d, want 9", tab.Len())
	}
}

func TestLookupEmptyTable(t *testing.T) {
	var b Builder[int]
	tab, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := tab.Lookup(netip.MustParseAddrPort("127.0.0.1:80"), "example.com"); ok {
		t.Errorf("empty table found %v", v)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry[int]
		want    []string // each error line must contain one of these, in order
		dup     bool
	}{
		{
			name: "same name in two entries",
			entries: []Entry[int]{
				{ID: "alice.conf:3", Listener: "*:80", Names: []string{"example.com"}},
				{ID: "bob.conf:7", Listener: "*:80", Names: []string{"Example.COM."}},
			},
			want: []string{`name "example.com" on *:80 is claimed by both "alice.conf:3" and "bob.conf:7"`},
			dup:  true,
		},
		{
			name: "same wildcard, default labels",
			entries: []Entry[int]{
				{Listener: "192.0.2.1:443", Names: []string{"a.example", "*.example"}},
				{Listener: "192.0.2.1:443", Names: []string{"*.EXAMPLE"}},
			},
			want: []string{`name "*.example" on 192.0.2.1:443 is claimed by both entry #1 (a.example) and entry #2 (*.EXAMPLE)`},
			dup:  true,
		},
		{
			name: "same name twice in one entry",
			entries: []Entry[int]{
				{Listener: "*:80", Names: []string{"example.com", "example.com."}},
			},
			want: []string{`entry #1 (example.com) lists name "example.com." twice`},
			dup:  true,
		},
		{
			name: "two defaults",
			entries: []Entry[int]{
				{Listener: "*:80", Names: []string{"a.example"}, Default: true},
				{Listener: ":80", Names: []string{"b.example"}, Default: true},
			},
			want: []string{`entry #1 (a.example) and entry #2 (b.example) are both the default for *:80`},
			dup:  true,
		},
		{
			name: "bad names and listeners, all reported",
			entries: []Entry[int]{
				{Listener: "example.com:80", Names: []string{"a.example"}},
				{Listener: "*:http", Names: []string{"a.example"}},
				{Listener: "::1:80", Names: []string{"a.example"}},
				{Listener: "*:80", Names: []string{"a..example", "a.example:80", "w*.example", "*.192.0.2.1", "*.[::1]", "*", ""}},
				{Listener: "*:80"},
			},
			want: []string{
				`entry #1 (a.example): listener "example.com:80": address "example.com" is not an IP address`,
				`entry #2 (a.example): listener "*:http": port "http" is not a number`,
				`entry #3 (a.example): listener "::1:80": an IPv6 address must be in brackets`,
				`host "a..example": empty label`,
				`host "a.example:80": a port is not allowed here`,
				`host "w*.example": a wildcard must be a leading "*."`,
				`host "*.192.0.2.1": a wildcard cannot cover an IP address`,
				`host "*.[::1]": a wildcard cannot cover an IP address`,
				`host "*": a wildcard must be`,
				`host "": empty name`,
				`entry #5 has no names and is not a default`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder[int]
			for _, e := range tt.entries {
				b.Add(e)
			}
			tab, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded (%d entries), want errors %q", tab.Len(), tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Build: %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d: %q does not contain %q", i, lines[i], w)
				}
			}
			if errors.Is(err, ErrDuplicate) != tt.dup {
				t.Errorf("errors.Is(err, ErrDuplicate) = %v, want %v", !tt.dup, tt.dup)
			}
		})
	}
}

// The same name on different listener scopes is not a duplicate: that is
// what scopes are for.
func TestSameNameOtherScope(t *testing.T) {
	tab := mustBuild(t,
		Entry[string]{Listener: "*:80", Names: []string{"example.com"}, Value: "plain"},
		Entry[string]{Listener: "*:443", Names: []string{"example.com"}, Value: "tls"},
		Entry[string]{Listener: "192.0.2.1:443", Names: []string{"example.com"}, Value: "tls-ip"},
	)
	var got []string
	for _, l := range []string{"192.0.2.9:80", "192.0.2.9:443", "192.0.2.1:443"} {
		v, _ := tab.Lookup(netip.MustParseAddrPort(l), "example.com")
		got = append(got, v)
	}
	if diff := cmp.Diff([]string{"plain", "tls", "tls-ip"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A Builder's entries are copied: changing what was added, or the
// builder, leaves a built table alone.
func TestTableIndependentOfBuilder(t *testing.T) {
	var b Builder[string]
	names := []string{"a.example"}
	b.Add(Entry[string]{Listener: "*:80", Names: names, Value: "a"})
	tab, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	names[0] = "b.example"
	b.Add(Entry[string]{Listener: "*:80", Names: []string{"c.example"}, Value: "c"})
	if _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
	if v, ok := tab.Lookup(netip.MustParseAddrPort("127.0.0.1:80"), "a.example"); v != "a" || !ok {
		t.Errorf("after changing the builder: %q, %v", v, ok)
	}
	if _, ok := tab.Lookup(netip.MustParseAddrPort("127.0.0.1:80"), "c.example"); ok {
		t.Error("a later Add reached a table built earlier")
	}
}

func bigTable(t testing.TB, n int) *Table[int] {
	var b Builder[int]
	for i := 0; i < n; i++ {
		b.Add(Entry[int]{
			Listener: "*:443",
			Names:    []string{fmt.Sprintf("site%d.example.com", i), fmt.Sprintf("*.site%d.example.com", i)},
			Value:    i,
			Default:  i == 0,
		})
	}
	tab, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// Lookups do not allocate, for exact names, wildcards, misses, ports,
// upper case and IPv6 literals alike.
func TestLookupNoAlloc(t *testing.T) {
	tab := bigTable(t, 10000)
	local := netip.MustParseAddrPort("[::ffff:192.0.2.1]:443")
	for _, host := range []string{"site4711.example.com", "WWW.Site4711.Example.com.:443", "a.b.c.site9999.example.com", "nowhere.test", "[2001:db8::1]:443", ""} {
		allocs := testing.AllocsPerRun(200, func() { tab.Lookup(local, host) })
		if allocs != 0 {
			t.Errorf("Lookup(%q): %v allocations, want 0", host, allocs)
		}
	}
}

// Many goroutines look up at once; run with -race.
func TestLookupConcurrent(t *testing.T) {
	tab := bigTable(t, 1000)
	local := netip.MustParseAddrPort("127.0.0.1:443")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				n := (i * 7) % 1000
				if v, ok := tab.Lookup(local, fmt.Sprintf("x.site%d.example.com", n)); !ok || v != n {
					t.Errorf("got %d, %v; want %d", v, ok, n)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A listener bound to the unspecified address accepts on every address of
// the host, so an entry for "0.0.0.0:80" or "[::]:80" must match whatever
// local address a connection reached on that port (looking it up as the
// one address 0.0.0.0 made every request to such a listener a miss).
func TestUnspecifiedListenerIsAnyAddress(t *testing.T) {
	for _, l := range []string{"0.0.0.0:80", "[::]:80", ":80", "*:80"} {
		tab := mustBuild(t, Entry[string]{Listener: l, Names: []string{"example.com"}, Value: "site"})
		for _, local := range []string{"127.0.0.1:80", "192.0.2.7:80", "[2001:db8::5]:80", "[::ffff:10.0.0.1]:80"} {
			if v, ok := tab.Lookup(netip.MustParseAddrPort(local), "example.com"); !ok || v != "site" {
				t.Errorf("listener %s, connection to %s: got %q, %v; want the entry", l, local, v, ok)
			}
		}
		if _, ok := tab.Lookup(netip.MustParseAddrPort("127.0.0.1:81"), "example.com"); ok {
			t.Errorf("listener %s matched a connection on port 81", l)
		}
	}
	// Two spellings of "any address on port 80" are one scope: the same
	// name twice is a duplicate.
	var b Builder[string]
	b.Add(Entry[string]{Listener: "0.0.0.0:80", Names: []string{"example.com"}})
	b.Add(Entry[string]{Listener: "*:80", Names: []string{"example.com"}})
	if _, err := b.Build(); !errors.Is(err, ErrDuplicate) {
		t.Errorf("example.com on 0.0.0.0:80 and *:80: err = %v, want a duplicate", err)
	}
}

func TestNormalizePattern(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"Example.COM.", "example.com", ""},
		{"*.Example.com", "*.example.com", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"*.BÜCHER.example.", "*.xn--bcher-kva.example", ""},
		{"[2001:DB8::1]", "[2001:db8::1]", ""},
		{"example.com:80", "", "port"},
		{"a.*.example.com", "", "wildcard"},
		{"*.192.0.2.1", "", "IP address"},
		{"", "", "empty"},
		{"exa mple.com", "", "not allowed"},
	} {
		got, err := NormalizePattern(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("NormalizePattern(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalidHost)):
			t.Errorf("NormalizePattern(%q) = %q, %v; want an ErrInvalidHost error about %q", tt.in, got, err, tt.err)
		}
	}
}
