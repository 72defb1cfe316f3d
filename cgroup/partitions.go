package cgroup

import (
	"strings"

	"github.com/metricsd/metricsd/internal/parse"
)

type devNum struct{ major, minor uint32 }

// parsePartitions parses /proc/partitions:
//
//	major minor  #blocks  name
//
//	 254        0  268435456 vda
func parsePartitions(b []byte) (map[devNum]string, error) {
	m := make(map[devNum]string)
	for n := 1; len(b) > 0; n++ {
		var l []byte
		l, b = parse.Line(b)
		ma, rest := parse.Field(l)
		if len(ma) == 0 || string(ma) == "major" {
			continue
		}
		mi, rest := parse.Field(rest)
		_, rest = parse.Field(rest) // #blocks
		name, _ := parse.Field(rest)
		a, err := parse.Uint(ma)
		if err != nil {
			return nil, errAt(n, err)
		}
		c, err := parse.Uint(mi)
		if err != nil || len(name) == 0 || a > 1<<32-1 || c > 1<<32-1 {
			return nil, errAt(n, parse.ErrSyntax)
		}
		m[devNum{uint32(a), uint32(c)}] = string(name)
	}
	return m, nil
}

// parseUeventDevname returns DEVNAME from a /sys/dev/block/M:m/uevent file.
func parseUeventDevname(b []byte) string {
	for len(b) > 0 {
		var l []byte
		l, b = parse.Line(b)
		if k, v, ok := parse.Cut(l, '='); ok && string(k) == "DEVNAME" {
			return strings.TrimPrefix(string(v), "/dev/")
		}
	}
	return ""
}
