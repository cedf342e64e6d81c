package main

// Isolation beyond Unix permissions for an identity's processes (its
// workers, its PHP-FPM, and through them every PHP process): Landlock
// limits the files they may reach to the identity's own and the system's,
// and a seccomp filter refuses the system calls a web tenant has no use
// for. Both are applied by the child itself, after its privilege drop and
// before it runs anything of the tenant's; both are inherited by what it
// starts.

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/gompm/mpm/internal/landlock"
	"github.com/gompm/mpm/privdrop/seccomp"
)

// confinePlan is what a child of an identity may reach once confined.
type confinePlan struct {
	// Landlock: the paths beyond the system's (landlock.DefaultSystemPaths).
	Landlock  bool
	ReadExec  []string // PHP binaries outside the system's directories
	ReadOnly  []string // document roots, TLS files, the identity's read list
	ReadWrite []string // the identity's PHP directory, its writable paths
	Seccomp   bool
}

// confineFor is the confinement of identity name, serving vhosts.
func confineFor(cfg *Config, name string, vhosts []workerVHost) confinePlan {
	id := cfg.Identities[name]
	p := confinePlan{Landlock: id.landlock(), Seccomp: id.seccomp()}
	if id.resolved.Chroot != "" {
		// Inside a jail the paths differ and the jail already bounds
		// what the identity sees.
		p.Landlock = false
	}
	if !p.Landlock {
		return p
	}
	phpDir := filepath.Join(cfg.Server.RunDir, "php", name) // sessions, uploads, tmp, default error logs
	p.ReadWrite = append(p.ReadWrite, phpDir)
	p.ReadOnly = append(p.ReadOnly, id.Read...)
	p.ReadWrite = append(p.ReadWrite, id.Write...)
	for _, v := range vhosts {
		p.ReadOnly = append(p.ReadOnly, v.DocumentRoot)
		if v.Writable == nil {
			p.ReadWrite = append(p.ReadWrite, v.DocumentRoot)
		}
		for _, w := range v.Writable {
			p.ReadWrite = append(p.ReadWrite, filepath.Join(v.DocumentRoot, w))
		}
		for _, f := range []string{v.TLSCertificate, v.TLSKey} {
			if f != "" {
				p.ReadOnly = append(p.ReadOnly, f)
			}
		}
		if v.PHPErrorLog != "" && !within(v.PHPErrorLog, phpDir) {
			// PHP creates it when it first logs: its directory (the
			// site's own, as the configuration chose it; Unix
			// permissions still decide).
			p.ReadWrite = append(p.ReadWrite, filepath.Dir(v.PHPErrorLog))
		}
		for _, b := range []string{v.PHPCGI, v.PHPFPM} {
			if b != "" {
				p.ReadExec = append(p.ReadExec, b)
			}
		}
	}
	for _, l := range []*[]string{&p.ReadExec, &p.ReadOnly, &p.ReadWrite} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return p
}

// confine applies p to this process (all its threads) and so to every
// process it starts. A kernel without Landlock is logged loudly and
// tolerated (the identity then has Unix permissions only); any other
// failure is the child's end.
func confine(p confinePlan, log *slog.Logger) error {
	if p.Landlock {
		rs := landlock.DefaultSystemPaths()
		rs.ReadExec = append(rs.ReadExec, p.ReadExec...)
		rs.ReadOnly = append(rs.ReadOnly, p.ReadOnly...)
		rs.ReadWrite = append(rs.ReadWrite, p.ReadWrite...)
		st, err := rs.Restrict()
		switch {
		case errors.Is(err, landlock.ErrUnavailable):
			log.Warn("LANDLOCK UNAVAILABLE: this identity's PHP can read every file its uid can, other sites' world-readable files included", "err", err)
		case err != nil:
			return fmt.Errorf("landlock: %w", err)
		default:
			for _, s := range st.Skipped {
				if slices.Contains(p.ReadOnly, s.Path) || slices.Contains(p.ReadWrite, s.Path) {
					log.Warn("landlock: a path of the identity is missing: nothing under it is reachable", "path", s.Path, "err", s.Err)
				}
			}
		}
	}
	if p.Seccomp {
		if err := seccomp.Default().Install(); err != nil {
			if errors.Is(err, seccomp.ErrUnsupportedArch) || errors.Is(err, seccomp.ErrNoKernelSupport) {
				log.Warn("SECCOMP UNAVAILABLE: the identity's processes may make every system call", "err", err)
				return nil
			}
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	return nil
}

// landlockStatus describes, for the master's log and the status page,
// whether this kernel has Landlock.
func landlockStatus() string {
	abi, err := landlock.ABI()
	if err != nil {
		return "unavailable: " + err.Error()
	}
	return fmt.Sprintf("ABI %d", abi)
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel)
}
