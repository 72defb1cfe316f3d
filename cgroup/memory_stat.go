package cgroup

// parseMemoryStat parses memory.stat. On v1 it reads the hierarchical
// total_* keys (they include child groups, like memory.usage_in_bytes); on v2
// every key is hierarchical already. Unknown keys are ignored.
func parseMemoryStat(b []byte, v2 bool, m *MemoryStats) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		var dst *Value
		if v2 {
			switch string(key) {
			case "anon":
				dst = &m.Anon
			case "file":
				dst = &m.File
			case "shmem":
				dst = &m.Shmem
			case "file_mapped":
				dst = &m.MappedFile
			case "inactive_file":
				dst = &m.InactiveFile
			case "active_file":
				dst = &m.ActiveFile
			case "kernel":
				dst = &m.Kernel
			case "pgfault":
				dst = &m.Pgfault
			case "pgmajfault":
				dst = &m.Pgmajfault
			}
		} else {
			switch string(key) {
			case "total_rss":
				dst = &m.Anon
			case "total_cache":
				dst = &m.File
			case "total_shmem":
				dst = &m.Shmem
			case "total_mapped_file":
				dst = &m.MappedFile
			case "total_inactive_file":
				dst = &m.InactiveFile
			case "total_active_file":
				dst = &m.ActiveFile
			case "total_swap":
				dst = &m.SwapUsage
			case "total_pgfault":
				dst = &m.Pgfault
			case "total_pgmajfault":
				dst = &m.Pgmajfault
			}
		}
		if dst == nil {
			continue
		}
		if err := counter(val, s.line, dst); err != nil {
			return err
		}
	}
}
