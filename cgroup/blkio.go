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

// I/O counters, as bits of a set: which totals a file gives.
const (
	ioReadBytes uint8 = 1 << iota
	ioWriteBytes
	ioReadOps
	ioWriteOps
	ioDiscardBytes
	ioDiscardOps

	ioBytes = ioReadBytes | ioWriteBytes | ioDiscardBytes
	ioOps   = ioReadOps | ioWriteOps | ioDiscardOps
	ioAll   = ioBytes | ioOps
)

// counter returns d's counter k (one of the io* bits).
func (d *IODevice) counter(k uint8) Value { return *d.counterPtr(k) }

// total returns the IOStats total of counter k.
func (s *IOStats) total(k uint8) *Value {
	switch k {
	case ioReadBytes:
		return &s.ReadBytes
	case ioWriteBytes:
		return &s.WriteBytes
	case ioReadOps:
		return &s.ReadOps
	case ioWriteOps:
		return &s.WriteOps
	case ioDiscardBytes:
		return &s.DiscardBytes
	case ioDiscardOps:
		return &s.DiscardOps
	}
	return nil
}

// sumDevices sets the totals in set from the devices, once the file that
// gives them was read: the sum of the devices' Known values, Known 0 with no
// device, Unavailable when devices had I/O but none gave the counter (or
// the sum overflows).
func (s *IOStats) sumDevices(set uint8) {
	for k := uint8(1); k <= ioDiscardOps; k <<= 1 {
		if set&k == 0 {
			continue
		}
		var sum uint64
		seen := 0
		for i := range s.Devices {
			if v, ok := s.Devices[i].counter(k).Get(); ok {
				if sum+v < sum {
					seen = -1
					break
				}
				sum += v
				seen++
			}
		}
		t := s.total(k)
		switch {
		case seen > 0 || len(s.Devices) == 0:
			*t = known(sum)
		default:
			*t = Value{}
		}
	}
}

// clear makes the counters in set Unavailable, in the totals and in every
// device (a file that gives them was malformed).
func (s *IOStats) clear(set uint8) {
	for k := uint8(1); k <= ioDiscardOps; k <<= 1 {
		if set&k == 0 {
			continue
		}
		*s.total(k) = Value{}
		for i := range s.Devices {
			*s.Devices[i].counterPtr(k) = Value{}
		}
	}
}

// counterPtr returns a pointer to d's counter k (one of the io* bits).
func (d *IODevice) counterPtr(k uint8) *Value {
	switch k {
	case ioReadBytes:
		return &d.ReadBytes
	case ioWriteBytes:
		return &d.WriteBytes
	case ioReadOps:
		return &d.ReadOps
	case ioWriteOps:
		return &d.WriteOps
	case ioDiscardBytes:
		return &d.DiscardBytes
	}
	return &d.DiscardOps
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
// skipped too: it can not be attributed. A device's counters whose rows are
// missing stay Unavailable. Once the file is read, the totals it gives
// (bytes or ops) are set from the devices.
func parseBlkio(b []byte, bytes bool, io *IOStats) error {
	devs := &io.Devices
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
				d.ReadBytes = v
			} else {
				d.ReadOps = v
			}
		case "Write":
			if bytes {
				d.WriteBytes = v
			} else {
				d.WriteOps = v
			}
		case "Discard":
			if bytes {
				d.DiscardBytes = v
			} else {
				d.DiscardOps = v
			}
		}
	}
	if bytes {
		io.sumDevices(ioBytes)
	} else {
		io.sumDevices(ioOps)
	}
	return nil
}
