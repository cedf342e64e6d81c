package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/prefork"
)

const roleStatus = "status"

// maxStatsMsg bounds one stats message on the status socket.
const maxStatsMsg = 128 << 10

// The status page is served by its own process, unprivileged and
// chrooted like a multiplexer, so that the master still reads nothing
// from a client: it answers each message on a socket pair with the pools'
// stats, without looking at what the message says.
type statusServer struct {
	group prefork.Group
	conn  *os.File // the master's end
	done  chan struct{}
}

func (m *master) startStatus(cfg *Config) (*statusServer, error) {
	ln, err := net.Listen("tcp", cfg.Server.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", cfg.Server.Admin, err)
	}
	lf, err := inheritable(ln.(*net.TCPListener))
	ln.Close()
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 2*maxStatsMsg)
	mine, theirs := os.NewFile(uintptr(fds[0]), "status-master"), os.NewFile(uintptr(fds[1]), "status-child")
	defer theirs.Close()
	s := &statusServer{conn: mine, done: make(chan struct{})}
	s.group.Logger = m.log
	spec := prefork.Spec{Role: roleStatus, Path: m.exe, Env: childEnv(), Files: []prefork.File{{Name: "admin", File: lf}, {Name: "stats", File: theirs}}}
	if m.root {
		id, err := muxIdentity(cfg)
		if err != nil {
			mine.Close()
			return nil, err
		}
		spec.Identity = &id
	}
	if _, err := s.group.Start(spec); err != nil {
		mine.Close()
		return nil, err
	}
	m.log.Info("status page", "url", "http://"+cfg.Server.Admin+"/status")
	go func() {
		defer close(s.done)
		buf := make([]byte, 16)
		for {
			// Blocking reads: this file never enters the poller. Any
			// message is a request; its bytes are not looked at.
			if _, err := s.conn.Read(buf); err != nil {
				return
			}
			if _, err := s.conn.Write(m.statsJSON()); err != nil {
				return
			}
		}
	}()
	return s, nil
}

func (s *statusServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.group.Stop(ctx) // the child's end closes: the reader sees EOF
	<-s.done
	s.conn.Close()
}

// runStatus serves /status (JSON) and / (text) on the admin listener.
func runStatus(ctx context.Context, env *prefork.Env) error {
	lf, err := env.File("admin")
	if err != nil {
		return err
	}
	ln, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return err
	}
	sf, err := env.File("stats")
	if err != nil {
		return err
	}
	c, err := net.FileConn(sf)
	sf.Close()
	if err != nil {
		return err
	}
	var mu sync.Mutex
	buf := make([]byte, maxStatsMsg)
	fetch := func() ([]pool.Stats, error) {
		mu.Lock()
		defer mu.Unlock()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{'?'}); err != nil {
			return nil, err
		}
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		var st []pool.Stats
		return st, json.Unmarshal(buf[:n], &st)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := fetch()
		if err != nil {
			http.Error(w, "stats unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		st, err := fetch()
		if err != nil {
			http.Error(w, "stats unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeStatusText(w, st)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeStatusText(w http.ResponseWriter, st []pool.Stats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tWORKERS\tIDLE\tBUSY\tSTARTING\tSPAWNED\tRETIRED\tKILLED\tCRASHED\tRECYCLED\tSERVED\tREFUSED\tBACKOFF")
	for _, s := range st {
		backoff := "-"
		if time.Until(s.BackoffUntil) > 0 {
			backoff = "until " + s.BackoffUntil.Format(time.TimeOnly)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Workers, s.Idle, s.Busy, s.Starting, s.Spawned, s.Retired, s.Killed, s.Crashed, s.Recycled, s.Served, s.Refused, backoff)
	}
	tw.Flush()
	for _, s := range st {
		for _, sl := range s.Slots {
			if sl.State == pool.Busy {
				fmt.Fprintf(w, "%s: pid %d busy %v on %s%s\n", s.Name, sl.PID, time.Since(sl.Since).Round(time.Millisecond), sl.Host, sl.Path)
			}
		}
	}
}
