package cgroup

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits are the resource limits of one identity's group. A zero field
// means the kernel's default: no limit, and cpu.weight 100. [Parent.Create]
// writes every field, the zero ones included, so a group it reuses ends
// with exactly these limits.
type Limits struct {
	// MemoryMax is memory.max in bytes: beyond it the kernel reclaims,
	// then OOM-kills a process of the group (and only of the group).
	MemoryMax int64
	// CPUWeight is cpu.weight, 1 to 10000: the group's share of CPU time
	// against its siblings when they compete.
	CPUWeight int
	// CPUMax is cpu.max, "QUOTA PERIOD" in microseconds: "50000 100000"
	// is half a CPU, "200000 100000" two CPUs; "max" is no limit.
	CPUMax string
	// PidsMax is pids.max: the processes and threads the group may hold
	// at once; a fork beyond it fails with EAGAIN.
	PidsMax int64
	// Strict makes Create fail with an error that matches
	// [ErrNotEnforced], leaving no new group, when a limit that is set
	// cannot be enforced. Without it Create makes the group and lists
	// such limits in [Group.NotEnforced].
	Strict bool
}

// ErrNotEnforced matches the error [Parent.Create] returns when
// Limits.Strict is set and the hierarchy cannot enforce a limit.
var ErrNotEnforced = errors.New("cgroup: limit not enforced")

// ErrBadLimit matches an error for a limit out of range or malformed.
var ErrBadLimit = errors.New("cgroup: bad limit")

// NotEnforced is a limit that was asked for and that the hierarchy
// cannot enforce.
type NotEnforced struct {
	File   string // the interface file that would hold it: "memory.max"
	Value  string // the value it would have had
	Reason string // why the controller is missing
}

func (n NotEnforced) String() string {
	return fmt.Sprintf("%s=%q not enforced: %s", n.File, n.Value, n.Reason)
}

// NotEnforcedError is the error of a strict [Parent.Create]. It matches
// [ErrNotEnforced].
type NotEnforcedError struct {
	Group  string
	Limits []NotEnforced
}

func (e *NotEnforcedError) Error() string {
	var s []string
	for _, n := range e.Limits {
		s = append(s, n.String())
	}
	return fmt.Sprintf("cgroup: group %s: %s", e.Group, strings.Join(s, "; "))
}

// Is makes errors.Is(err, ErrNotEnforced) true.
func (e *NotEnforcedError) Is(target error) bool { return target == ErrNotEnforced }

// setting is one interface file to write.
type setting struct {
	controller, file, value string
	set                     bool // asked for, as opposed to the default
}

// settings validates l and lists its files, defaults included.
func (l Limits) settings() ([]setting, error) {
	var out []setting
	num := func(ctl, file string, v int64) error {
		switch {
		case v < 0:
			return fmt.Errorf("%w: %s %d is negative", ErrBadLimit, file, v)
		case v == 0:
			out = append(out, setting{ctl, file, "max", false})
		default:
			out = append(out, setting{ctl, file, strconv.FormatInt(v, 10), true})
		}
		return nil
	}
	if err := num("memory", "memory.max", l.MemoryMax); err != nil {
		return nil, err
	}
	switch w := l.CPUWeight; {
	case w == 0:
		out = append(out, setting{"cpu", "cpu.weight", "100", false})
	case w < 1 || w > 10000:
		return nil, fmt.Errorf("%w: cpu.weight %d is outside 1..10000", ErrBadLimit, w)
	default:
		out = append(out, setting{"cpu", "cpu.weight", strconv.Itoa(w), true})
	}
	if l.CPUMax == "" {
		out = append(out, setting{"cpu", "cpu.max", "max", false})
	} else {
		if err := checkCPUMax(l.CPUMax); err != nil {
			return nil, err
		}
		// "max PERIOD" sets no quota: not a limit to report.
		out = append(out, setting{"cpu", "cpu.max", l.CPUMax, strings.Fields(l.CPUMax)[0] != "max"})
	}
	if err := num("pids", "pids.max", l.PidsMax); err != nil {
		return nil, err
	}
	return out, nil
}

// checkCPUMax checks the form "QUOTA [PERIOD]", QUOTA a positive number
// or "max"; the kernel checks the ranges (a period of 1 ms to 1 s).
func checkCPUMax(s string) error {
	f := strings.Fields(s)
	bad := len(f) < 1 || len(f) > 2 || strings.Join(f, " ") != s
	if !bad && f[0] != "max" {
		n, err := strconv.ParseUint(f[0], 10, 63)
		bad = err != nil || n == 0
	}
	if !bad && len(f) == 2 {
		n, err := strconv.ParseUint(f[1], 10, 63)
		bad = err != nil || n == 0
	}
	if bad {
		return fmt.Errorf(`%w: cpu.max %q is not "QUOTA PERIOD" (microseconds, QUOTA may be "max")`, ErrBadLimit, s)
	}
	return nil
}
