package fpm

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/fcgi"
	"github.com/gompm/mpm/internal/testenv"
)

func binary(t *testing.T) string {
	t.Helper()
	p, err := Find()
	if err != nil {
		if os.Getenv(testenv.RequireRootEnv) == "1" {
			t.Fatalf("%v (make test installs php-fpm as root)", err)
		}
		t.Skipf("skipped: %v", err)
	}
	return p
}

// request runs script through the pool's socket and returns its output.
func request(t *testing.T, sock, script string) string {
	t.Helper()
	c := &fcgi.Client{Dial: func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "unix", sock) }}
	var out bytes.Buffer
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out.Reset()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = c.Do(ctx, map[string]string{"SCRIPT_FILENAME": script, "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/t.php"}, nil, 0, &out)
		cancel()
		if err == nil {
			return out.String()
		}
	}
	t.Fatalf("request to %s: %v", sock, err)
	return ""
}

func php(t *testing.T, dir, code string) string {
	p := filepath.Join(dir, "t.php")
	if err := os.WriteFile(p, []byte("<?php "+code), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// groupMembers lists the processes of process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

func TestRun(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	cfg := Config{Binary: bin, Dir: dir, ProcessMax: 4, asRoot: os.Geteuid() == 0, Pools: []Pool{
		{Name: "a", Listen: filepath.Join(dir, "a.sock"), MaxChildren: 2, IdleTimeout: 10 * time.Second, MaxRequests: 100,
			AdminValues: map[string]string{"memory_limit": "77M", "open_basedir": dir},
			Values:      map[string]string{"precision": "7"},
			Env:         map[string]string{"APP_ENV": "prod"}},
		{Name: "b", Listen: filepath.Join(dir, "b.sock"), MaxChildren: 2, IdleTimeout: 10 * time.Second},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, nil, cfg) }()
	script := php(t, dir, `ini_set("memory_limit", "1G"); echo ini_get("memory_limit"), " ", ini_get("precision"), " ", getenv("APP_ENV"), " ", ini_get("open_basedir") != "" ? "basedir" : "none", " ", getmypid();`)
	out := request(t, cfg.Pools[0].Listen, script)
	body := out[strings.Index(out, "\r\n\r\n")+4:]
	f := strings.Fields(body)
	if len(f) != 5 || f[0] != "77M" || f[1] != "7" || f[2] != "prod" || f[3] != "basedir" {
		t.Errorf("pool a: %q, want 77M (an admin value ini_set cannot change), precision 7, APP_ENV prod, open_basedir set", body)
	}
	// Pool b has none of a's settings, whatever PHP process serves it.
	out = request(t, cfg.Pools[1].Listen, script)
	body = out[strings.Index(out, "\r\n\r\n")+4:]
	if f2 := strings.Fields(body); len(f2) != 4 || f2[0] != "1G" || f2[1] != "14" || f2[2] != "none" {
		t.Errorf("pool b: %q, want its own settings", body)
	}
	if fi, err := os.Stat(cfg.File()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("configuration file: %v, want mode 0600", err)
	}
	// FPM's group: the master and the children that served.
	phpPid, _ := strconv.Atoi(f[4])
	pgid, err := syscall.Getpgid(phpPid)
	if err != nil {
		t.Fatal(err)
	}
	if len(groupMembers(pgid)) < 2 {
		t.Fatalf("FPM's process group %d: %v", pgid, groupMembers(pgid))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := groupMembers(pgid); len(m) != 0 {
		t.Errorf("processes of FPM's group left after Run returned: %v", m)
	}
}

// A master that dies is started again; a retirement lets the request in
// progress finish.
func TestRestartAndRetire(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	cfg := Config{Binary: bin, Dir: dir, asRoot: os.Geteuid() == 0, Pools: []Pool{{Name: "a", Listen: filepath.Join(dir, "a.sock"), MaxChildren: 2, IdleTimeout: 10 * time.Second}}}
	retire := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), retire, cfg) }()
	pidOf := php(t, dir, `echo posix_getppid();`)
	out := request(t, cfg.Pools[0].Listen, pidOf)
	master, _ := strconv.Atoi(out[strings.Index(out, "\r\n\r\n")+4:])
	syscall.Kill(master, syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	out = request(t, cfg.Pools[0].Listen, pidOf) // waits through the back-off
	if again, _ := strconv.Atoi(out[strings.Index(out, "\r\n\r\n")+4:]); again == master || again == 0 {
		t.Errorf("after the master was killed: served by master %d, want a new one", again)
	}
	slow := filepath.Join(dir, "slow.php")
	os.WriteFile(slow, []byte(`<?php sleep(1); echo "finished";`), 0o644)
	res := make(chan string, 1)
	go func() {
		c := &fcgi.Client{Dial: func(ctx context.Context) (net.Conn, error) { return net.Dial("unix", cfg.Pools[0].Listen) }}
		var out bytes.Buffer
		err := c.Do(context.Background(), map[string]string{"SCRIPT_FILENAME": slow, "REQUEST_METHOD": "GET"}, nil, 0, &out)
		res <- fmt.Sprint(out.String(), err)
	}()
	time.Sleep(300 * time.Millisecond)
	close(retire)
	if out := <-res; !strings.HasSuffix(out, "finished<nil>") {
		t.Errorf("a request in progress when FPM retired: %q", out)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	base := Config{Binary: "/usr/sbin/php-fpm", Dir: "/tmp", Pools: []Pool{{Name: "a", Listen: "/tmp/a.sock"}}}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Pools[0].AdminValues = map[string]string{"open_basedir": `/a" ; x`} }, "double quote"},
		{func(c *Config) { c.Pools[0].Values = map[string]string{"x": "${HOME}"} }, `"${"`},
		{func(c *Config) { c.Pools[0].Env = map[string]string{"A B": "x"} }, "use letters"},
		{func(c *Config) { c.Pools[0].Name = "a]b" }, "pool name"},
		{func(c *Config) { c.Binary = "php-fpm" }, "not an absolute path"},
	} {
		cfg := base
		cfg.Pools = []Pool{base.Pools[0]}
		c.mod(&cfg)
		if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check = %v, want an error about %q", err, c.want)
		}
	}
	if err := base.Check(); err != nil {
		t.Errorf("a good configuration: %v", err)
	}
	if compareVersions("php-fpm8.2", "php-fpm8.10") >= 0 {
		t.Error("8.2 sorts after 8.10")
	}
}
