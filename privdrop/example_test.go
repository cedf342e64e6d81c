package privdrop_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/gompm/mpm/privdrop"
)

// A policy refuses root and system accounts unless told otherwise, and
// says which value broke which rule.
func ExamplePolicy_Check() {
	var p privdrop.Policy // the zero value: no root, ids from 100 up
	for _, id := range []privdrop.Identity{
		{Name: "alice", UID: 2001, GID: 2001},
		{Name: "www-data", UID: 33, GID: 33},
		{UID: 0, GID: 0},
	} {
		err := p.Check(id)
		fmt.Println(err, errors.Is(err, privdrop.ErrBelowMin), errors.Is(err, privdrop.ErrRoot))
	}
	// Output:
	// <nil> false false
	// privdrop: identity www-data(33:33): uid 33 is below the minimum 100 (Policy.MinUID): id below the minimum true false
	// privdrop: identity 0:0: uid 0 is root's and is refused (Policy.AllowRoot not set): root identity refused false true
}

// Resolve accepts user and group names or numbers. A number without an
// account needs its group spelled out.
func ExampleResolve() {
	id, err := privdrop.Resolve("2999", "2999", privdrop.Policy{})
	fmt.Println(id, err)

	_, err = privdrop.Resolve("root", "", privdrop.Policy{})
	fmt.Println(errors.Is(err, privdrop.ErrRoot))
	// Output:
	// 2999:2999 <nil>
	// true
}

// Drop a root process to a site's identity, for good, on every thread.
func ExampleDrop() {
	id := privdrop.Identity{
		UID: 2001, GID: 2001, Groups: []uint32{2001},
		Chroot:  "/srv/jails/alice", // root-owned, see CheckJail
		Dir:     "/htdocs",          // inside the jail
		Nice:    5,
		Umask:   0o027,
		Rlimits: []privdrop.Rlimit{{Resource: unix.RLIMIT_NPROC, Cur: 64, Max: 64}},
	}
	if err := (privdrop.Policy{}).Check(id); err != nil {
		log.Fatal(err)
	}
	if err := privdrop.Drop(id); err != nil {
		// The process may be half-way between identities: exit.
		log.Fatal(err)
	}
	// From here on every thread is 2001:2001 with no capabilities, no way
	// back, and "/" is the jail.
}

// A master trims itself to what spawning needs and starts a worker that
// finishes its own drop in its first line of main.
func ExamplePrepare() {
	if err := privdrop.Trim(cap.SETUID, cap.SETGID, cap.SETPCAP, cap.SYS_CHROOT, cap.KILL); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", "-role=worker")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := privdrop.Prepare(cmd, privdrop.Identity{UID: 2001, GID: 2001, Chroot: "/srv/jails/alice"}); err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}

	// And in the worker, first thing in main:
	id, err := privdrop.Complete()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("worker running as %v", id)
}
