package pool_test

import (
	"context"
	"log"
	"net"
	"time"

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
		c, err := net.FileConn(w.Dispatch)
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); c.Close() }()
		buf := make([]byte, 64<<10)
		for {
			w.Idle()
			n, err := c.Read(buf) // one message; mpmd receives a connection with fdpass
			if err != nil {
				return nil
			}
			w.Busy("alice.example", "/")
			_ = buf[:n] // serve it
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
