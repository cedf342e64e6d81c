package main

// Routing is one decision, made the same way everywhere: `mpmd -check`,
// the master, every multiplexer and every worker build the same
// vhostroute.Table from the same routing description, and look a request
// up by (the local address it reached, its host). The multiplexer passes
// a connection to the pool of the route it finds; a worker serves the
// requests whose route is its own identity's (the default vhost
// included) and hands the others back. Since both look at the same table,
// a request is handed back at most once before it is served.

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gompm/mpm/vhostroute"
)

// routing is what every process builds its table from: for each vhost
// (in configuration order) its names, listeners and identity. It holds
// no document root or setting beyond that, so that it can be given to
// every worker of every identity.
type routing struct {
	VHosts []routeVHost
	// Pools are the identities that serve at least one vhost, in the
	// order of the pools (and of their dispatch sockets).
	Pools []string
}

type routeVHost struct {
	Where     string   // where the vhost is configured ("mpmd.toml:12"), for errors
	Names     []string // normalized (vhostroute.NormalizePattern): server_name first
	Listeners []string // the listen addresses it answers on
	Default   bool     // the answer for unknown names on its listeners
	Identity  string
	Pool      int // index into routing.Pools
}

// route is the value of a routing table entry: which vhost a request is
// for and who serves it.
type route struct {
	VHost    int    // index into routing.VHosts, the configuration's vhosts
	Name     string // the vhost's server_name
	Identity string
	Pool     int
}

// table builds the routing table. Its errors name the vhosts involved,
// with where they are configured.
func (r *routing) table() (*vhostroute.Table[*route], error) {
	var b vhostroute.Builder[*route]
	for i, v := range r.VHosts {
		rt := &route{VHost: i, Name: v.Names[0], Identity: v.Identity, Pool: v.Pool}
		for _, l := range v.Listeners {
			b.Add(vhostroute.Entry[*route]{
				ID:       fmt.Sprintf("vhost %s (%s)", v.Names[0], v.Where),
				Listener: l,
				Names:    v.Names,
				Default:  v.Default,
				Value:    rt,
			})
		}
	}
	return b.Build()
}

// addrPort is the address of a connection's end as the table takes it.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// listenerSet answers whether a local address is one that mpmd listens
// on: a hand-back's socket must have been accepted on one of them.
type listenerSet []netip.AddrPort // an unspecified address matches any address on its port

func newListenerSet(addrs []string) (listenerSet, error) {
	var s listenerSet
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", a, err)
		}
		if host == "" || host == "*" {
			host = "0.0.0.0"
		}
		ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", a, err)
		}
		s = append(s, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return s, nil
}

func (s listenerSet) contains(local netip.AddrPort) bool {
	a := local.Addr().Unmap()
	for _, l := range s {
		if l.Port() == local.Port() && (l.Addr().IsUnspecified() || l.Addr() == a) {
			return true
		}
	}
	return false
}
