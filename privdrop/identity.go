package privdrop

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Identity is what a process becomes when it drops privileges: the ids it
// runs as and the environment the drop sets up around them. The zero value
// is not a valid identity (uid 0 is refused); build one with [Resolve] or
// by filling in UID and GID.
type Identity struct {
	// Name is informational (the user name when resolved from one); it
	// appears in errors and logs.
	Name string `json:"name,omitempty"`

	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// Groups are the supplementary groups, exactly: nil or empty means
	// none (a drop clears the groups root had).
	Groups []uint32 `json:"groups,omitempty"`

	// Chroot, when set, is the directory that becomes the process's root.
	// Like sshd's ChrootDirectory, it and every directory above it must be
	// owned by root and not writable by group or others (a sticky
	// directory such as /tmp is accepted above it): a jail that its
	// prisoner can rename or replace is no jail.
	Chroot string `json:"chroot,omitempty"`
	// Dir is the working directory after the drop, inside Chroot when
	// that is set. Empty means "/" with a Chroot and the inherited
	// directory without one. It is entered as the new identity, so the
	// identity must be able to search it.
	Dir string `json:"dir,omitempty"`
	// Nice is the niceness to run at (-20..19); 0 leaves the inherited
	// one. A negative value needs CAP_SYS_NICE at the time of the drop.
	Nice int `json:"nice,omitempty"`
	// Umask is the file mode creation mask; 0 leaves the inherited one
	// (a umask of 0, world-writable files, is never what a shared host
	// wants, so it has no spelling here).
	Umask os.FileMode `json:"umask,omitempty"`
	// Rlimits are applied during the drop, in order.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
}

// Rlimit is one resource limit, as setrlimit(2) takes it. Use
// [RlimInfinity] for "no limit".
type Rlimit struct {
	Resource int    `json:"resource"` // unix.RLIMIT_*; see [ParseRlimitName]
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// RlimInfinity is the value for an unlimited resource.
const RlimInfinity = unix.RLIM_INFINITY

var rlimitNames = map[string]int{
	"as":         unix.RLIMIT_AS,
	"core":       unix.RLIMIT_CORE,
	"cpu":        unix.RLIMIT_CPU,
	"data":       unix.RLIMIT_DATA,
	"fsize":      unix.RLIMIT_FSIZE,
	"locks":      unix.RLIMIT_LOCKS,
	"memlock":    unix.RLIMIT_MEMLOCK,
	"msgqueue":   unix.RLIMIT_MSGQUEUE,
	"nice":       unix.RLIMIT_NICE,
	"nofile":     unix.RLIMIT_NOFILE,
	"nproc":      unix.RLIMIT_NPROC,
	"rss":        unix.RLIMIT_RSS,
	"rtprio":     unix.RLIMIT_RTPRIO,
	"rttime":     unix.RLIMIT_RTTIME,
	"sigpending": unix.RLIMIT_SIGPENDING,
	"stack":      unix.RLIMIT_STACK,
}

// ParseRlimitName returns the resource for a name as prlimit(1) spells it
// ("nproc", "as", "cpu", "nofile", ... ; case-insensitive, an "RLIMIT_"
// prefix allowed).
func ParseRlimitName(name string) (int, error) {
	n := strings.TrimPrefix(strings.ToLower(name), "rlimit_")
	if r, ok := rlimitNames[n]; ok {
		return r, nil
	}
	names := make([]string, 0, len(rlimitNames))
	for k := range rlimitNames {
		names = append(names, k)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("privdrop: unknown resource limit %q (known: %s)", name, strings.Join(names, ", "))
}

// RlimitName is the inverse of [ParseRlimitName].
func RlimitName(resource int) string {
	for k, v := range rlimitNames {
		if v == resource {
			return k
		}
	}
	return fmt.Sprintf("resource(%d)", resource)
}

// String describes the identity briefly: "alice(2001:2001)".
func (id Identity) String() string {
	if id.Name != "" {
		return fmt.Sprintf("%s(%d:%d)", id.Name, id.UID, id.GID)
	}
	return fmt.Sprintf("%d:%d", id.UID, id.GID)
}

// DefaultMinID is the lowest uid and gid a [Policy] accepts by default,
// as suEXEC's AP_UID_MIN/AP_GID_MIN suggest: ids below it belong to the
// system (daemon, bin, sys, adm, shadow, www-data, ...).
const DefaultMinID = 100

// Sentinel errors that [Policy.Check] and [Resolve] wrap.
var (
	ErrRoot       = errors.New("root identity refused")
	ErrBelowMin   = errors.New("id below the minimum")
	ErrUnknown    = errors.New("no such user or group")
	ErrNotAllowed = errors.New("operation not permitted")
)

// Policy says which identities are acceptable. The zero value refuses uid
// 0, gid 0 and any uid, gid or supplementary group below DefaultMinID.
type Policy struct {
	// MinUID and MinGID are the lowest ids accepted; 0 means
	// DefaultMinID. Set 1 to accept every id but root's.
	MinUID, MinGID uint32
	// AllowRoot accepts uid 0 and gid 0 (and group 0 among the
	// supplementary groups). Only tests and debugging want this.
	AllowRoot bool
}

func (p Policy) minUID() uint32 {
	if p.MinUID == 0 {
		return DefaultMinID
	}
	return p.MinUID
}

func (p Policy) minGID() uint32 {
	if p.MinGID == 0 {
		return DefaultMinID
	}
	return p.MinGID
}

// Check returns nil if id is acceptable, or an error that names the
// offending value and the rule (wrapping ErrRoot or ErrBelowMin). The
// supplementary groups are held to the gid rule: a site user that is a
// member of shadow, adm or www-data can read what those groups can.
func (p Policy) Check(id Identity) error {
	if err := p.checkID("uid", id.UID, p.minUID(), "MinUID"); err != nil {
		return fmt.Errorf("privdrop: identity %s: %w", id, err)
	}
	if err := p.checkID("gid", id.GID, p.minGID(), "MinGID"); err != nil {
		return fmt.Errorf("privdrop: identity %s: %w", id, err)
	}
	for _, g := range id.Groups {
		if err := p.checkID("supplementary group", g, p.minGID(), "MinGID"); err != nil {
			return fmt.Errorf("privdrop: identity %s: %w", id, err)
		}
	}
	if id.Nice < -20 || id.Nice > 19 {
		return fmt.Errorf("privdrop: identity %s: nice %d is outside -20..19", id, id.Nice)
	}
	if id.Umask&^0o777 != 0 {
		return fmt.Errorf("privdrop: identity %s: umask %#o has bits outside 0777", id, id.Umask)
	}
	return nil
}

func (p Policy) checkID(what string, v, min uint32, field string) error {
	if v == 0 {
		if p.AllowRoot {
			return nil
		}
		return fmt.Errorf("%s 0 is root's and is refused (Policy.AllowRoot not set): %w", what, ErrRoot)
	}
	if v < min {
		return fmt.Errorf("%s %d is below the minimum %d (Policy.%s): %w", what, v, min, field, ErrBelowMin)
	}
	return nil
}
