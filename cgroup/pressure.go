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
		var line PSILine
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
				line.Avg10, err = parse.Decimal(val)
			case "avg60":
				line.Avg60, err = parse.Decimal(val)
			case "avg300":
				line.Avg300, err = parse.Decimal(val)
			case "total":
				var us uint64
				if us, err = parse.Uint(val); err == nil {
					if us > (1<<64-1)/1000 {
						err = parse.ErrRange
					} else {
						line.Total = known(us * 1000) // µs to ns
					}
				}
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
		*dst = line
	}
	return nil
}
