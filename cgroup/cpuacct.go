package cgroup

import (
	"math/bits"

	"github.com/metricsd/metricsd/internal/parse"
)

// parseCPUAcctStat parses v1 cpuacct.stat:
//
//	user 125
//	system 1
//
// whose values are clock ticks of USER_HZ (hz), and sets User and System in
// ns. The kernel splits the group's exact CPU time (the sum of
// cpuacct.usage_percpu) in the proportion of its tick-sampled user and
// system statistics (cputime_adjust), so user+system is that time less each
// one's truncation to a whole tick; cpuacct.usage_all's columns are the
// samples themselves, whose sum strays from the exact time by 10% and more
// on a throttled or lightly loaded group. A value too large for ns leaves
// its field Unavailable, as does hz 0 (USER_HZ unknown).
func parseCPUAcctStat(b []byte, hz uint64, c *CPUStats) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		var dst *Value
		switch string(key) {
		case "user":
			dst = &c.User
		case "system":
			dst = &c.System
		default:
			continue
		}
		if err := counter(val, s.line, dst); err != nil {
			return err
		}
		if dst.State == Known {
			*dst = ticksToNs(dst.V, hz)
		}
	}
}

// ticksToNs converts clock ticks at hz per second to ns, exactly (the
// product can exceed 64 bits before the division); Unavailable when hz is 0
// or the result does not fit.
func ticksToNs(ticks, hz uint64) Value {
	hi, lo := bits.Mul64(ticks, 1e9)
	if hz == 0 || hi >= hz {
		return Value{}
	}
	ns, _ := bits.Div64(hi, lo, hz)
	return known(ns)
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
