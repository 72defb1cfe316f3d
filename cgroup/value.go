package cgroup

import "strconv"

// State says whether a Value holds a number.
type State uint8

const (
	// Unavailable is the zero State: the kernel file or key the value comes
	// from was absent (no swap accounting, PSI disabled, an older kernel, a
	// controller not enabled for the group), or it printed a value that can
	// not be right (a negative counter). V is 0 and means nothing.
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

// Value is a counter, gauge or limit read from a cgroup file. The zero Value
// is Unavailable, so a field that was not read can never pass for a zero.
type Value struct {
	V     uint64
	State State
}

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

func known(v uint64) Value { return Value{V: v, State: Known} }

var unlimited = Value{State: Unlimited}
