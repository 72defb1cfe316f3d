package netns

import "github.com/metricsd/metricsd/internal/value"

// Value is one counter or gauge read from a kernel file, with its State.
// The zero Value is Unavailable: the file did not have the key, row or
// column (an older kernel, no IPv6, a part not read), or it printed a
// negative number for a counter. A field that was not read can therefore
// never pass for a zero. It is the same type as cgroup.Value: Get returns
// the number and whether it is Known, and in JSON it is its number when
// Known and null when Unavailable.
type Value = value.Value

// State says whether a Value holds a number. It is the same type as
// cgroup.State.
type State = value.State

const (
	// Unavailable is the zero State: V is 0 and means nothing.
	Unavailable = value.Unavailable
	// Known means V holds the number the kernel reported.
	Known = value.Known
	// Unlimited is cgroup's State for a limit that is not set; no netns
	// field has it.
	Unlimited = value.Unlimited
)

func known(n uint64) Value { return value.Of(n) }
