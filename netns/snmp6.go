package netns

import (
	"bytes"

	"github.com/metricsd/metricsd/internal/parse"
)

const fileSNMP6 = "net/snmp6"

// parseSNMP6 parses net/snmp6, lines of "Ip6InReceives <blanks> 123", into
// s.IP6, s.ICMP6 and s.UDP6. Other keys (UdpLite6*, Icmp6InType*) are
// skipped.
func parseSNMP6(b []byte, s *Stats) error {
	s.IP6, s.ICMP6, s.UDP6 = IP6{}, ICMP6{}, UDP{}
	if len(parse.TrimSpace(b)) == 0 {
		return parseErr(fileSNMP6, 0, parse.ErrSyntax)
	}
	for n := 1; len(b) > 0; n++ {
		var line, k, v, extra []byte
		line, b = parse.Line(b)
		k, line = parse.Field(line)
		if len(k) == 0 {
			continue
		}
		v, line = parse.Field(line)
		if extra, _ = parse.Field(line); len(v) == 0 || len(extra) != 0 {
			return parseErr(fileSNMP6, n, parse.ErrSyntax)
		}
		var f *Value
		switch {
		case bytes.HasPrefix(k, []byte("Ip6")):
			f = s.IP6.field(k[3:])
		case bytes.HasPrefix(k, []byte("Icmp6")):
			f = s.ICMP6.field(k[5:])
		case bytes.HasPrefix(k, []byte("Udp6")):
			f = s.UDP6.field(k[4:])
		}
		if f == nil {
			continue
		}
		x, err := parse.Uint(v)
		if err == parse.ErrNegative {
			continue
		}
		if err != nil {
			return parseErr(fileSNMP6, n, err)
		}
		*f = known(x)
	}
	return nil
}
