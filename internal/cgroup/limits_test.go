package cgroup

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLimits(t *testing.T) {
	bad := []Limits{
		{MemoryMax: -1}, {PidsMax: -5}, {CPUWeight: 10001}, {CPUWeight: -1},
		{CPUMax: "half"}, {CPUMax: "0 100000"}, {CPUMax: "50000 100000 1"}, {CPUMax: " 50000"}, {CPUMax: "max 0"},
	}
	for _, l := range bad {
		if _, err := l.settings(); !errors.Is(err, ErrBadLimit) {
			t.Errorf("%+v: err = %v, want ErrBadLimit", l, err)
		}
	}
	s, err := Limits{MemoryMax: 64 << 20, CPUMax: "max 100000", PidsMax: 0}.settings()
	if err != nil {
		t.Fatal(err)
	}
	want := []setting{
		{"memory", "memory.max", "67108864", true},
		{"cpu", "cpu.weight", "100", false},
		{"cpu", "cpu.max", "max 100000", false},
		{"pids", "pids.max", "max", false},
	}
	if diff := cmp.Diff(want, s, cmp.AllowUnexported(setting{})); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"alice", "john.doe", "www-data", "a_b", "site@example"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".hidden", "a/b", "memory.max", "cgroup.procs", "pids.x", "x\x00", strings.Repeat("a", 256)} {
		if err := checkName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("checkName(%q) = %v, want ErrBadName", bad, err)
		}
	}
}
