package live

import (
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/metricsd/metricsd/cgroup"
)

// The API's answers are written by hand: encoding/json re-validates the
// output of every MarshalJSON (a figure that may be null, a column of
// them), which was most of a refresh's cost (BenchmarkPageRefresh).
// TestEncodeMatchesJSON checks that they are what encoding/json writes.

func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default: // other control characters, and <, >, & (inert in HTML)
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendKey(b []byte, k string) []byte {
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func appendNum(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', 6, 64)
}

func appendValue(b []byte, v cgroup.Value) []byte {
	switch v.State {
	case cgroup.Known:
		return strconv.AppendUint(b, v.V, 10)
	case cgroup.Unlimited:
		return append(b, "-1"...)
	}
	return append(b, "null"...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendNums(b []byte, ns nums) []byte {
	b = append(b, '[')
	for i, v := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	}
	return append(b, ']')
}

func (c *Containers) appendJSON(b []byte) []byte {
	b = append(b, `{"time":`...)
	if c.Time == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *c.Time)
	}
	b = append(b, `,"interval_seconds":`...)
	b = strconv.AppendFloat(b, c.IntervalSeconds, 'g', -1, 64)
	b = append(b, `,"snapshots":`...)
	b = strconv.AppendUint(b, c.Snapshots, 10)
	b = append(b, `,"points":`...)
	b = strconv.AppendInt(b, int64(c.Points), 10)
	b = append(b, `,"max_containers":`...)
	b = strconv.AppendInt(b, int64(c.MaxContainers), 10)
	b = append(b, `,"dropped_points":`...)
	b = strconv.AppendUint(b, c.DroppedPoints, 10)
	b = append(b, `,"containers_not_kept":`...)
	b = strconv.AppendInt(b, int64(c.NotKept), 10)
	b = append(b, `,"self":`...)
	if s := c.Self; s == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"scrape_seconds":`...)
		b = strconv.AppendFloat(b, s.ScrapeSeconds, 'g', -1, 64)
		b = append(b, `,"containers":`...)
		b = strconv.AppendInt(b, int64(s.Containers), 10)
		b = append(b, `,"namespaces":`...)
		b = strconv.AppendInt(b, int64(s.Namespaces), 10)
		b = append(b, `,"errors":{`...)
		b = appendMap(b, s.Errors, func(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) })
		b = append(b, "}}"...)
	}
	b = append(b, `,"containers":[`...)
	for i := range c.Containers {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.Containers[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

// appendMap writes a map's entries, keys sorted, without the braces.
func appendMap[V any](b []byte, m map[string]V, val func([]byte, V) []byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = val(b, m[k])
	}
	return b
}

func (c *Container) appendJSON(b []byte) []byte {
	b = append(b, `{"ref":`...)
	b = strconv.AppendUint(b, c.Ref, 10)
	for _, kv := range [...]struct {
		k, v      string
		omitEmpty bool
	}{{"id", c.ID, false}, {"name", c.Name, false}, {"runtime", c.Runtime, false}, {"namespace", c.Namespace, true},
		{"image", c.Image, false}, {"pod_name", c.PodName, true}, {"pod_namespace", c.PodNamespace, true}} {
		if kv.omitEmpty && kv.v == "" {
			continue
		}
		b = append(b, ',')
		b = appendKey(b, kv.k)
		b = appendString(b, kv.v)
	}
	b = append(b, `,"labels":{`...)
	b = appendMap(b, c.Labels, appendString)
	b = append(b, `},"interfaces":[`...)
	for i, n := range c.Interfaces {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, n)
	}
	b = append(b, `],"state":`...)
	b = appendString(b, c.State)
	b = append(b, `,"last_seen":`...)
	b = appendTime(b, c.LastSeen)
	for _, f := range [...]struct {
		k   string
		n   num
		v   cgroup.Value
		isV bool
	}{
		{k: "cpu_percent", n: c.CPUPercent}, {k: "cpu_limit_cores", n: c.CPULimitCores},
		{k: "throttled_percent", n: c.ThrottledPercent}, {k: "throttled_periods_total", v: c.ThrottledPeriods, isV: true},
		{k: "throttled_seconds_total", n: c.ThrottledSeconds},
		{k: "memory_usage_bytes", v: c.MemoryUsage, isV: true}, {k: "memory_working_set_bytes", v: c.MemoryWorkingSet, isV: true},
		{k: "memory_limit_bytes", v: c.MemoryLimit, isV: true}, {k: "pids", v: c.Pids, isV: true},
		{k: "pids_limit", v: c.PidsLimit, isV: true}, {k: "oom_kills_total", v: c.OOMKills, isV: true},
	} {
		b = append(b, ',')
		b = appendKey(b, f.k)
		if f.isV {
			b = appendValue(b, f.v)
		} else {
			b = appendNum(b, float64(f.n))
		}
	}
	b = append(b, `,"network":`...)
	b = appendString(b, c.Network)
	if c.NetworkCarrier != "" {
		b = append(b, `,"network_carrier":`...)
		b = appendString(b, c.NetworkCarrier)
	}
	for _, f := range [...]struct {
		k string
		p *uint64
	}{{"net_rx_bytes_total", c.NetRxBytes}, {"net_tx_bytes_total", c.NetTxBytes}} {
		b = append(b, ',')
		b = appendKey(b, f.k)
		if f.p == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendUint(b, *f.p, 10)
		}
	}
	for _, f := range [...]struct {
		k string
		n num
	}{{"net_rx_bytes_per_second", c.NetRxRate}, {"net_tx_bytes_per_second", c.NetTxRate},
		{"psi_cpu_some_avg10", c.PSICPU}, {"psi_memory_some_avg10", c.PSIMemory}, {"psi_io_some_avg10", c.PSIIO}} {
		b = append(b, ',')
		b = appendKey(b, f.k)
		b = appendNum(b, float64(f.n))
	}
	return append(b, '}')
}

func (s *Series) appendJSON(b []byte) []byte {
	b = append(b, `{"ref":`...)
	b = strconv.AppendUint(b, s.Ref, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, s.Name)
	b = append(b, `,"interval_seconds":`...)
	b = strconv.AppendFloat(b, s.IntervalSeconds, 'g', -1, 64)
	b = append(b, `,"points":`...)
	b = strconv.AppendInt(b, int64(s.Points), 10)
	b = append(b, `,"t":[`...)
	for i, t := range s.Time {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, t, 10)
	}
	b = append(b, ']')
	for _, col := range [...]struct {
		k string
		v nums
	}{{"cpu_percent", s.CPUPercent}, {"memory_working_set_bytes", s.MemoryWorkingSet}} {
		b = append(b, ',')
		b = appendKey(b, col.k)
		b = appendNums(b, col.v)
	}
	b = append(b, `,"memory_limit_bytes":`...)
	b = appendValue(b, s.MemoryLimit)
	for _, col := range [...]struct {
		k string
		v nums
	}{{"net_rx_bytes_per_second", s.NetRxRate}, {"net_tx_bytes_per_second", s.NetTxRate}, {"pids", s.Pids},
		{"psi_cpu_some_avg10", s.PSICPU}, {"psi_memory_some_avg10", s.PSIMemory}, {"psi_io_some_avg10", s.PSIIO}} {
		b = append(b, ',')
		b = appendKey(b, col.k)
		b = appendNums(b, col.v)
	}
	return append(b, '}')
}
