package cgroup

// parseHugetlbEvents parses v2 hugetlb.<size>.events ("max 0"): the count of
// allocations that failed because of the limit. It parses pids.events too,
// which has the same form: the forks refused at a pids.max.
func parseHugetlbEvents(b []byte, dst *Value) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		if string(key) == "max" {
			if err := counter(val, s.line, dst); err != nil {
				return err
			}
		}
	}
}
