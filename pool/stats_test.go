package pool

import (
	"reflect"
	"testing"
	"time"
)

// Stats.Add sums every number of Stats, so that a field added to Stats
// cannot be left out of a daemon's totals across pools.
func TestStatsAdd(t *testing.T) {
	one := func() Stats {
		var s Stats
		v := reflect.ValueOf(&s).Elem()
		for i := range v.NumField() {
			switch f := v.Field(i); f.Kind() {
			case reflect.Int, reflect.Int64:
				f.SetInt(1)
			case reflect.Uint64:
				f.SetUint(1)
			}
		}
		return s
	}
	a, b := one(), one()
	a.Name = "alice"
	b.Pending = true
	b.BackoffUntil = time.Unix(100, 0)
	b.Slots = []SlotInfo{{Slot: 3}}
	a.Add(b)
	v := reflect.ValueOf(a)
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.Int, reflect.Int64:
			if f.Int() != 2 {
				t.Errorf("%s = %d after adding 1 to 1", name, f.Int())
			}
		case reflect.Uint64:
			if f.Uint() != 2 {
				t.Errorf("%s = %d after adding 1 to 1", name, f.Uint())
			}
		}
	}
	if a.Name != "alice" || !a.Pending || !a.BackoffUntil.Equal(time.Unix(100, 0)) || len(a.Slots) != 1 {
		t.Errorf("Name, Pending, BackoffUntil or Slots: %+v", a)
	}

	// AddCounters leaves what is not a counter alone.
	c, d := Stats{Workers: 1, Served: 1}, Stats{Workers: 5, Served: 5}
	c.AddCounters(d)
	if c.Workers != 1 || c.Served != 6 {
		t.Errorf("AddCounters: workers %d (want 1), served %d (want 6)", c.Workers, c.Served)
	}
}
