package cgroup

// parseMemoryEvents parses v2 memory.events ("low 0\nhigh 0\n...").
func parseMemoryEvents(b []byte, e *MemoryEvents) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		var dst *Value
		switch string(key) {
		case "low":
			dst = &e.Low
		case "high":
			dst = &e.High
		case "max":
			dst = &e.Max
		case "oom":
			dst = &e.OOM
		case "oom_kill":
			dst = &e.OOMKill
		case "oom_group_kill":
			dst = &e.OOMGroupKill
		default:
			continue
		}
		if err := counter(val, s.line, dst); err != nil {
			return err
		}
	}
}

// parseSwapEvents parses v2 memory.swap.events ("high 0\nmax 0\nfail 0").
func parseSwapEvents(b []byte, e *SwapEvents) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		var dst *Value
		switch string(key) {
		case "high":
			dst = &e.High
		case "max":
			dst = &e.Max
		case "fail":
			dst = &e.Fail
		default:
			continue
		}
		if err := counter(val, s.line, dst); err != nil {
			return err
		}
	}
}

// parseOOMControl parses v1 memory.oom_control ("oom_kill_disable 0\n
// under_oom 0\noom_kill 0").
func parseOOMControl(b []byte, e *MemoryEvents) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		var dst *Value
		switch string(key) {
		case "under_oom":
			dst = &e.UnderOOM
		case "oom_kill":
			dst = &e.OOMKill
		default:
			continue
		}
		if err := counter(val, s.line, dst); err != nil {
			return err
		}
	}
}
