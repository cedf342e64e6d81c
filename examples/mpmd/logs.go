package main

// Access logs are opened by the root master and written by the workers
// through the descriptor, so that a site can write its own log but never
// read or forge another's. Root opening a path is an attack surface of its
// own: a tenant who can change any directory on the way to the log can
// point it at /etc/cron.d or /root/.ssh/authorized_keys. So the master
// opens a log only through directories that no tenant can change, and
// never follows a symbolic link.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openLog opens an access log for appending, creating it (0640) and its
// missing directories (0755), all owned by root. Every directory on the
// way must be root's and not writable by group or others, unless it is
// sticky (as /tmp is: nobody but root can then rename or remove what root
// made in it); no component may be a symbolic link.
func openLog(path string) (*os.File, error) {
	dir, err := walkRootDirs(filepath.Dir(path), true)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	name := filepath.Base(path)
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("access log %s: not a regular file", path)
	}
	// Appends to a regular file never block; clear O_NONBLOCK (it only
	// kept the open from waiting on a FIFO) so that the workers' writes
	// see the usual blocking file.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_WRONLY|unix.O_APPEND); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// checkLogPath reports, without creating anything, whether openLog would
// refuse the directories of path: every one that exists must be safe.
func checkLogPath(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	fd, err := walkRootDirs(filepath.Dir(path), false)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// walkRootDirs opens dir one component at a time from "/", without
// following symbolic links, checking that each directory is root's and
// closed to others (or sticky). With create, missing directories are
// made (0755, root's); without it, the walk stops at the first missing
// one and returns -1. It returns the last directory's descriptor.
func walkRootDirs(dir string, create bool) (int, error) {
	if !filepath.IsAbs(dir) {
		return -1, fmt.Errorf("log directory %q is not an absolute path", dir)
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: "/", Err: err}
	}
	at := "/"
	if err := checkRootDir(fd, at); err != nil {
		unix.Close(fd)
		return -1, err
	}
	for _, name := range strings.Split(strings.Trim(filepath.Clean(dir), "/"), "/") {
		if name == "" {
			continue
		}
		at = filepath.Join(at, name)
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && create {
			if err := unix.Mkdirat(fd, name, 0o755); err != nil && err != unix.EEXIST {
				unix.Close(fd)
				return -1, &os.PathError{Op: "mkdir", Path: at, Err: err}
			}
			next, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		unix.Close(fd)
		switch {
		case err == unix.ENOENT && !create:
			return -1, nil
		case err == unix.ELOOP || err == unix.ENOTDIR:
			return -1, fmt.Errorf("log directory %s is a symbolic link or not a directory: the master, as root, follows no link on the way to a log", at)
		case err != nil:
			return -1, &os.PathError{Op: "open", Path: at, Err: err}
		}
		if err := checkRootDir(next, at); err != nil {
			unix.Close(next)
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func checkRootDir(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Uid != 0 {
		return fmt.Errorf("log directory %s is owned by uid %d: the master opens logs as root only through root's directories (a site that can change one could point its log at any file)", path, st.Uid)
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return fmt.Errorf("log directory %s is mode %#o: writable by group or others, so another user could replace what the master opens there; make it 0755", path, st.Mode&0o7777)
	}
	return nil
}

// logEscape escapes a field of an access log line as Apache does
// (ap_escape_logitem): '"' and '\' with a backslash, and every byte that is
// not printable ASCII as \xhh. A client can then never write a line break
// or end a quoted field: no forged line. A field that is not quoted (the
// user) has its spaces escaped too, so that it cannot pass for several.
func logEscape(s string, quoted bool) string {
	bad := func(c byte) bool { return c < ' ' || c >= 0x7f || c == '"' || c == '\\' || (c == ' ' && !quoted) }
	clean := true
	for i := 0; i < len(s); i++ {
		if bad(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case bad(c):
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
