package cgroup

import "github.com/metricsd/metricsd/internal/parse"

// parseCPUStat parses cpu.stat. On v1 (cpu controller) it holds nr_periods,
// nr_throttled, throttled_time (ns), nr_bursts and burst_time (ns); on v2 it
// also holds usage_usec, user_usec and system_usec, and its times are in µs.
func parseCPUStat(b []byte, v2 bool, c *CPUStats) error {
	s := keyValues{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			return nil
		}
		var err error
		switch string(key) {
		case "nr_periods":
			err = counter(val, s.line, &c.Periods)
		case "nr_throttled":
			err = counter(val, s.line, &c.ThrottledPeriods)
		case "nr_bursts":
			err = counter(val, s.line, &c.Bursts)
		case "throttled_time":
			if !v2 {
				err = counter(val, s.line, &c.ThrottledTime)
			}
		case "burst_time":
			if !v2 {
				err = counter(val, s.line, &c.BurstTime)
			}
		case "throttled_usec":
			if v2 {
				err = scaled(val, s.line, 1000, &c.ThrottledTime)
			}
		case "burst_usec":
			if v2 {
				err = scaled(val, s.line, 1000, &c.BurstTime)
			}
		case "usage_usec":
			if v2 {
				err = scaled(val, s.line, 1000, &c.Usage)
			}
		case "user_usec":
			if v2 {
				err = scaled(val, s.line, 1000, &c.User)
			}
		case "system_usec":
			if v2 {
				err = scaled(val, s.line, 1000, &c.System)
			}
		}
		if err != nil {
			return err
		}
	}
}

// parseCPUMax parses v2 cpu.max: "$MAX $PERIOD", where $MAX is "max" or µs.
func parseCPUMax(b []byte, c *CPUStats) error {
	l, _ := parse.Line(b)
	q, rest := parse.Field(l)
	p, _ := parse.Field(rest)
	if len(q) == 0 || len(p) == 0 {
		return errAt(1, parse.ErrSyntax)
	}
	if err := limit(q, 1, 1<<64-1, &c.Quota); err != nil {
		return err
	}
	if err := usToNs(1, &c.Quota); err != nil {
		return err
	}
	return scaled(p, 1, 1000, &c.Period)
}

// parseCFSQuota parses v1 cpu.cfs_quota_us: µs, or -1 for no quota.
func parseCFSQuota(b []byte, c *CPUStats) error {
	v := parse.TrimSpace(b)
	if string(v) == "-1" {
		c.Quota = unlimited
		return nil
	}
	if err := limit(v, 1, 1<<64-1, &c.Quota); err != nil {
		return err
	}
	return usToNs(1, &c.Quota)
}

// parseCFSPeriod parses v1 cpu.cfs_period_us (µs).
func parseCFSPeriod(b []byte, c *CPUStats) error {
	v := parse.TrimSpace(b)
	if len(v) == 0 {
		return errAt(1, parse.ErrSyntax)
	}
	return scaled(v, 1, 1000, &c.Period)
}
