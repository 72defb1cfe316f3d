// Package value is the one way the library says whether a number was read:
// the Value that cgroup and netns fields hold (cgroup.Value and netns.Value
// are aliases of it), with its State.
package value

import (
	"fmt"
	"strconv"
)

// State says whether a Value holds a number.
type State uint8

const (
	// Unavailable is the zero State: the kernel file, key, row or column the
	// value comes from was absent (no swap accounting, PSI disabled, no IPv6,
	// an older kernel, a controller or part that was not read), or the
	// kernel printed a value that can not be right (a negative counter). V is
	// 0 and means nothing.
	Unavailable State = iota
	// Known means V holds the number the kernel reported.
	Known
	// Unlimited means the kernel reported no limit: "max" on cgroup v2, -1
	// for cpu.cfs_quota_us, or the page-rounded 2^63-1 that v1 (and v2
	// hugetlb) print for an unset limit. V is 0.
	Unlimited
)

func (s State) String() string {
	switch s {
	case Unavailable:
		return "unavailable"
	case Known:
		return "known"
	case Unlimited:
		return "unlimited"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Value is a counter, gauge or limit read from a kernel file. The zero Value
// is Unavailable, so a field that was not read can never pass for a zero.
//
// In JSON a Value is a number or null: Known is its number, Unavailable is
// null, and Unlimited is -1 (a number no counter can have, and cgroup v1's
// own spelling of "no limit" in cpu.cfs_quota_us). UnmarshalJSON reads the
// same three forms back.
type Value struct {
	V     uint64
	State State
}

// Of returns a Known Value holding v.
func Of(v uint64) Value { return Value{V: v, State: Known} }

// Get returns the number and whether it is Known.
func (v Value) Get() (uint64, bool) { return v.V, v.State == Known }

// Available reports whether the kernel gave a value (Known or Unlimited).
func (v Value) Available() bool { return v.State != Unavailable }

// IsUnlimited reports whether the value is a limit that is not set.
func (v Value) IsUnlimited() bool { return v.State == Unlimited }

// String formats the number, "max" when unlimited, "unavailable" otherwise.
func (v Value) String() string {
	switch v.State {
	case Known:
		return strconv.FormatUint(v.V, 10)
	case Unlimited:
		return "max"
	}
	return "unavailable"
}

// MarshalJSON writes the number when Known, -1 when Unlimited and null when
// Unavailable.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.State {
	case Known:
		return strconv.AppendUint(nil, v.V, 10), nil
	case Unlimited:
		return []byte("-1"), nil
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads what MarshalJSON writes: a non-negative integer is
// Known, -1 is Unlimited, null is Unavailable. Anything else is an error and
// leaves v unchanged.
func (v *Value) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "null":
		*v = Value{}
		return nil
	case "-1":
		*v = Value{State: Unlimited}
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("value %.40q: want a non-negative integer, -1 or null", b)
	}
	*v = Of(n)
	return nil
}
