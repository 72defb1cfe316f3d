package cgroup

import "github.com/metricsd/metricsd/internal/parse"

// parseIOStat parses v2 io.stat:
//
//	254:0 rbytes=67182592 wbytes=67108864 rios=66 wios=64 dbytes=0 dios=0
//
// It reads token by token, so that the output of kernels that printed a
// device with no values and no newline ("253:0 254:0 rbytes=...") is still
// attributed correctly: a device token starts a new device, and a device
// that got no values is left out (the kernel omits all-zero devices that
// way). A device token that is not "major:minor", such as "(unknown)", starts
// a device whose values are skipped: they can not be attributed. Unknown keys
// are ignored; a key=value before any device is a parse error. A key the
// kernel did not print for a device (or printed negative) leaves that
// counter Unavailable. Once the file is read, the totals are set from the
// devices.
func parseIOStat(b []byte, io *IOStats) error {
	devs := &io.Devices
	for n := 1; len(b) > 0; n++ {
		var l []byte
		l, b = parse.Line(b)
		var cur *IODevice
		var major, minor uint32
		pending, skip := false, false
		for {
			var tok []byte
			tok, l = parse.Field(l)
			if len(tok) == 0 {
				break
			}
			key, val, isKV := parse.Cut(tok, '=')
			if !isKV {
				ma, mi, err := parse.Dev(tok)
				if err != nil && err != parse.ErrSyntax {
					return errAt(n, err) // a device number out of range
				}
				major, minor, pending, skip, cur = ma, mi, true, err != nil, nil
				continue
			}
			if !pending {
				return errAt(n, parse.ErrSyntax)
			}
			if skip {
				continue
			}
			var dst *Value
			if cur == nil {
				cur = device(devs, major, minor)
			}
			switch string(key) {
			case "rbytes":
				dst = &cur.ReadBytes
			case "wbytes":
				dst = &cur.WriteBytes
			case "rios":
				dst = &cur.ReadOps
			case "wios":
				dst = &cur.WriteOps
			case "dbytes":
				dst = &cur.DiscardBytes
			case "dios":
				dst = &cur.DiscardOps
			default:
				continue
			}
			if err := counter(val, n, dst); err != nil {
				return err // a negative value leaves dst Unavailable
			}
		}
	}
	io.sumDevices(ioAll)
	return nil
}
