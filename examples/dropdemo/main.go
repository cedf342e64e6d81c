// Command dropdemo shows what privdrop.Drop does to a Go process: it
// starts a few OS threads, prints the identity and privileges of every
// thread, drops to an unprivileged identity, prints them again, and shows
// that the way back to root is closed.
//
// Run it as root (make demo does) to see the drop; as another user it
// prints the threads and explains that there is nothing to drop.
//
//	go run ./examples/dropdemo -uid 2999 -gid 2999
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/privdrop"
)

func main() {
	user := flag.String("uid", "2999", "user to drop to: a name or a number")
	group := flag.String("gid", "2999", "group to drop to: a name or a number (needed for a uid without an account)")
	threads := flag.Int("threads", 4, "OS threads to start (locked goroutines) before the drop")
	flag.Parse()
	if err := run(*user, *group, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "dropdemo:", err)
		os.Exit(1)
	}
}

func run(user, group string, threads int) error {
	id, err := privdrop.Resolve(user, group, privdrop.Policy{})
	if err != nil {
		return err
	}
	// Goroutines locked to OS threads keep those threads alive and
	// distinct, so the drop has to reach threads other than its own.
	var started sync.WaitGroup
	started.Add(threads)
	stop := make(chan struct{})
	defer close(stop)
	for range threads {
		go func() {
			runtime.LockOSThread()
			started.Done()
			<-stop
		}()
	}
	started.Wait()

	fmt.Printf("before: pid %d, every thread\n", os.Getpid())
	if err := printThreads(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		fmt.Printf("\nnot dropping: this runs as uid %d, not root, so there is no privilege to drop.\n", os.Geteuid())
		fmt.Println("run it as root (sudo make demo) to see every thread change to", id)
		return nil
	}
	fmt.Printf("\ndropping to %v (groups %v, umask 027) ...\n\n", id, id.Groups)
	id.Umask = 0o027
	if err := privdrop.Drop(id); err != nil {
		return err
	}
	fmt.Println("after: every thread (verified by privdrop.Drop itself)")
	if err := printThreads(); err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("setuid(0):        ", errText(syscall.Setuid(0)))
	fmt.Println("setresuid(0,0,0): ", errText(syscall.Setresuid(0, 0, 0)))
	fmt.Println("setgroups([0]):   ", errText(syscall.Setgroups([]int{0})))
	return nil
}

func errText(err error) string {
	if err == nil {
		return "succeeded (this would be a bug)"
	}
	return "refused: " + err.Error()
}

func printThreads() error {
	ts, err := procstatus.Threads(0)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TID\tUID (r e s fs)\tGID (r e s fs)\tGROUPS\tCAPEFF\tCAPBND\tNONEWPRIVS")
	for _, s := range ts {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%016x\t%016x\t%v\n", s.TID, ids(s.UID[:]), ids(s.GID[:]), ids(s.Groups), s.CapEff, s.CapBnd, s.NoNewPrivs)
	}
	return w.Flush()
}

func ids(v []uint32) string {
	if len(v) == 0 {
		return "-"
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, " ")
}
