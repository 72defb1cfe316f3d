package netns

import (
	"bytes"
	"strings"

	"github.com/metricsd/metricsd/internal/parse"
)

// Interface is one line of net/dev. The field names follow the file's
// columns; the kernel folds several driver counters into some of them
// (dev_seq_printf_stats): RxDropped is rx_dropped+rx_missed_errors, RxFrame
// is rx_length+rx_over+rx_crc+rx_frame errors, TxCarrier is
// tx_carrier+tx_aborted+tx_window+tx_heartbeat errors.
//
// Every counter is a Value: the kernel prints all 16 columns for every
// interface (a line with fewer is a *ParseError), so a parsed Interface has
// them all Known; a zero Interface has them Unavailable, never 0.
type Interface struct {
	Name string

	RxBytes, RxPackets, RxErrors, RxDropped, RxFIFO, RxFrame, RxCompressed, RxMulticast Value

	TxBytes, TxPackets, TxErrors, TxDropped, TxFIFO, TxCollisions, TxCarrier, TxCompressed Value
}

// DefaultInterfaceFilter reports whether cAdvisor would keep interface name:
// it drops names starting with "lo", "veth", "docker" or "nerdctl", case
// insensitively. Stats keeps every interface; use this to match cAdvisor.
func DefaultInterfaceFilter(name string) bool {
	for _, p := range [...]string{"lo", "veth", "docker", "nerdctl"} {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return false
		}
	}
	return true
}

const fileDev = "net/dev"

// parseDev parses net/dev into s.Interfaces, reusing the slice and the names
// of interfaces that kept their place.
func parseDev(b []byte, s *Stats) error {
	ifs := s.Interfaces[:0]
	line, rest := parse.Line(b)
	if len(parse.TrimSpace(line)) == 0 || !bytes.HasPrefix(line, []byte("Inter-|")) {
		return parseErr(fileDev, 1, parse.ErrSyntax)
	}
	line, rest = parse.Line(rest)
	if !bytes.HasPrefix(parse.TrimSpace(line), []byte("face |")) {
		return parseErr(fileDev, 2, parse.ErrSyntax)
	}
	for n := 3; len(rest) > 0; n++ {
		line, rest = parse.Line(rest)
		if len(parse.TrimSpace(line)) == 0 {
			continue
		}
		name, nums, ok := parse.Cut(line, ':')
		name = parse.TrimSpace(name)
		if !ok || len(name) == 0 {
			s.Interfaces = ifs
			return parseErr(fileDev, n, parse.ErrSyntax)
		}
		var v [16]Value
		for i := range v {
			var f []byte
			f, nums = parse.Field(nums)
			x, err := parse.Uint(f)
			if err != nil {
				s.Interfaces = ifs
				return parseErr(fileDev, n, err)
			}
			v[i] = known(x)
		}
		if f, _ := parse.Field(nums); len(f) != 0 {
			s.Interfaces = ifs
			return parseErr(fileDev, n, parse.ErrSyntax)
		}
		if len(ifs) < cap(ifs) {
			ifs = ifs[:len(ifs)+1]
		} else {
			ifs = append(ifs, Interface{})
		}
		it := &ifs[len(ifs)-1]
		if it.Name != string(name) { // no allocation when the name is unchanged
			it.Name = string(name)
		}
		it.RxBytes, it.RxPackets, it.RxErrors, it.RxDropped = v[0], v[1], v[2], v[3]
		it.RxFIFO, it.RxFrame, it.RxCompressed, it.RxMulticast = v[4], v[5], v[6], v[7]
		it.TxBytes, it.TxPackets, it.TxErrors, it.TxDropped = v[8], v[9], v[10], v[11]
		it.TxFIFO, it.TxCollisions, it.TxCarrier, it.TxCompressed = v[12], v[13], v[14], v[15]
	}
	s.Interfaces = ifs
	return nil
}
