// Package prefork is the master/worker process model for Go programs.
//
// Go cannot fork without exec: a forked copy of a Go program has one
// thread and a runtime that expects many. So a "prefork" worker is this
// same binary executed again in a role. A program registers its roles
// and calls [Roles.Main] first thing in main; in a process the master
// started, Main runs the role and exits, and the master's code never runs
// there.
//
//	func main() {
//		var roles prefork.Roles
//		roles.Add("worker", serveSite)
//		roles.Main() // a worker never gets past this line
//
//		// master: bind listeners, trim capabilities, start workers
//		var g prefork.Group
//		id, _ := privdrop.Resolve("alice", "", privdrop.Policy{})
//		g.Start(prefork.Spec{Role: "worker", Identity: &id, Files: []prefork.File{{Name: "dispatch", File: sock}}})
//		switch prefork.WaitSignals(ctx, reload, nil) {
//		case prefork.StopGraceful:
//			g.Stop(ctxWithDeadline)
//		case prefork.StopImmediate:
//			g.Kill()
//		}
//	}
//
// # What a child gets
//
// [Group.Start] starts a child with exactly what [Spec] names and nothing
// else: the files in Spec.Files (found by name with [Env.File]), stdin
// from /dev/null, stdout and stderr into a pipe whose lines the Group logs
// with the child's role and pid, and the environment in Spec.Env (the
// master's own environment is not passed on). With Spec.Identity the child
// becomes that identity before its role runs (privdrop.Prepare in the
// master, privdrop.Complete in the child). Before the role runs, the child
// also marks every inherited descriptor close-on-exec and closes any it
// was not told about, so a program the role runs (php-cgi) inherits only
// its stdio.
//
// # Lifetimes
//
// Every child gets SIGKILL when the master dies, however it dies. The
// kernel ties that signal to the thread that forked the child, and a Go
// thread ends whenever a goroutine locked to it returns, so a Group forks
// from one OS thread it reserves and never releases.
//
// A role's context is cancelled on SIGTERM or SIGINT; it should finish
// what it is doing and return. SIGHUP is ignored in children: a reload is
// the master's job. [Child.Stop] and [Group.Stop] send SIGTERM and wait
// until a deadline, then SIGKILL; [Group.Kill] kills at once. Each ended
// child is reaped and reported as an [Exit] (status or signal), through
// [Child.Exit] and the Group's OnExit hook. [WaitSignals] handles a
// master's own signals: SIGHUP reloads, SIGTERM/SIGINT stop gracefully,
// SIGQUIT stops at once.
package prefork
