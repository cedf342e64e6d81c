package vhostroute

import (
	"net/netip"
	"testing"
)

// go test -run '^$' -bench . -benchmem ./vhostroute

func BenchmarkLookup10000(b *testing.B) {
	tab := bigTable(b, 10000)
	local := netip.MustParseAddrPort("192.0.2.1:443")
	for _, bm := range []struct{ name, host string }{
		{"exact", "site4711.example.com"},
		{"exact-with-port-and-case", "Site4711.Example.COM:443"},
		{"wildcard", "www.site4711.example.com"},
		{"wildcard-deep", "a.b.c.site4711.example.com"},
		{"miss-to-default", "www.nowhere.test"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := tab.Lookup(local, bm.host); !ok {
					b.Fatal("no match")
				}
			}
		})
	}
}

func BenchmarkParseHead(b *testing.B) {
	var r HeadReader
	in := []byte(browserHead)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := r.ParseHead(in); err != nil {
			b.Fatal(err)
		}
	}
}

// ReadHead as the multiplexer uses it, over a reader that delivers the
// head in one read (as a browser's single segment arrives).
func BenchmarkReadHead(b *testing.B) {
	var r HeadReader
	in := []byte(browserHead)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	c := &chunkConn{}
	for b.Loop() {
		c.data, c.chunk = in, len(in)
		if _, err := r.ReadHead(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientHello(b *testing.B) {
	for _, name := range []string{"curl-7.88.1.bin", "go-1.26-mlkem.bin"} {
		raw := readTestdata(b, "hello", name)
		b.Run(name, func(b *testing.B) {
			var r HelloReader
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := r.ParseClientHello(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalizeHost(b *testing.B) {
	for _, h := range []string{"www.example.com", "WWW.Example.COM.:8080", "bücher.example"} {
		b.Run(h, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizeHost(h)
			}
		})
	}
}
