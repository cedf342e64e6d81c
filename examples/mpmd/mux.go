package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/vhostroute"
)

const roleMux = "mux"

// runMux is a multiplexer: unprivileged, chrooted into an empty
// directory, holding no capabilities. It accepts connections, reads each
// request head with a size bound and a deadline, routes it by Host, and
// passes the connection with the bytes already read to the pool of the
// vhost's identity. It also takes back connections a worker returns
// because their next request is for another identity.
func runMux(ctx context.Context, env *prefork.Env) error {
	planF, err := env.File("plan")
	if err != nil {
		return err
	}
	var plan muxPlan
	if err := readPlan(planF, &plan); err != nil {
		return err
	}
	m := &mux{log: env.Logger, plan: plan, heads: vhostroute.HeadReader{MaxHeadBytes: plan.MaxHeaderBytes, Timeout: plan.HeaderTimeout}}
	var b vhostroute.Builder[int]
	for i, v := range plan.VHosts {
		for _, l := range v.Listeners {
			b.Add(vhostroute.Entry[int]{ID: fmt.Sprintf("vhost %s on %s", v.Names[0], l), Listener: l, Names: v.Names, Default: v.Default, Value: i})
		}
	}
	if m.table, err = b.Build(); err != nil {
		return err
	}
	for i, name := range plan.Pools {
		f, err := env.File("pool-" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		s, err := fdpass.FileSocket(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("pool %s: %w", name, err)
		}
		m.pools = append(m.pools, s)
	}
	var wg sync.WaitGroup
	var lns []net.Listener
	for i, addr := range plan.Listeners {
		f, err := env.File("listen-" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("listener %s: %w", addr, err)
		}
		lns = append(lns, ln)
		wg.Add(1)
		go func() { defer wg.Done(); m.accept(ctx, ln, addr) }()
	}
	for i, s := range m.pools {
		// Hand-backs: a worker's connection whose next request is for
		// another identity.
		l := fdpass.NewListener(s)
		wg.Add(1)
		go func() { defer wg.Done(); m.accept(ctx, l, "handback:"+plan.Pools[i]) }()
		lns = append(lns, l)
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	// Connections being read or waiting for a worker finish on their
	// own deadlines.
	m.conns.Wait()
	return nil
}

type mux struct {
	log   *slog.Logger
	plan  muxPlan
	table *vhostroute.Table[int]
	pools []*fdpass.Socket
	heads vhostroute.HeadReader
	conns sync.WaitGroup
}

func (m *mux) accept(ctx context.Context, ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				m.log.Warn("accept", "listener", name, "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			m.log.Error("accept", "listener", name, "err", err)
			return
		}
		m.conns.Add(1)
		go func() {
			defer m.conns.Done()
			if m.plan.TLS[name] {
				m.routeTLS(c, name)
				return
			}
			m.route(c)
		}()
	}
}

// route reads one request head from c and passes c on. c is closed here
// in every case: after a pass the worker holds its own descriptor.
func (m *mux) route(c net.Conn) {
	defer c.Close()
	h, err := m.heads.ReadHead(c.(vhostroute.DeadlineReader))
	if err != nil {
		var he *vhostroute.HeadError
		if errors.As(err, &he) {
			if errors.Is(err, io.EOF) {
				return // connected and closed without a byte
			}
			m.answer(c, he.Status, he.Reason)
			return
		}
		m.answer(c, http.StatusBadRequest, "bad request")
		return
	}
	local := localAddrPort(c)
	vi, ok := m.table.Lookup(local, h.Host)
	if !ok {
		m.answer(c, m.plan.UnknownHost, "no site here answers to "+strconv.Quote(h.Host))
		return
	}
	v := m.plan.VHosts[vi]
	pool := m.plan.Pools[v.Pool]
	ctx, cancel := context.WithTimeout(context.Background(), m.plan.QueueTimeout[pool])
	defer cancel()
	info := fdpass.ConnInfo{Listener: local.String()}
	if fc, ok := c.(*fdpass.Conn); ok {
		info = fc.Info()
	}
	if err := m.pools[v.Pool].SendConn(ctx, c, h.Raw, info); err != nil {
		if errors.Is(err, fdpass.ErrQueueFull) {
			m.log.Warn("no worker in time", "pool", pool, "host", h.Host, "wait", m.plan.QueueTimeout[pool])
		} else {
			m.log.Error("pass connection", "pool", pool, "host", h.Host, "err", err)
		}
		m.answer(c, http.StatusServiceUnavailable, "the site is busy; try again")
	}
}

func localAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(c.LocalAddr().String())
	return ap
}

// answer writes a complete error response and closes the connection (by
// the caller's defer). The request never reaches a worker.
func (m *mux) answer(c net.Conn, status int, reason string) {
	body := fmt.Sprintf("%d %s: %s\n", status, http.StatusText(status), reason)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
