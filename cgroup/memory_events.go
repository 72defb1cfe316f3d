package cgroup

// counters reads the "key value" lines of b into the Value that field
// names for each key; lines whose key field does not know (nil) are
// skipped. The three memory event files below differ only in their keys.
func counters(b []byte, field func(key []byte) *Value) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		if dst := field(key); dst != nil {
			if err := counter(val, s.line, dst); err != nil {
				return err
			}
		}
	}
}

// parseMemoryEvents parses v2 memory.events ("low 0\nhigh 0\n...").
func parseMemoryEvents(b []byte, e *MemoryEvents) error {
	return counters(b, func(key []byte) *Value {
		switch string(key) {
		case "low":
			return &e.Low
		case "high":
			return &e.High
		case "max":
			return &e.Max
		case "oom":
			return &e.OOM
		case "oom_kill":
			return &e.OOMKill
		case "oom_group_kill":
			return &e.OOMGroupKill
		}
		return nil
	})
}

// parseSwapEvents parses v2 memory.swap.events ("high 0\nmax 0\nfail 0").
func parseSwapEvents(b []byte, e *SwapEvents) error {
	return counters(b, func(key []byte) *Value {
		switch string(key) {
		case "high":
			return &e.High
		case "max":
			return &e.Max
		case "fail":
			return &e.Fail
		}
		return nil
	})
}

// parseOOMControl parses v1 memory.oom_control ("oom_kill_disable 0\n
// under_oom 0\noom_kill 0").
func parseOOMControl(b []byte, e *MemoryEvents) error {
	return counters(b, func(key []byte) *Value {
		switch string(key) {
		case "under_oom":
			return &e.UnderOOM
		case "oom_kill":
			return &e.OOMKill
		}
		return nil
	})
}

// allZero reports whether every counter the file gave is 0 (and it gave
// some): an idle group's memory.events.
func (e *MemoryEvents) allZero() bool {
	n := 0
	for _, v := range []Value{e.Low, e.High, e.Max, e.OOM, e.OOMKill, e.OOMGroupKill} {
		switch {
		case v.State == Known && v.V == 0:
			n++
		case v.State != Unavailable:
			return false
		}
	}
	return n > 0
}
