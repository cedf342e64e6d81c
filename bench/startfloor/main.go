// Command startfloor is bench/extra.sh's floor for the cold-start
// figure: the wall time to start the mpmd binary as a site's uid and see
// it exit, measured the way mpmd's master starts a worker (os/exec, the
// children's environment: PATH, GOMAXPROCS=1, and the role variables).
//
// The program is started in the worker role with no inherited files, so
// it runs the Go runtime's start, mpmd's package initialisation and the
// role dispatch, then exits at once (status 1: no pool to join). The
// uid, gid and an empty group list are set between fork and exec, as
// setpriv --reuid --regid --clear-groups would set them, but without
// setpriv's own exec in front: the floor is "fork, drop, exec a Go
// binary, exit, reap", nothing else.
//
// With -setpriv it also times the same start through setpriv (as root,
// setpriv dropping), one sample of each alternating, for comparison.
//
// Output: one line per sample, "direct MS" or "setpriv MS".
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	exe := flag.String("exe", "", "the mpmd binary")
	uid := flag.Int("uid", -1, "uid to run it as")
	gid := flag.Int("gid", -1, "gid to run it as")
	n := flag.Int("n", 5, "samples")
	setpriv := flag.String("setpriv", "", "also time the start through this setpriv binary")
	flag.Parse()
	if *exe == "" || *uid < 0 || *gid < 0 || *n < 1 {
		log.Fatal("usage: startfloor -exe MPMD -uid N -gid N [-n 5] [-setpriv /usr/bin/setpriv]")
	}
	// as prefork.Group.Start builds a worker's command (argv[0], working
	// directory, environment, parent-death signal), less the pipes and
	// files it passes
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GOMAXPROCS=1",
		"MPM_PREFORK_ROLE=worker", "MPM_PREFORK_FILES=", "MPM_PREFORK_DEATHSIGNAL=9"}
	direct := func() *exec.Cmd {
		c := &exec.Cmd{Path: *exe, Args: []string{"mpm-worker"}, Dir: "/", Env: env}
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: &syscall.Credential{
			Uid: uint32(*uid), Gid: uint32(*gid), Groups: []uint32{},
		}}
		return c
	}
	viaSetpriv := func() *exec.Cmd {
		c := exec.Command(*setpriv, "--reuid", fmt.Sprint(*uid), "--regid", fmt.Sprint(*gid), "--clear-groups", *exe)
		c.Dir, c.Env = "/", env
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return c
	}
	for range *n {
		sample("direct", direct())
		if *setpriv != "" {
			sample("setpriv", viaSetpriv())
		}
	}
}

// sample runs c (stdin, stdout and stderr on /dev/null) and prints the
// time from before the fork to after the reap. The worker role exits 1
// when it has no pool to join; anything else is an error.
func sample(label string, c *exec.Cmd) {
	t0 := time.Now()
	err := c.Run()
	d := time.Since(t0)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		log.Fatalf("%s: %v", label, err)
	}
	if err == nil {
		fmt.Fprintf(os.Stderr, "startfloor: %s exited 0: not the worker role exiting at once?\n", label)
		os.Exit(1)
	}
	fmt.Printf("%s %.3f\n", label, float64(d.Microseconds())/1000)
}
