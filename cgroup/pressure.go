package cgroup

import "github.com/metricsd/metricsd/internal/parse"

// parsePSI parses a pressure file (cpu.pressure, memory.pressure,
// io.pressure, /proc/pressure/*):
//
//	some avg10=11.23 avg60=2.02 avg300=0.42 total=2483955
//	full avg10=11.23 avg60=2.02 avg300=0.42 total=2483955
func parsePSI(b []byte, p *PSI) error {
	for n := 1; len(b) > 0; n++ {
		var l []byte
		l, b = parse.Line(b)
		kind, rest := parse.Field(l)
		var dst *PSILine
		switch string(kind) {
		case "some":
			dst = &p.Some
		case "full":
			dst = &p.Full
		case "":
			continue
		default:
			continue // unknown line kind
		}
		seen := 0
		for {
			var tok []byte
			tok, rest = parse.Field(rest)
			if len(tok) == 0 {
				break
			}
			key, val, ok := parse.Cut(tok, '=')
			if !ok {
				return errAt(n, parse.ErrSyntax)
			}
			var err error
			switch string(key) {
			case "avg10":
				dst.Avg10, err = parse.Decimal(val)
			case "avg60":
				dst.Avg60, err = parse.Decimal(val)
			case "avg300":
				dst.Avg300, err = parse.Decimal(val)
			case "total":
				dst.Total, err = parse.Uint(val)
			default:
				continue
			}
			if err != nil {
				return errAt(n, err)
			}
			seen++
		}
		if seen < 4 {
			return errAt(n, parse.ErrSyntax) // truncated line
		}
		dst.Available = true
	}
	return nil
}
