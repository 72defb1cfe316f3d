package cgroup

import "github.com/metricsd/metricsd/internal/parse"

// device returns the entry for major:minor in devs, appending one if needed
// (the append reuses the slice's capacity, so steady state does not allocate).
func device(devs *[]IODevice, major, minor uint32) *IODevice {
	d := *devs
	for i := range d {
		if d[i].Major == major && d[i].Minor == minor {
			return &d[i]
		}
	}
	*devs = append(d, IODevice{Major: major, Minor: minor})
	return &(*devs)[len(d)]
}

// parseBlkio parses a v1 blkio.throttle.io_service_bytes(_recursive) file
// (bytes=true) or io_serviced(_recursive) file (bytes=false):
//
//	8:0 Read 1024
//	8:0 Write 0
//	8:0 Sync 0
//	8:0 Async 1024
//	8:0 Discard 0
//	8:0 Total 1024
//	Total 1024
//
// The closing "Total" line and the per-device Sync/Async/Total rows are
// skipped. A line whose device is not "major:minor" (such as "(unknown)") is
// skipped too: it can not be attributed.
func parseBlkio(b []byte, bytes bool, devs *[]IODevice) error {
	for n := 1; len(b) > 0; n++ {
		var l []byte
		l, b = parse.Line(b)
		dev, rest := parse.Field(l)
		if len(dev) == 0 || string(dev) == "Total" {
			continue
		}
		op, rest := parse.Field(rest)
		val, _ := parse.Field(rest)
		major, minor, err := parse.Dev(dev)
		if err != nil {
			if err == parse.ErrSyntax {
				continue // not a device number: "(unknown)" and the like
			}
			return errAt(n, err)
		}
		if len(op) == 0 || len(val) == 0 {
			return errAt(n, parse.ErrSyntax)
		}
		var v Value
		if err := counter(val, n, &v); err != nil {
			return err
		}
		if v.State != Known {
			continue // negative: a kernel bug, keep no value
		}
		d := device(devs, major, minor)
		switch string(op) {
		case "Read":
			if bytes {
				d.ReadBytes = v.V
			} else {
				d.ReadOps = v.V
			}
		case "Write":
			if bytes {
				d.WriteBytes = v.V
			} else {
				d.WriteOps = v.V
			}
		case "Discard":
			if bytes {
				d.DiscardBytes = v.V
			} else {
				d.DiscardOps = v.V
			}
		}
	}
	return nil
}
