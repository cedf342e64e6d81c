package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/prefork"
)

const roleStatus = "status"

// The status page is served by its own process, unprivileged and
// chrooted like a multiplexer, so that the master still reads nothing
// from a client: it answers each message on a socket pair with the pools'
// stats, without looking at what the message says.
type statusServer struct {
	group prefork.Group
	conn  *os.File // the master's end
	done  chan struct{}
}

// statusPlan is what the status process is told.
type statusPlan struct {
	// Token, when set, is what clients must send as "Authorization:
	// Bearer TOKEN" (a TCP admin listener).
	Token string
}

// adminListener binds the status page's listener: a unix socket only
// root can connect to (mode 0600, in a directory only root can change), or
// a TCP address.
func adminListener(admin string) (*os.File, error) {
	path, isUnix := strings.CutPrefix(admin, "unix:")
	if !isUnix {
		ln, err := net.Listen("tcp", admin)
		if err != nil {
			return nil, fmt.Errorf("admin listener %s: %w", admin, err)
		}
		defer ln.Close()
		return inheritable(ln.(*net.TCPListener))
	}
	dir, err := walkRootDirs(filepath.Dir(path), true)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	unix.Close(dir)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("admin socket %s: the path exists and is not a socket", path)
		}
		os.Remove(path) // left by an earlier run
	}
	// Until the chmod below the socket has the umask's mode (0755 under
	// mpmd's 022): connecting needs write permission, so only root can
	// connect even then.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	defer ln.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln.File()
}

// takeAdmin adopts the status page's TCP socket when whoever started
// this master passed it (the master this one replaces, or systemd), so
// that it is not left over; startStatus binds it otherwise.
func (m *master) takeAdmin(admin string) error {
	if admin == "off" || strings.HasPrefix(admin, "unix:") {
		return nil
	}
	f, err := m.in.takeSocketIfPassed(admin)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	m.admin = f
	return nil
}

func (m *master) startStatus(cfg *Config) (*statusServer, error) {
	lf := m.admin
	if lf == nil {
		var err error
		if lf, err = adminListener(cfg.Server.Admin); err != nil {
			return nil, err
		}
		if strings.HasPrefix(cfg.Server.Admin, "unix:") {
			defer lf.Close()
		} else {
			m.admin = lf // kept: an upgrade passes it on
		}
	}
	pf, err := planFile("status", statusPlan{Token: cfg.Server.AdminToken})
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4*(statsHeader+statsChunk))
	mine, theirs := os.NewFile(uintptr(fds[0]), "status-master"), os.NewFile(uintptr(fds[1]), "status-child")
	defer theirs.Close()
	s := &statusServer{conn: mine, done: make(chan struct{})}
	s.group.Logger = m.log
	spec := prefork.Spec{Role: roleStatus, Path: m.exe, Exe: m.exeFile, Env: childEnv(), Files: []prefork.File{{Name: "admin", File: lf}, {Name: "stats", File: theirs}, {Name: "plan", File: pf}}}
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
	m.log.Info("status page", "listener", cfg.Server.Admin)
	go func() {
		defer close(s.done)
		buf := make([]byte, 16)
		for {
			// Blocking reads: this file never enters the poller. A
			// request is an exchange number, sent back unread.
			n, err := s.conn.Read(buf)
			if err != nil {
				return
			}
			if err := writeStats(s.conn, buf[:n], m.statsJSON()); err != nil {
				m.log.Warn("status page: answer the status process", "err", err)
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

// runStatus serves /status (JSON), / (text) and /metrics (Prometheus) on
// the admin listener.
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
	planF, err := env.File("plan")
	if err != nil {
		return err
	}
	var plan statusPlan
	if err := readPlan(planF, &plan); err != nil {
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
	var seq uint64
	fetch := func() (snapshot, error) {
		mu.Lock()
		defer mu.Unlock()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var st snapshot
		seq++
		b, err := readStats(c, seq)
		if err != nil {
			return st, err
		}
		return st, json.Unmarshal(b, &st)
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
		enc.Encode(st.Pools)
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
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		st, err := fetch()
		if err != nil {
			http.Error(w, "stats unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", promContentType)
		writeMetrics(w, st, time.Now())
	})
	// The version of the program this status process runs, which is
	// its master's (children run their master's own file).
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "mpmd/"+version)
		mux.ServeHTTP(w, r)
	})
	if plan.Token != "" {
		handler = requireToken(plan.Token, handler)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
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

// requireToken answers 401 to a request without "Authorization: Bearer
// token".
func requireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mpmd status"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeStatusText(w http.ResponseWriter, snap snapshot) {
	if strings.HasPrefix(snap.Landlock, "unavailable") {
		fmt.Fprintf(w, "LANDLOCK UNAVAILABLE (%s): each site's PHP can read every file its uid can\n\n", snap.Landlock)
	} else if snap.Landlock != "" {
		fmt.Fprintf(w, "landlock: %s\n\n", snap.Landlock)
	}
	st := snap.Pools
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tWORKERS\tIDLE\tBUSY\tSTARTING\tSPAWNED\tRETIRED\tKILLED\tCRASHED\tRECYCLED\tSERVED\tREFUSED\tBACKOFF\tCPU\tMEMORY")
	for _, s := range st {
		backoff := "-"
		if time.Until(s.BackoffUntil) > 0 {
			backoff = "until " + s.BackoffUntil.Format(time.TimeOnly)
		}
		cpu, mem := "-", "-"
		if s.Cgroup != nil {
			cpu = fmt.Sprintf("%.2fs", s.Cgroup.CPUSeconds)
			if s.Cgroup.MemoryBytes != nil {
				mem = fmt.Sprintf("%.1fM", float64(*s.Cgroup.MemoryBytes)/(1<<20))
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Workers, s.Idle, s.Busy, s.Starting, s.Spawned, s.Retired, s.Killed, s.Crashed, s.Recycled, s.Served, s.Refused, backoff, cpu, mem)
	}
	tw.Flush()
	for _, s := range st {
		for _, sl := range s.Slots {
			if sl.State == pool.Busy {
				from := ""
				if sl.Client.IsValid() {
					from = " from " + sl.Client.Addr().String()
				}
				fmt.Fprintf(w, "%s: pid %d busy %v on %s%s%s\n", s.Name, sl.PID, time.Since(sl.Since).Round(time.Millisecond), sl.Host, sl.Path, from)
			}
		}
	}
	for _, s := range st {
		if s.Cgroup != nil && len(s.Cgroup.NotEnforced) > 0 {
			fmt.Fprintf(w, "%s: limits NOT ENFORCED on this host: %s\n", s.Name, strings.Join(s.Cgroup.NotEnforced, " "))
		}
	}
}
