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

func proxyBenchHeaders() []struct {
	name string
	in   []byte
} {
	return []struct {
		name string
		in   []byte
	}{
		{"v1-tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n")},
		{"v1-tcp6", []byte("PROXY TCP6 2001:db8:85a3::8a2e:370:7334 2001:db8::2 56324 443\r\n")},
		{"v1-unknown", []byte("PROXY UNKNOWN\r\n")},
		{"v2-tcp4", v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 56324, 443))},
		{"v2-tcp6", v2Header(0x21, 0x21, addrs("2001:db8:85a3::8a2e:370:7334", "2001:db8::2", 56324, 443))},
		{"v2-aws-nlb-crc32c", awsNLBHeader},
		{"v2-tcp4-haproxy-tlvs-crc32c", withCRC(v2Header(0x21, 0x11, addrs("192.0.2.1", "198.51.100.1", 56324, 443),
			tlv(0x01, []byte("h2")), tlv(0x02, []byte("www.example.com")), sslTLV))},
	}
}

func BenchmarkParseProxyHeader(b *testing.B) {
	for _, bm := range proxyBenchHeaders() {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			for b.Loop() {
				if _, err := ParseProxyHeader(bm.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// ReadProxyHeader as the multiplexer uses it, over a reader that hands
// over whatever is asked for (as a socket holding the header does): the
// reads it takes, and its one allocation, the buffer.
func BenchmarkReadProxyHeader(b *testing.B) {
	var r HeadReader
	for _, bm := range proxyBenchHeaders() {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			c := &segConn{}
			reads := 0
			for b.Loop() {
				*c = segConn{data: bm.in, deadlines: c.deadlines[:0]}
				if _, err := r.ReadProxyHeader(c); err != nil {
					b.Fatal(err)
				}
				reads += c.reads
			}
			b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
		})
	}
}
