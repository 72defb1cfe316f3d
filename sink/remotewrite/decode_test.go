package remotewrite

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// series is one decoded TimeSeries.
type series struct {
	labels [][2]string // in wire order
	value  float64
	ts     int64
}

// key is the series' identity: name{l1="v1",...} with labels sorted.
func (s series) key() string {
	var name string
	var ls []string
	for _, l := range s.labels {
		if l[0] == "__name__" {
			name = l[1]
			continue
		}
		ls = append(ls, fmt.Sprintf("%s=%q", l[0], l[1]))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// decodeWriteRequest decodes a remote_write 1.0 WriteRequest with
// protowire, strictly: every field known, labels sorted by name, at least
// one sample per series and its samples in time order (the sink merges a
// series' samples of several snapshots). It returns a series per sample.
func decodeWriteRequest(b []byte) ([]series, error) {
	var out []series
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return nil, fmt.Errorf("WriteRequest: field %d type %d", num, typ)
		}
		b = b[n:]
		ts, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, errors.New("WriteRequest: bad timeseries")
		}
		b = b[n:]
		ss, err := decodeTimeSeries(ts)
		if err != nil {
			return nil, err
		}
		out = append(out, ss...)
	}
	return out, nil
}

// decodeTimeSeries returns a series per sample of a TimeSeries.
func decodeTimeSeries(b []byte) ([]series, error) {
	var s series
	var out []series
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return nil, fmt.Errorf("TimeSeries: field %d type %d", num, typ)
		}
		b = b[n:]
		m, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, errors.New("TimeSeries: bad field")
		}
		b = b[n:]
		switch num {
		case 1:
			var l [2]string
			for len(m) > 0 {
				f, t, k := protowire.ConsumeTag(m)
				if k < 0 || t != protowire.BytesType || f < 1 || f > 2 {
					return nil, fmt.Errorf("Label: field %d type %d", f, t)
				}
				m = m[k:]
				v, k := protowire.ConsumeBytes(m)
				if k < 0 {
					return nil, errors.New("Label: bad string")
				}
				m = m[k:]
				l[f-1] = string(v)
			}
			if k := len(s.labels); k > 0 && s.labels[k-1][0] >= l[0] {
				return nil, fmt.Errorf("labels not sorted: %q before %q", s.labels[k-1][0], l[0])
			}
			s.labels = append(s.labels, l)
		case 2:
			if len(out) > 0 && len(s.labels) != len(out[0].labels) {
				return nil, errors.New("TimeSeries: a label after a sample")
			}
			for len(m) > 0 {
				f, t, k := protowire.ConsumeTag(m)
				if k < 0 {
					return nil, errors.New("Sample: bad tag")
				}
				m = m[k:]
				switch {
				case f == 1 && t == protowire.Fixed64Type:
					v, k := protowire.ConsumeFixed64(m)
					if k < 0 {
						return nil, errors.New("Sample: bad value")
					}
					s.value = math.Float64frombits(v)
					m = m[k:]
				case f == 2 && t == protowire.VarintType:
					v, k := protowire.ConsumeVarint(m)
					if k < 0 {
						return nil, errors.New("Sample: bad timestamp")
					}
					s.ts = int64(v)
					m = m[k:]
				default:
					return nil, fmt.Errorf("Sample: field %d type %d", f, t)
				}
			}
			if k := len(out); k > 0 && out[k-1].ts > s.ts {
				return nil, fmt.Errorf("TimeSeries: sample at %d after one at %d", s.ts, out[k-1].ts)
			}
			out = append(out, s)
		default:
			return nil, fmt.Errorf("TimeSeries: field %d", num)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("TimeSeries with no sample")
	}
	return out, nil
}
