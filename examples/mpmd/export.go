package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// What -export writes: HAProxy map files for a front in front of several
// mpmd nodes. Each line is "name backend", where backend names the set of
// nodes that serve the name: the node names joined by "_" ("web1",
// "web1_web2"); the haproxy.cfg defines one backend of that name per set
// (the header lists them). Lines starting with "#" are comments, which
// HAProxy ignores.
const (
	exportHAProxyMap    = "haproxy-map"     // Host -> backend, for an L7 (mode http) front
	exportHAProxySNIMap = "haproxy-sni-map" // SNI -> backend, for TLS passthrough (mode tcp): keys stay on the nodes
)

// exportNode is one -node NAME=CONFIG: a node's name in the HAProxy
// configuration and the mpmd configuration it runs.
type exportNode struct {
	name, path string
	cfg        *Config
}

var nodeName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// parseNode parses "NAME=CONFIG" and loads the configuration.
func parseNode(s string) (exportNode, error) {
	name, path, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return exportNode{}, fmt.Errorf("-node %q: want NAME=CONFIG, such as web1=/etc/mpmd/web1.toml", s)
	}
	if !nodeName.MatchString(name) {
		return exportNode{}, fmt.Errorf("-node %q: node name %q: want 1 to 32 lower-case letters, digits and '-' (it becomes part of HAProxy backend names, joined by '_')", s, name)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return exportNode{}, fmt.Errorf("node %s: %w", name, err)
	}
	return exportNode{name: name, path: path, cfg: cfg}, nil
}

// exportEntry is one name of the map: the nodes that serve it and, by
// node, the vhost and user that do.
type exportEntry struct {
	nodes []string
	who   []string
}

// exportHAProxy writes the map of kind for nodes to w.
func exportHAProxy(w io.Writer, kind string, nodes []exportNode) error {
	if kind != exportHAProxyMap && kind != exportHAProxySNIMap {
		return fmt.Errorf("-export %q: want %s or %s", kind, exportHAProxyMap, exportHAProxySNIMap)
	}
	if len(nodes) == 0 {
		return fmt.Errorf("-export %s: give the nodes with -node NAME=CONFIG, once per node", kind)
	}
	entries := map[string]*exportEntry{}
	var wildcards, defaults []string
	for i, n := range nodes {
		if slices.ContainsFunc(nodes[:i], func(o exportNode) bool { return o.name == n.name }) {
			return fmt.Errorf("-node %s given twice", n.name)
		}
		cfg := n.cfg
		for _, v := range cfg.VHosts {
			if !exportServes(cfg, v, kind) {
				continue
			}
			id := cfg.Identities[v.Identity]
			who := fmt.Sprintf("%s: vhost %s, user %s (uid %d)", n.name, v.ServerName, exportUser(id), id.resolved.UID)
			if v.Default {
				defaults = append(defaults, who)
			}
			for _, name := range v.names {
				if strings.HasPrefix(name, "*.") {
					wildcards = append(wildcards, name+" on "+who)
					continue
				}
				e := entries[name]
				if e == nil {
					e = &exportEntry{}
					entries[name] = e
				}
				if !slices.Contains(e.nodes, n.name) {
					e.nodes = append(e.nodes, n.name)
				}
				e.who = append(e.who, who)
			}
		}
	}
	backends := map[string][]string{}
	for _, e := range entries {
		slices.Sort(e.nodes)
		backends[strings.Join(e.nodes, "_")] = e.nodes
	}
	front := "an L7 front (mode http): use_backend %[req.hdr(host),lower,word(1,:),map(/etc/haproxy/mpmd.map)]"
	if kind == exportHAProxySNIMap {
		front = "a TLS passthrough front (mode tcp, tcp-request inspect-delay, content accept if { req.ssl_hello_type 1 }): use_backend %[req.ssl_sni,lower,map(/etc/haproxy/mpmd-sni.map)]"
	}
	fmt.Fprintf(w, "# mpmd -export %s: %d nodes, %d names\n# for %s\n", kind, len(nodes), len(entries), front)
	fmt.Fprintln(w, "# backends (one per set of nodes serving a name; define each in haproxy.cfg):")
	for _, b := range sortedKeys(backends) {
		fmt.Fprintf(w, "#   %s: %s\n", b, strings.Join(backends[b], " "))
	}
	for _, d := range defaults {
		fmt.Fprintf(w, "# default vhost (unknown names; HAProxy's default_backend): %s\n", d)
	}
	for _, wc := range wildcards {
		fmt.Fprintf(w, "# wildcard, not in the map (a map matches whole names; add a rule such as hdr_end): %s\n", wc)
	}
	for _, name := range sortedKeys(entries) {
		e := entries[name]
		fmt.Fprintf(w, "# %s\n%s %s\n", strings.Join(e.who, "; "), name, strings.Join(e.nodes, "_"))
	}
	return nil
}

// exportServes reports whether vhost v answers on a listener of the kind
// of map: a plain listener for the Host map, a TLS one for the SNI map.
func exportServes(cfg *Config, v VHost, kind string) bool {
	tlsMap := kind == exportHAProxySNIMap
	for _, l := range v.Listen {
		if slices.Contains(cfg.Server.TLSListen, l) == tlsMap {
			return true
		}
	}
	return false
}

// exportUser names the Unix user of an identity as the configuration
// gives it.
func exportUser(id Identity) string {
	if id.User != "" {
		return id.User
	}
	return fmt.Sprint(id.resolved.UID)
}
