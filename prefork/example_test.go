package prefork_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/gompm/mpm/prefork"
)

// A program with a master and workers in one binary.
func ExampleRoles() {
	var roles prefork.Roles
	roles.Add("worker", func(ctx context.Context, env *prefork.Env) error {
		env.Logger.Info("worker ready", "identity", env.Identity)
		<-ctx.Done() // serve until asked to stop
		return nil
	})
	roles.Main() // in a worker, runs the role and exits

	g := prefork.Group{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	for range 2 {
		if _, err := g.Start(prefork.Spec{Role: "worker"}); err != nil {
			log.Fatal(err)
		}
	}
	stop := prefork.WaitSignals(context.Background(), func() { log.Print("reload") }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if stop == prefork.StopImmediate {
		g.Kill()
	} else {
		g.Stop(ctx)
	}
	fmt.Println("stopped:", stop)
}
