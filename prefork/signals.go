package prefork

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// StopKind says how a master was asked to stop.
type StopKind int

const (
	// StopContext: the context given to [WaitSignals] ended.
	StopContext StopKind = iota
	// StopGraceful: SIGTERM or SIGINT. Stop taking work, let what is in
	// flight finish (Group.Stop with a deadline).
	StopGraceful
	// StopImmediate: SIGQUIT. Kill the children now (Group.Kill).
	StopImmediate
)

func (k StopKind) String() string {
	switch k {
	case StopGraceful:
		return "graceful"
	case StopImmediate:
		return "immediate"
	default:
		return "context"
	}
}

// WaitSignals handles a master's signals until it is asked to stop:
// SIGHUP calls reload (when not nil) and keeps waiting; SIGTERM and SIGINT
// return StopGraceful; SIGQUIT returns StopImmediate; the end of ctx
// returns StopContext. The signals are handled only while it runs.
//
// ready, when not nil, is called once the handlers are installed, so a
// caller (or test) knows a signal sent from then on will be seen.
func WaitSignals(ctx context.Context, reload func(), ready func()) StopKind {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	defer signal.Stop(ch)
	if ready != nil {
		ready()
	}
	for {
		select {
		case <-ctx.Done():
			return StopContext
		case s := <-ch:
			switch s {
			case syscall.SIGHUP:
				if reload != nil {
					reload()
				}
			case syscall.SIGQUIT:
				return StopImmediate
			default:
				return StopGraceful
			}
		}
	}
}
