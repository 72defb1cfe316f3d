package cgroup

import "github.com/metricsd/metricsd/internal/value"

// State says whether a Value holds a number: Unavailable (the zero State),
// Known or Unlimited. It is the same type as netns's.
type State = value.State

const (
	// Unavailable is the zero State: the kernel file or key the value comes
	// from was absent (no swap accounting, PSI disabled, an older kernel, a
	// controller not enabled for the group), or it printed a value that can
	// not be right (a negative counter). V is 0 and means nothing.
	Unavailable = value.Unavailable
	// Known means V holds the number the kernel reported.
	Known = value.Known
	// Unlimited means the kernel reported no limit: "max" on cgroup v2, -1
	// for cpu.cfs_quota_us, or the page-rounded 2^63-1 that v1 (and v2
	// hugetlb) print for an unset limit. V is 0.
	Unlimited = value.Unlimited
)

// Value is a counter, gauge or limit read from a cgroup file, with its
// State. The zero Value is Unavailable, so a field that was not read can
// never pass for a zero. It is the same type as netns.Value.
//
// Methods: Get returns the number and whether it is Known; Available
// reports Known or Unlimited; IsUnlimited; String gives the number, "max" or
// "unavailable". In JSON a Value is its number when Known, null when
// Unavailable and -1 when Unlimited (cgroup v1's own spelling of "no
// quota"), and it reads those back.
type Value = value.Value

func known(v uint64) Value { return value.Of(v) }

var unlimited = Value{State: Unlimited}
