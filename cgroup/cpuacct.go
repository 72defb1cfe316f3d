package cgroup

import "github.com/metricsd/metricsd/internal/parse"

// parseUsageAll parses v1 cpuacct.usage_all:
//
//	cpu user system
//	0 1183731978 12000000
//	1 135968964 7840411
//
// and sets User and System to the column sums. The kernel fills these columns
// from its tick-sampled cpustat (in steps of one tick, 4 ms at HZ=250), not
// from the exact runtime that cpuacct.usage and cpuacct.usage_percpu count,
// so User+System need not equal Usage.
func parseUsageAll(b []byte, c *CPUStats) error {
	var user, sys uint64
	for n := 1; len(b) > 0; n++ {
		var l []byte
		l, b = parse.Line(b)
		cpu, rest := parse.Field(l)
		if len(cpu) == 0 {
			continue
		}
		if n == 1 && string(cpu) == "cpu" {
			continue // header
		}
		u, rest := parse.Field(rest)
		s, _ := parse.Field(rest)
		if _, err := parse.Uint(cpu); err != nil {
			return errAt(n, err)
		}
		uv, err := parse.Uint(u)
		if err == nil {
			var sv uint64
			if sv, err = parse.Uint(s); err == nil {
				if user+uv < user || sys+sv < sys {
					return errAt(n, parse.ErrRange)
				}
				user += uv
				sys += sv
				continue
			}
		}
		if err == parse.ErrNegative { // a kernel bug: no trustworthy figure
			return nil
		}
		return errAt(n, err)
	}
	c.User, c.System = known(user), known(sys)
	return nil
}

// parseUsagePerCPU parses v1 cpuacct.usage_percpu: ns per CPU on one line.
// It sets PerCPU and Usage, their sum (the kernel's cpuacct.usage is the same
// sum over the same per-CPU counters).
func parseUsagePerCPU(b []byte, c *CPUStats) error {
	c.PerCPU = c.PerCPU[:0]
	var sum uint64
	l, _ := parse.Line(b)
	for {
		var f []byte
		f, l = parse.Field(l)
		if len(f) == 0 {
			break
		}
		v, err := parse.Uint(f)
		if err == parse.ErrNegative { // a kernel bug: no trustworthy figure
			c.PerCPU = c.PerCPU[:0]
			return nil
		}
		if err != nil {
			return errAt(1, err)
		}
		if sum+v < sum {
			return errAt(1, parse.ErrRange)
		}
		sum += v
		c.PerCPU = append(c.PerCPU, v)
	}
	if len(c.PerCPU) > 0 { // none: unavailable (there is at least one CPU)
		c.Usage = known(sum)
	}
	return nil
}
