package main

// What the master cannot see for itself is checked by each identity:
// whether it can open its vhosts' document roots and read its keys. The
// master never opens a site's files (it would read them as root, which
// proves nothing about the site's user, and a key is none of its
// business), so `mpmd -check`, every start and every reload run a
// short-lived child per identity, as that identity, which reports what it
// cannot use. A configuration with a problem is refused before any of its
// workers start.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gompm/mpm/prefork"
)

const roleCheck = "check"

// checkVHost is what the check child looks at for one vhost.
type checkVHost struct {
	ServerName   string
	DocumentRoot string
	Names        []string // server_name and aliases, for the certificate
	Cert, Key    string   // empty without TLS
}

// checkIdentities runs the check child of every identity (as that
// identity when root) and returns one message per problem.
func checkIdentities(cfg *Config, exe string, exeFile *os.File, root bool) ([]string, error) {
	byID := map[string][]checkVHost{}
	for _, v := range cfg.VHosts {
		byID[v.Identity] = append(byID[v.Identity], checkVHost{ServerName: v.ServerName, DocumentRoot: v.DocumentRoot, Names: append([]string{v.ServerName}, v.Aliases...), Cert: v.TLSCertificate, Key: v.TLSKey})
	}
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	ids := sortedKeys(byID)
	var problems []string
	for _, name := range ids {
		spec := prefork.Spec{Role: roleCheck, Path: exe, Exe: exeFile, Env: childEnv()}
		if root {
			r := cfg.Identities[name].resolved
			spec.Identity = &r
		}
		out, err := runCheckChild(spec, byID[name])
		if err != nil {
			return nil, fmt.Errorf("check identity %s: %w", name, err)
		}
		for _, p := range out {
			problems = append(problems, "identity "+name+": "+p)
		}
	}
	return problems, nil
}

func runCheckChild(spec prefork.Spec, vhosts []checkVHost) ([]string, error) {
	plan, err := planFile("check", vhosts)
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	spec.Files = []prefork.File{{Name: "plan", File: plan}, {Name: "out", File: w}}
	var g prefork.Group
	c, err := g.Start(spec)
	w.Close()
	if err != nil {
		return nil, err
	}
	b, rerr := io.ReadAll(io.LimitReader(r, 1<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exit := c.Stop(ctx)
	if rerr != nil {
		return nil, rerr
	}
	var problems []string
	if err := json.Unmarshal(b, &problems); err != nil {
		return nil, fmt.Errorf("check child (%s) gave no answer", exit)
	}
	return problems, nil
}

// runCheck is the check child: it runs as the identity and writes a JSON
// list of problems to the inherited file "out".
func runCheck(ctx context.Context, env *prefork.Env) error {
	planF, err := env.File("plan")
	if err != nil {
		return err
	}
	out, err := env.File("out")
	if err != nil {
		return err
	}
	var vhosts []checkVHost
	if err := readPlan(planF, &vhosts); err != nil {
		return err
	}
	problems := []string{}
	for _, v := range vhosts {
		if r, err := os.OpenRoot(v.DocumentRoot); err != nil {
			problems = append(problems, fmt.Sprintf("vhost %s: this identity cannot open document_root: %v", v.ServerName, err))
		} else {
			r.Close()
		}
		if v.Cert != "" {
			problems = append(problems, checkCertKey(v, time.Now())...)
		}
	}
	b, _ := json.Marshal(problems)
	_, err = out.Write(b)
	return err
}

// preflight refuses a configuration whose files its identities cannot
// use, before any of its children start.
func (m *master) preflight(cfg *Config) error {
	problems, err := checkIdentities(cfg, m.exe, m.exeFile, m.root)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
