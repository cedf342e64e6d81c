//go:build !cgo

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gompm/mpm/internal/testenv"
)

// TestDebianPackage: make deb's script builds a package that installs on
// this machine, whose mpmd reads the configuration it installs, and that
// purges without a trace.
func TestDebianPackage(t *testing.T) {
	testenv.RequireRoot(t)
	requireTool(t, "dpkg-deb")
	requireTool(t, "go")
	out := t.TempDir()
	cmd := exec.Command("../../scripts/deb.sh", out)
	cmd.Env = append(os.Environ(), "VERSION=0.0~test1")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/deb.sh: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b))
	if filepath.Dir(deb) != out {
		t.Fatalf("scripts/deb.sh printed %q, want a file in %s", deb, out)
	}
	run := func(name string, args ...string) (string, error) {
		b, err := exec.Command(name, args...).CombinedOutput()
		return string(b), err
	}
	if o, err := run("dpkg", "-i", deb); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, o)
	}
	purged := false
	purge := func() {
		if o, err := run("dpkg", "--purge", "mpmd"); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, o)
		}
		purged = true
	}
	defer func() {
		if !purged {
			purge()
		}
	}()

	if o, _ := run("/usr/sbin/mpmd", "-version"); o != "mpmd 0.0~test1\n" {
		t.Errorf("mpmd -version: %q", o)
	}
	if o, _ := run("dpkg-query", "-W", "-f=${Conffiles}", "mpmd"); !strings.Contains(o, "/etc/mpmd/mpmd.toml") {
		t.Errorf("conffiles: %q", o)
	}
	for _, p := range []string{"/lib/systemd/system/mpmd.service", "/lib/systemd/system/mpmd.socket", "/etc/mpmd/sites.d", "/usr/share/man/man8/mpmd.8.gz"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("installed package: %v", err)
		}
	}
	// The example's document roots (/srv/...) do not exist here: those
	// must be the only problems, found by the identities' check
	// children running the installed binary.
	o, err := run("/usr/sbin/mpmd", "-check", "-config", "/etc/mpmd/mpmd.toml")
	if err != nil {
		for _, l := range strings.Split(strings.TrimSpace(o), "\n") {
			if !strings.Contains(l, "cannot open document_root") && !strings.HasSuffix(l, " problems") {
				t.Errorf("mpmd -check on the installed configuration: %q\n%s", l, o)
			}
		}
	} else if !strings.Contains(o, "is valid") {
		t.Errorf("mpmd -check: %s", o)
	}

	purge()
	for _, p := range []string{"/usr/sbin/mpmd", "/etc/mpmd", "/lib/systemd/system/mpmd.service"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after dpkg --purge", p)
		}
	}
}

// TestReadmeCommands: the commands the README prints for packaging and
// upgrades are the ones TestDebianPackage and TestUpgradeUnderLoad run.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"make deb\n", "dpkg -i bin/mpmd_*.deb\n", "/usr/sbin/mpmd -check -config /etc/mpmd/mpmd.toml\n", "kill -USR2 <master pid>\n"} {
		if !strings.Contains(string(readme), c) {
			t.Errorf("README.md no longer prints %q, which the tests run", strings.TrimSpace(c))
		}
	}
	if !strings.Contains(string(mk), "deb:\n\tscripts/deb.sh bin\n") {
		t.Error("make deb no longer runs scripts/deb.sh bin, which TestDebianPackage runs")
	}
}
