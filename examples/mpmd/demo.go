package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Demo identities: numeric ids without accounts, so the demo never acts
// as a user of the machine.
const (
	demoMuxUID   = 2100
	demoAliceUID = 2101
	demoBobUID   = 2102
)

var demoPages = map[string]string{
	"index.php": `<?php
printf("Hello from %s, served by PHP running as uid %d (gid %d).\n",
    $_SERVER['SERVER_NAME'], posix_geteuid(), posix_getegid());
`,
	"hello.txt": "A static file from %s.\n",
	"info.php":  "<?php phpinfo();\n",
}

// setupDemo creates two sites under dir (a new temporary directory when
// empty) and returns their configuration. As root each site belongs to
// its own numeric uid; otherwise both run as the current user.
func setupDemo(dir, listen, tlsListen string, out io.Writer) (*Config, error) {
	if tlsListen == "" {
		// The HTTP port + 363: 8080 -> 8443, as 80 -> 443.
		h, p, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("-demo-listen %q: %v", listen, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n+363 > 65535 {
			return nil, fmt.Errorf("-demo-listen %q: give -demo-tls-listen too", listen)
		}
		tlsListen = net.JoinHostPort(h, strconv.Itoa(n+363))
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "mpmd-demo-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Searchable by the site users (they reach their document roots
	// through it) and root-owned above the multiplexers' jail.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	root := os.Geteuid() == 0
	uid := os.Getuid()
	ids := map[string]int{"alice": demoAliceUID, "bob": demoBobUID}
	if !root {
		ids = map[string]int{"alice": uid, "bob": uid}
	}
	toml := fmt.Sprintf(`# mpmd demo configuration (generated)
[server]
listen = [%q]
tls_listen = [%q]
admin = "off"
run_dir = %q
min_uid = 100
`, listen, tlsListen, filepath.Join(dir, "run"))
	if root {
		toml += fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", demoMuxUID, demoMuxUID)
	}
	toml += "\n[pool]\nidle_timeout = \"60s\"\n"
	for _, name := range []string{"alice", "bob"} {
		id := ids[name]
		docroot := filepath.Join(dir, name, "htdocs")
		if err := os.MkdirAll(docroot, 0o755); err != nil {
			return nil, err
		}
		host := name + ".demo"
		for file, content := range demoPages {
			if file == "hello.txt" {
				content = fmt.Sprintf(content, host)
			}
			if err := os.WriteFile(filepath.Join(docroot, file), []byte(content), 0o644); err != nil {
				return nil, err
			}
		}
		if root {
			// Each site's files are its own and closed to the others.
			for _, p := range []string{filepath.Join(dir, name), docroot} {
				if err := os.Chown(p, id, id); err != nil {
					return nil, err
				}
				if err := os.Chmod(p, 0o700); err != nil {
					return nil, err
				}
			}
			for file := range demoPages {
				os.Chown(filepath.Join(docroot, file), id, id)
			}
		}
		toml += fmt.Sprintf(`
[identity.%s]
user = "%d"
group = "%d"

[[vhost]]
server_name = %q
aliases = ["www.%s"]
document_root = %q
identity = %q
php = true
access_log = %q
`, name, id, id, host, host, docroot, name, filepath.Join(dir, "log", name+".access.log"))
		if name == "alice" {
			toml += "default = true\n"
			// alice.demo also speaks TLS, with a key only alice can read.
			cert, key, err := demoCertificate(dir, name, host, id, root)
			if err != nil {
				return nil, err
			}
			toml += fmt.Sprintf("tls_certificate = %q\ntls_key = %q\n", cert, key)
		}
	}
	var exe string
	if root {
		// The workers run this binary as the site users, who cannot
		// reach a build in, say, /root: give them a copy they can run.
		var err error
		if exe, err = copyExecutable(filepath.Join(dir, "bin")); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, "mpmd.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(path, []byte(toml))
	if err != nil {
		return nil, err
	}
	cfg.exe = exe
	fmt.Fprintf(out, "mpmd demo: sites and configuration in %s\n", dir)
	if root {
		fmt.Fprintf(out, "  alice.demo runs as uid %d, bob.demo as uid %d, the multiplexers as uid %d (chrooted, no capabilities)\n", demoAliceUID, demoBobUID, demoMuxUID)
	} else {
		fmt.Fprintf(out, "  NOT ROOT: both sites run as uid %d, so ISOLATION IS OFF. Run as root to see one user per site.\n", uid)
	}
	_, port, _ := net.SplitHostPort(listen)
	fmt.Fprintf(out, "try:\n")
	for _, n := range []string{"alice", "bob"} {
		fmt.Fprintf(out, "  curl --resolve %s.demo:%s:127.0.0.1 http://%s.demo:%s/\n", n, port, n, port)
	}
	fmt.Fprintf(out, "  curl --resolve bob.demo:%s:127.0.0.1 http://bob.demo:%s/hello.txt\n", port, port)
	fmt.Fprintf(out, "  curl -H 'Host: nobody.demo' http://127.0.0.1:%s/   (unknown host: the default site, alice)\n", port)
	_, tport, _ := net.SplitHostPort(tlsListen)
	fmt.Fprintf(out, "  curl --http2 --cacert %s --resolve alice.demo:%s:127.0.0.1 https://alice.demo:%s/   (TLS, terminated by alice's own worker)\n",
		filepath.Join(dir, "tls", "alice.demo.crt"), tport, tport)
	fmt.Fprintf(out, "stop with Ctrl-C.\n")
	return cfg, nil
}

// copyExecutable copies this program into dir (mode 0755) and returns the
// copy's path.
func copyExecutable(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst := filepath.Join(dir, "mpmd")
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return "", err
	}
	return dst, f.Close()
}

// demoCertificate writes a self-signed certificate for host (readable by
// all: clients need it to trust the demo) and its key, mode 0400 and, as
// root, owned by the site's uid: only the site's own workers can read it.
func demoCertificate(dir, name, host string, uid int, root bool) (certPath, keyPath string, err error) {
	certPEM, keyPEM, err := selfSigned([]string{host, "www." + host}, time.Now().AddDate(0, 0, 90))
	if err != nil {
		return "", "", err
	}
	tdir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return "", "", err
	}
	certPath = filepath.Join(tdir, host+".crt")
	keyPath = filepath.Join(dir, name, host+".key")
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return "", "", err
	}
	os.Remove(keyPath)
	if err := os.WriteFile(keyPath, keyPEM, 0o400); err != nil {
		return "", "", err
	}
	if root {
		if err := os.Chown(keyPath, uid, uid); err != nil {
			return "", "", err
		}
	}
	return certPath, keyPath, nil
}
