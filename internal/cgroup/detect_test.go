package cgroup

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The machine this package was written on: systemd-style hybrid mounts,
// every controller but hugetlb bound to a v1 hierarchy.
const hybridMountinfo = `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// Debian 12 under systemd: one cgroup2 mount, nothing else.
const pureMountinfo = `24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
27 24 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestParseMountinfo(t *testing.T) {
	s, err := parseMountinfo(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	want := Support{
		Mount: "/sys/fs/cgroup/unified", MountRoot: "/", Hybrid: true,
		V1Controllers: []string{"cpu", "cpuacct", "cpuset", "memory", "pids"},
		V1Mounts: map[string]string{
			"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct", "cpuset": "/sys/fs/cgroup/cpuset",
			"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids",
		},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("hybrid (-want +got):\n%s", diff)
	}

	s, err = parseMountinfo(strings.NewReader(pureMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Support{Mount: "/sys/fs/cgroup", MountRoot: "/"}, s); diff != "" {
		t.Errorf("pure v2 (-want +got):\n%s", diff)
	}
}

func TestParseMountinfoPicksWholeHierarchy(t *testing.T) {
	// A container's bind mount of a sub-tree first, then the whole
	// hierarchy; a mount point with a space.
	in := `50 1 0:25 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw
51 1 0:25 / /mnt/all\040cgroups rw - cgroup2 cgroup2 rw
`
	s, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if s.Mount != "/mnt/all cgroups" || s.MountRoot != "/" || s.Hybrid {
		t.Errorf("got mount %q root %q hybrid %v, want the whole hierarchy at %q", s.Mount, s.MountRoot, s.Hybrid, "/mnt/all cgroups")
	}
}

func TestParseMountinfoNoV2(t *testing.T) {
	in := "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
	if _, err := parseMountinfo(strings.NewReader(in)); !errors.Is(err, ErrNoV2) {
		t.Errorf("v1 only: err = %v, want ErrNoV2", err)
	}
}

func TestParseProcCgroup(t *testing.T) {
	for in, want := range map[string]string{
		"0::/\n": "/",
		"9:name=systemd:/\n4:memory:/process_api/66\n0::/system.slice/mpmd.service\n": "/system.slice/mpmd.service",
		"0::/a:b\n": "/a:b",
	} {
		got, err := parseProcCgroup(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("parseProcCgroup(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := parseProcCgroup(strings.NewReader("4:memory:/x\n")); err == nil {
		t.Error("a v1-only /proc/self/cgroup parsed")
	}
}

func TestDirOf(t *testing.T) {
	for _, c := range []struct {
		mount, root, cg, want string
	}{
		{"/sys/fs/cgroup", "/", "/", "/sys/fs/cgroup"},
		{"/sys/fs/cgroup", "/", "/system.slice/mpmd.service", "/sys/fs/cgroup/system.slice/mpmd.service"},
		{"/sys/fs/cgroup", "/docker/abc", "/docker/abc/x", "/sys/fs/cgroup/x"},
		{"/sys/fs/cgroup", "/docker/abc", "/docker/abcd", ""},
		{"/sys/fs/cgroup", "/", "/../outside", ""},
	} {
		got, err := dirOf(c.mount, c.root, c.cg)
		if c.want == "" {
			if err == nil {
				t.Errorf("dirOf(%q, %q, %q) = %q, want an error", c.mount, c.root, c.cg, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("dirOf(%q, %q, %q) = %q, %v; want %q", c.mount, c.root, c.cg, got, err, c.want)
		}
	}
}

func TestReleaseAtLeast(t *testing.T) {
	for rel, want := range map[string]bool{
		"6.18.44-fc-v669": true, "5.14.0-362.el9": true, "5.13.19": false, "4.19.0-26-amd64": false, "5.15": true, "junk": false,
	} {
		if got := releaseAtLeast(rel, 5, 14); got != want {
			t.Errorf("releaseAtLeast(%q, 5, 14) = %v, want %v", rel, got, want)
		}
	}
}
