package cgroup

import "sort"

// deriveMemory computes WorkingSet, and on v1 (where MemSwapLimit was
// read) SwapLimit.
func deriveMemory(m *MemoryStats) {
	if m.Usage.State == Known && m.InactiveFile.State == Known {
		ws := uint64(0)
		if m.Usage.V > m.InactiveFile.V {
			ws = m.Usage.V - m.InactiveFile.V
		}
		m.WorkingSet = known(ws)
	}
	switch {
	case m.MemSwapLimit.State == Unlimited:
		m.SwapLimit = unlimited
	case m.MemSwapLimit.State == Known && m.Limit.State == Known && m.MemSwapLimit.V >= m.Limit.V:
		m.SwapLimit = known(m.MemSwapLimit.V - m.Limit.V)
	}
}

// sortSizes orders huge page size names ("2MB", "1GB", "64KB") by size.
func sortSizes(sizes []string) {
	sort.Slice(sizes, func(i, j int) bool { return sizeBytes(sizes[i]) < sizeBytes(sizes[j]) })
}

func sizeBytes(s string) uint64 {
	var n uint64
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + uint64(s[i]-'0')
		i++
	}
	switch s[i:] {
	case "KB":
		return n << 10
	case "MB":
		return n << 20
	case "GB":
		return n << 30
	}
	return n
}
