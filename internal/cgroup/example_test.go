package cgroup_test

import (
	"context"
	"errors"
	"log"
	"os/exec"
	"syscall"
	"time"

	"github.com/gompm/mpm/internal/cgroup"
)

// A master sets up its groups once, before it trims its capabilities,
// and says in its log what the host lets it enforce.
func Example() {
	s, err := cgroup.Detect()
	if err != nil {
		log.Fatal(err)
	}
	log.Print(s)
	parent, leaf := s.Layout()
	if leaf != "" {
		// A systemd service with Delegate=yes: leave the service's own
		// cgroup so that it may give controllers to the identities.
		if err := cgroup.MoveAll(s.SelfDir, leaf); err != nil {
			log.Fatal(err)
		}
	}
	p, err := cgroup.OpenParent(parent)
	if err != nil {
		log.Fatal(err)
	}
	g, err := p.Create("alice", cgroup.Limits{MemoryMax: 512 << 20, CPUWeight: 100, PidsMax: 256})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range g.NotEnforced {
		log.Printf("identity alice: %s", n)
	}
}

// With Strict, a host that cannot enforce a limit refuses to make the
// group at all.
func ExampleParent_Create_strict() {
	p, err := cgroup.OpenParent("/sys/fs/cgroup/mpmd")
	if err != nil {
		log.Fatal(err)
	}
	_, err = p.Create("bob", cgroup.Limits{MemoryMax: 256 << 20, Strict: true})
	if errors.Is(err, cgroup.ErrNotEnforced) {
		log.Fatalf("refusing to serve bob without his memory limit: %v", err)
	}
}

// A child is born in its identity's group (CLONE_INTO_CGROUP), already
// running as the identity; when the identity is retired, everything it
// started goes with it.
func ExampleGroup_Open() {
	p, err := cgroup.OpenParent("/sys/fs/cgroup/mpmd")
	if err != nil {
		log.Fatal(err)
	}
	g, err := p.Create("alice", cgroup.Limits{PidsMax: 256})
	if err != nil {
		log.Fatal(err)
	}
	f, err := g.Open()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/php-cgi", "-b", "/run/mpmd/alice.sock")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: 2001, Gid: 2001},
		UseCgroupFD: true,
		CgroupFD:    int(f.Fd()),
	}
	err = cmd.Start()
	f.Close()
	if err != nil {
		log.Fatal(err)
	}

	// Later: retire alice, grandchildren included.
	if err := g.Kill(); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	cmd.Wait()
	if err := g.Remove(); err != nil {
		log.Fatal(err)
	}
}
