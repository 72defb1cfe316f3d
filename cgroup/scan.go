package cgroup

import "github.com/metricsd/metricsd/internal/parse"

// keyValues iterates the lines of a flat-keyed cgroup file ("key value\n").
// Blank lines are skipped. A line with a key and no value yields an empty
// val; the caller decides whether that key matters.
type keyValues struct {
	b    []byte
	line int
}

func (s *keyValues) next() (key, val []byte, ok bool) {
	for len(s.b) > 0 {
		var l []byte
		l, s.b = parse.Line(s.b)
		s.line++
		key, rest := parse.Field(l)
		if len(key) == 0 {
			continue
		}
		val, _ = parse.Field(rest)
		return key, val, true
	}
	return nil, nil, false
}

// counter parses a counter or gauge into dst. A negative number (printed by
// some kernels for counters that went wrong) leaves dst Unavailable and is not
// an error; a malformed or too large number is.
func counter(val []byte, line int, dst *Value) error {
	v, err := parse.Uint(val)
	switch err {
	case nil:
		*dst = known(v)
		return nil
	case parse.ErrNegative:
		*dst = Value{}
		return nil
	}
	return errAt(line, err)
}

// scaled is counter multiplied by mul (µs to ns), Unavailable on overflow.
func scaled(val []byte, line int, mul uint64, dst *Value) error {
	if err := counter(val, line, dst); err != nil {
		return err
	}
	if dst.State == Known {
		if dst.V > (1<<64-1)/mul {
			return errAt(line, parse.ErrRange)
		}
		dst.V *= mul
	}
	return nil
}

// usToNs turns a Known value in µs into ns; ErrRange on overflow.
func usToNs(line int, v *Value) error {
	if v.State == Known {
		if v.V > (1<<64-1)/1000 {
			return errAt(line, parse.ErrRange)
		}
		v.V *= 1000
	}
	return nil
}

// single parses a file that holds one number.
func single(b []byte, dst *Value) error {
	v := parse.TrimSpace(b)
	if len(v) == 0 {
		return errAt(1, parse.ErrSyntax)
	}
	return counter(v, 1, dst)
}

// limitFile parses a file that holds a limit: "max" (v2) or -1 (v1
// cpu.cfs_quota_us) are Unlimited, as is any value at or above the page-rounded
// 2^63-1 that v1 and v2's hugetlb print for "no limit".
func limitFile(b []byte, unlimitedFrom uint64, dst *Value) error {
	return limit(parse.TrimSpace(b), 1, unlimitedFrom, dst)
}

func limit(v []byte, line int, unlimitedFrom uint64, dst *Value) error {
	switch {
	case len(v) == 0:
		return errAt(line, parse.ErrSyntax)
	case string(v) == "max" || string(v) == "-1":
		*dst = unlimited
		return nil
	}
	n, err := parse.Uint(v)
	if err != nil {
		if err == parse.ErrNegative {
			*dst = Value{}
			return nil
		}
		return errAt(line, err)
	}
	if n >= unlimitedFrom {
		*dst = unlimited
		return nil
	}
	*dst = known(n)
	return nil
}

// pageRoundedMax is the value the kernel prints for an unset page_counter
// limit: PAGE_COUNTER_MAX pages, i.e. 2^63-1 rounded down to the page size.
func pageRoundedMax(pageSize uint64) uint64 {
	return (1<<63 - 1) / pageSize * pageSize
}

// hugeUnlimitedFrom is the smallest v1 hugetlb.<size>.limit_in_bytes that
// means "no limit": the kernel starts a group's hugetlb counter at
// PAGE_COUNTER_MAX pages rounded down to a whole huge page
// (hugetlb_cgroup_init), so an unset limit reads 2^63-1 rounded down to the
// huge page size, not to the base page: 9223372036852678656 for 2MB and
// 9223372035781033984 for 1GB on x86-64. size is the kernel's name for the
// size ("2MB"); a name not understood falls back to the base page's bound.
func hugeUnlimitedFrom(size string, pageMax uint64) uint64 {
	if b := sizeBytes(size); b > 0 && pageRoundedMax(b) < pageMax {
		return pageRoundedMax(b)
	}
	return pageMax
}
