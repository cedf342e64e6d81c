package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoV2 is returned by [Detect] when no cgroup2 hierarchy is mounted
// (a host with cgroup v1 only).
var ErrNoV2 = errors.New("cgroup: no cgroup2 hierarchy is mounted")

// limitControllers are the controllers that hold limits, in the order
// OpenParent enables them. Tests may add one.
var limitControllers = []string{"cpu", "memory", "pids"}

// Support is what the machine's cgroup v2 hierarchy offers this process.
// [Support.String] says it in one line, for a daemon's log.
type Support struct {
	// Mount is where the cgroup2 hierarchy is mounted, from
	// /proc/self/mountinfo: /sys/fs/cgroup on a pure v2 host,
	// /sys/fs/cgroup/unified on a hybrid one.
	Mount string
	// MountRoot is the mount's root inside the hierarchy ("/" unless a
	// sub-tree is bind-mounted, as some containers do).
	MountRoot string
	// Hybrid reports that cgroup v1 hierarchies are mounted next to the
	// v2 one. A controller bound to a v1 hierarchy (V1Controllers) is not
	// available in the v2 tree.
	Hybrid bool
	// V1Controllers are the controllers bound to v1 hierarchies, sorted,
	// and V1Mounts where each is mounted.
	V1Controllers []string
	V1Mounts      map[string]string
	// Self is this process's v2 cgroup as /proc/self/cgroup names it
	// ("/" for the root), and SelfDir its directory under Mount.
	Self    string
	SelfDir string
	// Controllers is SelfDir's cgroup.controllers: the controllers a
	// group made under SelfDir can be given (after they are enabled in
	// the subtree_control of each level, which [OpenParent] does).
	Controllers []string
	// SubtreeControl is SelfDir's cgroup.subtree_control: the
	// controllers already enabled for SelfDir's children.
	SubtreeControl []string
	// Usable is the part of Controllers that holds limits: cpu, memory
	// and pids. Empty on a hybrid host, where they are bound to v1: then
	// no limit can be enforced.
	Usable []string
	// Kill reports that cgroup.kill exists (Linux 5.14): a group is
	// killed with one write. Without it [Group.Kill] freezes the group
	// and signals every process.
	Kill bool
}

// Root reports whether this process is in the root cgroup, which the
// "no internal processes" rule does not bind: its children can be given
// controllers although processes live in it.
func (s Support) Root() bool { return s.SelfDir == s.Mount }

// String describes s in one line.
func (s Support) String() string {
	var b strings.Builder
	kind := "pure v2"
	if s.Hybrid {
		kind = "hybrid v1/v2"
	}
	fmt.Fprintf(&b, "cgroup2 at %s (%s), this process in %s", s.Mount, kind, s.Self)
	fmt.Fprintf(&b, "; controllers [%s]", strings.Join(s.Controllers, " "))
	if len(s.Usable) > 0 {
		fmt.Fprintf(&b, "; limits can use [%s]", strings.Join(s.Usable, " "))
	} else {
		b.WriteString("; no controller for limits")
	}
	var v1 []string
	for _, c := range limitControllers {
		if m, ok := s.V1Mounts[c]; ok {
			v1 = append(v1, c+" at "+m)
		}
	}
	if len(v1) > 0 {
		fmt.Fprintf(&b, " (bound to cgroup v1: %s)", strings.Join(v1, ", "))
	}
	if s.Kill {
		b.WriteString("; cgroup.kill")
	} else {
		b.WriteString("; no cgroup.kill (kill by signals)")
	}
	return b.String()
}

// Detect reads /proc/self/mountinfo and /proc/self/cgroup and the cgroup
// files of this process's own cgroup. It changes nothing.
func Detect() (Support, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Support{}, fmt.Errorf("cgroup: detect: %w", err)
	}
	defer mi.Close()
	s, err := parseMountinfo(mi)
	if err != nil {
		return Support{}, err
	}
	pc, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return Support{}, fmt.Errorf("cgroup: detect: %w", err)
	}
	defer pc.Close()
	if s.Self, err = parseProcCgroup(pc); err != nil {
		return Support{}, err
	}
	if s.SelfDir, err = dirOf(s.Mount, s.MountRoot, s.Self); err != nil {
		return Support{}, err
	}
	if s.Controllers, err = readList(filepath.Join(s.SelfDir, "cgroup.controllers")); err != nil {
		return Support{}, fmt.Errorf("cgroup: detect: %w", err)
	}
	if s.SubtreeControl, err = readList(filepath.Join(s.SelfDir, "cgroup.subtree_control")); err != nil {
		return Support{}, fmt.Errorf("cgroup: detect: %w", err)
	}
	for _, c := range limitControllers {
		if slices.Contains(s.Controllers, c) {
			s.Usable = append(s.Usable, c)
		}
	}
	s.Kill = hasKill(s)
	return s, nil
}

// hasKill looks for cgroup.kill in this process's cgroup. The root cgroup
// has none on any kernel (it cannot be killed), so there the kernel
// release decides: cgroup.kill came with Linux 5.14.
func hasKill(s Support) bool {
	if !s.Root() {
		_, err := os.Stat(filepath.Join(s.SelfDir, "cgroup.kill"))
		return err == nil
	}
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return false
	}
	return releaseAtLeast(strings.TrimSpace(string(b)), 5, 14)
}

// releaseAtLeast compares a kernel release such as "6.18.44-fc" with
// major.minor.
func releaseAtLeast(rel string, major, minor int) bool {
	maj, rest, _ := strings.Cut(rel, ".")
	mi := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		mi = rest[:i]
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		return false
	}
	return a > major || a == major && b >= minor
}

// parseMountinfo finds the cgroup2 mount and the cgroup v1 hierarchies in
// a mountinfo file (proc(5)): "id parent maj:min root mountpoint options
// [optional fields] - fstype source superoptions". When cgroup2 is
// mounted more than once, the first mount of the whole hierarchy (root
// "/") wins, else the first.
func parseMountinfo(r io.Reader) (Support, error) {
	var s Support
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		root, point := unescapeMount(f[3]), unescapeMount(f[4])
		switch g[0] {
		case "cgroup2":
			if !found || s.MountRoot != "/" && root == "/" {
				s.Mount, s.MountRoot, found = point, root, true
			}
		case "cgroup":
			s.Hybrid = true
			if len(g) < 3 {
				continue
			}
			for _, o := range strings.Split(g[2], ",") {
				switch {
				case o == "rw" || o == "ro" || strings.Contains(o, "="):
					// name=systemd and other options, not controllers
				case o == "clone_children" || o == "noprefix" || o == "xattr" || o == "nsdelegate" || o == "cpuset_v2_mode" || o == "favordynmods":
				default:
					if s.V1Mounts == nil {
						s.V1Mounts = map[string]string{}
					}
					if _, dup := s.V1Mounts[o]; !dup {
						s.V1Mounts[o] = point
						s.V1Controllers = append(s.V1Controllers, o)
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Support{}, fmt.Errorf("cgroup: read mountinfo: %w", err)
	}
	if !found {
		return Support{}, ErrNoV2
	}
	slices.Sort(s.V1Controllers)
	return s, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseProcCgroup returns the v2 path in a /proc/<pid>/cgroup file: the
// line "0::<path>".
func parseProcCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || id != "0" {
			continue
		}
		ctl, p, ok := strings.Cut(rest, ":")
		if !ok || ctl != "" {
			continue
		}
		return p, nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cgroup: read /proc/self/cgroup: %w", err)
	}
	return "", errors.New("cgroup: /proc/self/cgroup has no cgroup v2 line (0::<path>)")
}

// dirOf maps a cgroup path from /proc/<pid>/cgroup to its directory under
// a mount whose root in the hierarchy is root.
func dirOf(mount, root, cg string) (string, error) {
	if !strings.HasPrefix(cg, "/") || cg == "/.." || strings.HasPrefix(cg, "/../") {
		return "", fmt.Errorf("cgroup: this process's cgroup %q is outside its cgroup namespace", cg)
	}
	rel, ok := strings.CutPrefix(path.Clean(cg), path.Clean(root))
	if root == "/" {
		rel, ok = cg, true
	}
	if !ok || rel != "" && !strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("cgroup: this process's cgroup %q is outside the cgroup2 mount at %s (mount root %q)", cg, mount, root)
	}
	return filepath.Join(mount, rel), nil
}

// readList reads a space-separated list file (cgroup.controllers,
// cgroup.subtree_control).
func readList(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}
