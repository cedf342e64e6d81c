// Command mpmd is the reference daemon built from the mpm packages: an
// mpm-itk / mpm-peruser equivalent that serves many sites from one
// machine, each site's code (static files and PHP through php-cgi) as its
// own Unix user. See README.md in this directory for the configuration.
//
//	mpmd -config /etc/mpmd.toml         run
//	mpmd -check -config /etc/mpmd.toml  validate and print what would run
//	mpmd -demo                          run a built-in demo on 127.0.0.1:8080
//	mpmd -export haproxy-map -node web1=/etc/mpmd.toml -node web2=...
//	                                    print an HAProxy map of the nodes' sites
//	mpmd -version                       print the version
//
// Signals to the master: SIGHUP reloads the configuration, SIGUSR2
// starts a new master from the program file now at this one's path and
// hands it the listening sockets (a binary upgrade), SIGTERM stops
// gracefully, SIGQUIT at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/prefork"
)

// version is reported by -version and the status page; set it at build
// time with -ldflags "-X main.version=1.2.3".
var version = "devel"

func main() {
	var roles prefork.Roles
	roles.Add(roleMux, runMux)
	roles.Add(roleWorker, runWorker)
	roles.Add(roleStatus, runStatus)
	roles.Add(roleCheck, runCheck)
	roles.Add(rolePHP, runPHP)
	roles.Main() // in a multiplexer or worker: runs it and exits

	os.Exit(cli(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mpmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration `file` (TOML)")
	check := fs.Bool("check", false, "validate the configuration, print a summary and exit")
	demo := fs.Bool("demo", false, "run a built-in demo with two sites on 127.0.0.1:8080")
	demoDir := fs.String("demo-dir", "", "with -demo: where to create the demo sites (default: a new temporary directory)")
	demoListen := fs.String("demo-listen", defaultListen, "with -demo: the address to listen on")
	demoTLSListen := fs.String("demo-tls-listen", "", "with -demo: the address to listen on for TLS (default: the -demo-listen port + 363)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	export := fs.String("export", "", "print what a front needs for the -node nodes and exit: `haproxy-map` (Host -> backend) or haproxy-sni-map (SNI -> backend, TLS passthrough)")
	var nodes []exportNode
	fs.Func("node", "with -export: a node, as `NAME=CONFIG` (its name in HAProxy, its mpmd configuration file); once per node", func(s string) error {
		n, err := parseNode(s)
		nodes = append(nodes, n)
		return err
	})
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "mpmd", version)
		return 0
	}
	if *export != "" || len(nodes) > 0 {
		if *export == "" {
			fmt.Fprintln(stderr, "mpmd: -node is for -export")
			return 2
		}
		if err := exportHAProxy(stdout, *export, nodes); err != nil {
			fmt.Fprintf(stderr, "mpmd: %v\n", err)
			return 1
		}
		return 0
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "mpmd: -log-level %q: %v\n", *level, err)
		return 2
	}
	opts := &slog.HandlerOptions{Level: lv}
	if toJournal(stderr) {
		// journald stamps every line itself.
		opts.ReplaceAttr = dropTime
	}
	log := slog.New(slog.NewTextHandler(stderr, opts))

	var cfg *Config
	var err error
	switch {
	case *demo:
		cfg, err = setupDemo(*demoDir, *demoListen, *demoTLSListen, stdout)
	case *configPath != "":
		cfg, err = LoadConfig(*configPath)
	default:
		fmt.Fprintln(stderr, "mpmd: give -config FILE, or -demo")
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "mpmd: %v\n", err)
		return 1
	}
	if *check {
		// Document roots and keys are read as their identities, never
		// by this process.
		problems, err := checkIdentities(cfg, cfg.exe, nil, os.Geteuid() == 0)
		if err != nil {
			fmt.Fprintf(stderr, "mpmd: %v\n", err)
			return 1
		}
		for _, p := range problems {
			fmt.Fprintf(stderr, "mpmd: %s\n", p)
		}
		if len(problems) > 0 {
			fmt.Fprintf(stderr, "mpmd: configuration %s: %d problems\n", cfg.file, len(problems))
			return 1
		}
		printSummary(stdout, cfg)
		return 0
	}
	if os.Geteuid() != 0 {
		log.Warn("NOT RUNNING AS ROOT: ISOLATION IS OFF. Every site runs as uid " + fmt.Sprint(os.Geteuid()) + "; run as root for one user per site.")
	}
	in, err := takeInherited()
	if err != nil {
		log.Error("mpmd cannot start", "err", err)
		return 1
	}
	m, err := newMaster(cfg, log, in)
	if err == nil {
		err = m.run(ctx, cfg)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("mpmd stopped", "err", err)
		return 1
	}
	return 0
}

// printSummary shows what the configuration runs, with every default
// filled in: listeners, vhosts with their normalized names, identities and
// their pools.
func printSummary(w io.Writer, cfg *Config) {
	fmt.Fprintf(w, "configuration %s is valid\n\nlisteners:\n", cfg.file)
	for _, l := range cfg.Server.Listen {
		fmt.Fprintf(w, "  %s http%s\n", l, anyAddress(l))
	}
	for _, l := range cfg.Server.TLSListen {
		fmt.Fprintf(w, "  %s tls%s\n", l, anyAddress(l))
	}
	fmt.Fprintf(w, "multiplexers: %d", cfg.Server.Multiplexers)
	if cfg.Server.MultiplexerUser != "" {
		fmt.Fprintf(w, " as %s", cfg.Server.MultiplexerUser)
	}
	fmt.Fprintf(w, ", chrooted in %s/empty\nunknown hosts: %d where a listener has no default vhost\n\nvhosts:\n", cfg.Server.RunDir, cfg.Server.UnknownHost)
	for i, v := range cfg.VHosts {
		extra := ""
		if v.Default {
			extra += " (default)"
		}
		if v.PHP {
			extra += " php " + v.PHPMode
		}
		if v.MaxClients > 0 {
			extra += fmt.Sprintf(" max_clients=%d", v.MaxClients)
		}
		fmt.Fprintf(w, "  %s -> identity %s, %s%s\n      on %s (%s)\n", strings.Join(cfg.routing.VHosts[i].Names, " "), v.Identity, v.DocumentRoot, extra, strings.Join(v.Listen, " "), v.where)
	}
	fmt.Fprintln(w, "\nidentities and their pools:")
	for _, n := range sortedKeys(cfg.Identities) {
		id := cfg.Identities[n]
		pc, _ := cfg.poolFor(n, id)
		eff, _ := pc.WithDefaults()
		fmt.Fprintf(w, "  %s: uid %d gid %d groups %v", n, id.resolved.UID, id.resolved.GID, id.resolved.Groups)
		if id.resolved.Chroot != "" {
			fmt.Fprintf(w, " chroot %s", id.resolved.Chroot)
		}
		fmt.Fprintf(w, "\n      pool: max %d requests at once, workers %d to %d of %d connections each, max_requests %d, idle_timeout %v, expire_timeout %v, queue_timeout %v\n",
			eff.MaxActive, eff.Min, eff.Max, eff.PerWorker, eff.MaxRequests, eff.IdleTimeout, eff.ExpireTimeout, eff.QueueTimeout)
	}
}

// anyAddress notes a listen address that accepts on every address.
func anyAddress(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return " (every address of this host)"
	}
	return ""
}

// toJournal reports whether w is the stream systemd connected to the
// journal: JOURNAL_STREAM holds its device and inode ("dev:ino"), which
// a redirected stderr no longer matches.
func toJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	v := os.Getenv("JOURNAL_STREAM")
	if !ok || v == "" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return v == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
