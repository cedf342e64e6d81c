package main

// PHP-FPM for the vhosts with php_mode = "fpm": the master starts one
// "php" process per identity and php-fpm binary, as that identity, which
// runs php-fpm (internal/fpm) with a pool per vhost. Its parent-death
// signal is SIGTERM, not SIGKILL: when the master dies, however it dies,
// it kills FPM's whole process group before it exits.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gompm/mpm/internal/fpm"
	"github.com/gompm/mpm/prefork"
)

const rolePHP = "php"

// phpPlan is what a php process is told: an FPM configuration, as
// fpm.Config holds it.
type phpPlan struct {
	Binary      string
	Dir         string
	Pools       []fpm.Pool
	ProcessMax  int
	StopTimeout time.Duration
	Confine     confinePlan // what FPM and its PHP may still reach
}

// runPHP is the php process: PHP-FPM as this identity until it is asked
// to stop (at once) or to retire (its requests finish).
func runPHP(ctx context.Context, env *prefork.Env) error {
	planF, err := env.File("plan")
	if err != nil {
		return err
	}
	var plan phpPlan
	if err := readPlan(planF, &plan); err != nil {
		return err
	}
	if err := confine(plan.Confine, env.Logger); err != nil {
		return err
	}
	return fpm.Run(ctx, env.Retiring(), fpm.Config{
		Binary: plan.Binary, Dir: plan.Dir, Pools: plan.Pools, ProcessMax: plan.ProcessMax, StopTimeout: plan.StopTimeout,
		Logger: env.Logger, Stderr: os.Stderr,
	})
}

// phpSpecs returns the php processes an identity's fpm vhosts need, one
// per php-fpm binary, and sets each vhost's socket in vhosts. gen makes
// the sockets of a generation differ from the one it replaces, whose FPM
// still finishes its requests.
func (m *master) phpSpecs(cfg *Config, name string, vhosts []workerVHost, defaults map[string]string, gen int, stopTimeout time.Duration) ([]prefork.Spec, []*os.File, error) {
	id := cfg.Identities[name]
	pp, err := cfg.phpPoolFor(id)
	if err != nil {
		return nil, nil, fmt.Errorf("identity %s: %w", name, err)
	}
	expire := time.Duration(0)
	if pc, err := cfg.poolFor(name, id); err == nil {
		if eff, err := pc.WithDefaults(); err == nil && eff.ExpireTimeout > 0 {
			expire = eff.ExpireTimeout
		}
	}
	dir := filepath.Join(cfg.Server.RunDir, "php", name)
	byBinary := map[string]*phpPlan{}
	for i := range vhosts {
		v := &vhosts[i]
		if !v.PHP || v.PHPMode != phpModeFPM {
			continue
		}
		plan := byBinary[v.PHPFPM]
		if plan == nil {
			plan = &phpPlan{Binary: v.PHPFPM, Dir: filepath.Join(dir, fmt.Sprintf("fpm-%d", len(byBinary))), ProcessMax: pp.Max, StopTimeout: stopTimeout,
				Confine: confineFor(cfg, name, vhosts)}
			byBinary[v.PHPFPM] = plan
		}
		values, admin := phpSettings(&v.VHost, defaults)
		env := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin"}
		if t := defaults["sys_temp_dir"]; t != "" {
			env["TMPDIR"] = t
		}
		maps.Copy(env, v.Env)
		v.FPMSocket = filepath.Join(dir, fmt.Sprintf("g%d-v%d.sock", gen, v.N))
		plan.Pools = append(plan.Pools, fpm.Pool{
			Name: fmt.Sprintf("v%d", v.N), Listen: v.FPMSocket,
			AdminValues: admin, Values: values, Env: env,
			MaxChildren: pp.Max, IdleTimeout: pp.IdleTimeout, MaxRequests: pp.MaxRequests,
			RequestTimeout: expire, Extensions: v.PHPExtensions,
		})
	}
	var specs []prefork.Spec
	var files []*os.File
	for _, bin := range slices.Sorted(maps.Keys(byBinary)) {
		plan := byBinary[bin]
		pf, err := planFile("php-"+name, plan)
		if err != nil {
			return nil, files, err
		}
		files = append(files, pf)
		spec := prefork.Spec{Role: rolePHP, Args: []string{name}, Path: m.exe, Exe: m.exeFile, Env: childEnv(), Files: []prefork.File{{Name: "plan", File: pf}}, DeathSignal: syscall.SIGTERM}
		if m.root {
			r := id.resolved
			spec.Identity = &r
		}
		specs = append(specs, spec)
	}
	return specs, files, nil
}

// phpGroup runs a generation's php processes and starts again one that
// ends while the generation runs.
type phpGroup struct {
	group   prefork.Group
	specs   []prefork.Spec
	m       *master
	stopped chan struct{}
	once    sync.Once

	mu      sync.Mutex
	backoff map[int]time.Duration // by spec
	spec    map[*prefork.Child]int
}

func (p *phpGroup) start() error {
	p.backoff, p.spec = map[int]time.Duration{}, map[*prefork.Child]int{}
	p.group.Logger = p.m.log
	p.group.OnExit = p.exited
	for i := range p.specs {
		if err := p.startOne(i); err != nil {
			return err
		}
	}
	return nil
}

func (p *phpGroup) startOne(i int) error {
	c, err := p.group.Start(p.specs[i])
	if err != nil {
		return fmt.Errorf("start PHP-FPM for %v: %w", p.specs[i].Args, err)
	}
	p.mu.Lock()
	p.spec[c] = i
	p.mu.Unlock()
	return nil
}

func (p *phpGroup) exited(c *prefork.Child, e prefork.Exit) {
	select {
	case <-p.stopped:
		return
	default:
	}
	p.mu.Lock()
	i := p.spec[c]
	delete(p.spec, c)
	if time.Since(c.Started) < 10*time.Second {
		p.backoff[i] = min(max(2*p.backoff[i], 100*time.Millisecond), time.Minute)
	} else {
		p.backoff[i] = 100 * time.Millisecond
	}
	wait := p.backoff[i]
	p.mu.Unlock()
	p.m.log.Error("php process ended; starting another", "identity", p.specs[i].Args, "pid", c.Pid, "exit", e.String(), "in", wait)
	go func() {
		select {
		case <-time.After(wait):
		case <-p.stopped:
			return
		}
		if err := p.startOne(i); err != nil {
			p.m.log.Error("restart php process", "err", err)
		}
	}()
}

// retire lets FPM finish its requests; stop ends it at once.
func (p *phpGroup) retire(d time.Duration) {
	p.once.Do(func() { close(p.stopped) })
	for _, c := range p.group.Children() {
		c.Retire()
	}
	deadline := time.After(d)
	for _, c := range p.group.Children() {
		select {
		case <-c.Done():
		case <-deadline:
		}
	}
	p.stop()
}

func (p *phpGroup) stop() {
	p.once.Do(func() { close(p.stopped) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.group.Stop(ctx)
}
