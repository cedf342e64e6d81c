package pool_test

import (
	"context"
	"log"
	"time"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/privdrop"
)

// A master with one on-demand pool for alice; its workers take messages
// from the dispatch socket and report on the scoreboard.
func Example() {
	var roles prefork.Roles
	roles.Add("worker", func(ctx context.Context, env *prefork.Env) error {
		w, err := pool.Join(env)
		if err != nil {
			return err
		}
		// Each message wakes one idle worker (see fdpass.SharedFileSocket).
		s, err := fdpass.SharedFileSocket(w.Dispatch)
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			w.Idle()
			msg, files, err := s.Recv(ctx) // mpmd receives a connection: RecvConn
			if err != nil {
				return nil
			}
			w.Busy("alice.example", "/")
			_ = msg // serve it
			for _, f := range files {
				f.Close()
			}
			if w.Done() {
				return nil // recycled after MaxRequests
			}
		}
	})
	roles.Main()

	id, err := privdrop.Resolve("alice", "", privdrop.Policy{})
	if err != nil {
		log.Fatal(err)
	}
	p, err := pool.New(pool.Config{Name: "alice", Role: "worker", Identity: &id, IdleTimeout: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	// Hand p.Dispatch() to the multiplexers, then:
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
