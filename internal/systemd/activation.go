package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ListenFDsStart is the first descriptor the service manager passes
// (SD_LISTEN_FDS_START); the others follow without a gap.
const ListenFDsStart = 3

// maxListenFDs bounds LISTEN_FDS: far above any real socket unit, far
// below a number that could run past the descriptor table.
const maxListenFDs = 1 << 16

// ActivatedFile is one descriptor passed by socket activation.
type ActivatedFile struct {
	// File owns the descriptor. It is close-on-exec.
	File *os.File
	// Name is its name in LISTEN_FDNAMES (FileDescriptorName= in the
	// socket unit, by default the socket unit's name), or "unknown" when
	// the service manager passed no names, as sd_listen_fds_with_names
	// does.
	Name string
	// Addr is the socket's actual local address (getsockname), to match
	// against the configured ones: a *net.TCPAddr, *net.UDPAddr or
	// *net.UnixAddr (Net "unix", "unixgram" or "unixpacket"). It is nil
	// for a file that is not a socket (a FIFO from ListenFIFO=) and for
	// address families without a net type (netlink).
	Addr net.Addr
	// Listening reports a socket that accepts connections
	// (SO_ACCEPTCONN): a listener, as opposed to a datagram socket or a
	// connection passed with Accept=yes.
	Listening bool
}

// Listeners takes the descriptors the service manager passed to this
// process by socket activation (sd_listen_fds(3)): LISTEN_FDS
// descriptors from fd 3 on, named by LISTEN_FDNAMES, when LISTEN_PID is
// this process's pid. It marks each close-on-exec and wraps it in an
// [ActivatedFile] with its local address.
//
// It returns nil without LISTEN_PID or LISTEN_FDS, and when LISTEN_PID
// names another process (the variables were inherited, not meant for
// us). In every case it unsets LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES, so no child inherits them, and it is therefore good for
// one call. A value it cannot use is an error that matches [ErrBadEnv]
// and names the value; then no descriptor is taken.
//
// To serve, pass File to net.FileListener or net.FilePacketConn, which
// duplicate it; close File afterwards.
func Listeners() ([]ActivatedFile, error) {
	pidS, nS, namesS := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	if pidS == "" || nS == "" {
		return nil, nil
	}
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid <= 0 {
		return nil, badEnv("LISTEN_PID", pidS, "not a pid")
	}
	if pid != os.Getpid() {
		// Set for another process, and inherited from a parent that did
		// not unset them: the descriptors, if any, are not ours to take.
		return nil, nil
	}
	n, err := strconv.Atoi(nS)
	if err != nil || n < 0 || n > maxListenFDs {
		return nil, badEnv("LISTEN_FDS", nS, fmt.Sprintf("not a count from 0 to %d", maxListenFDs))
	}
	if n == 0 {
		return nil, nil
	}
	names := make([]string, n)
	if namesS == "" {
		for i := range names {
			names[i] = "unknown"
		}
	} else {
		names = strings.Split(namesS, ":")
		if len(names) != n {
			return nil, badEnv("LISTEN_FDNAMES", namesS, fmt.Sprintf("%d names for LISTEN_FDS=%d", len(names), n))
		}
	}
	// Check every descriptor before taking any: an *os.File made for a
	// number this process uses otherwise would close it when collected.
	for fd := ListenFDsStart; fd < ListenFDsStart+n; fd++ {
		if _, err := fcntl(fd, syscall.F_GETFD, 0); err != nil {
			return nil, badEnv("LISTEN_FDS", nS, fmt.Sprintf("descriptor %d is not open (%v)", fd, err))
		}
	}
	files := make([]ActivatedFile, n)
	for i := range files {
		fd := ListenFDsStart + i
		syscall.CloseOnExec(fd)
		addr, listening := localAddr(fd)
		files[i] = ActivatedFile{
			File:      os.NewFile(uintptr(fd), names[i]),
			Name:      names[i],
			Addr:      addr,
			Listening: listening,
		}
	}
	return files, nil
}

func fcntl(fd, cmd, arg int) (int, error) {
	for {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// localAddr returns the local address of socket fd as a net.Addr, and
// whether it listens; nil for a file that is not a socket.
func localAddr(fd int) (net.Addr, bool) {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil, false
	}
	typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
	if err != nil {
		return nil, false
	}
	acc, _ := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	listening := acc == 1
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return inetAddr(typ, net.IP(sa.Addr[:]).To16(), sa.Port, ""), listening
	case *syscall.SockaddrInet6:
		zone := ""
		if sa.ZoneId != 0 {
			zone = strconv.Itoa(int(sa.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return inetAddr(typ, net.IP(sa.Addr[:]), sa.Port, zone), listening
	case *syscall.SockaddrUnix:
		nets := map[int]string{syscall.SOCK_STREAM: "unix", syscall.SOCK_DGRAM: "unixgram", syscall.SOCK_SEQPACKET: "unixpacket"}
		if nw, ok := nets[typ]; ok {
			return &net.UnixAddr{Name: sa.Name, Net: nw}, listening
		}
	}
	return nil, listening
}

func inetAddr(typ int, ip net.IP, port int, zone string) net.Addr {
	ip = append(net.IP(nil), ip...)
	switch typ {
	case syscall.SOCK_STREAM:
		return &net.TCPAddr{IP: ip, Port: port, Zone: zone}
	case syscall.SOCK_DGRAM:
		return &net.UDPAddr{IP: ip, Port: port, Zone: zone}
	}
	return nil
}
