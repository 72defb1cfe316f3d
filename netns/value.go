package netns

import "strconv"

// Value is one counter or gauge read from a kernel file. The zero Value is
// unavailable: the file did not have the key (an older kernel, no IPv6), or
// it printed a negative number for a counter. A field that was not read can
// therefore never pass for a zero.
type Value struct {
	V     uint64
	Known bool
}

// Get returns the number and whether the kernel reported it.
func (v Value) Get() (uint64, bool) { return v.V, v.Known }

// String formats the number, or "unavailable".
func (v Value) String() string {
	if !v.Known {
		return "unavailable"
	}
	return strconv.FormatUint(v.V, 10)
}

func (v *Value) set(n uint64) { v.V, v.Known = n, true }
