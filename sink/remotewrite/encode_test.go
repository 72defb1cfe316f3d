package remotewrite

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
)

var t0 = time.Date(2026, 11, 28, 7, 0, 0, 123456789, time.UTC)

func encodeSnapshot(t testing.TB, e *encoder, snap *sink.Snapshot) []series {
	t.Helper()
	buf, _ := e.appendSnapshot(nil, nil, snap)
	ss, err := decodeWriteRequest(buf)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func defaultEncoder(ext map[string]string) *encoder {
	return newEncoder(sink.MustTagger(sink.DefaultTags()), nil, true, nil, ext)
}

// TestSameSeriesAsPrometheusSink checks the promise of the package doc:
// every series of sink/prometheus, with the same name, labels and value,
// and no other. The Prometheus sink's series come from a registry's Gather
// (labels with an empty value dropped, as Prometheus does on a scrape).
func TestSameSeriesAsPrometheusSink(t *testing.T) {
	for name, tags := range map[string]sink.Tags{
		"default":   sink.DefaultTags(),
		"info":      {ID: true, Name: true, Image: true, Runtime: true, Pod: true, Info: true},
		"info only": {ID: true, Name: true, Image: true, Runtime: true, Pod: true, InfoOnly: true, Global: []sink.Tag{{Key: "host", Value: "h1"}}},
	} {
		t.Run(name, func(t *testing.T) { sameSeriesAsPrometheusSink(t, tags) })
	}
}

func sameSeriesAsPrometheusSink(t *testing.T, tags sink.Tags) {
	snap := sinktest.MixedSnapshot(t0)
	// A device whose label is as long as the one before it: the encoder
	// remembers the last label it encoded.
	devs := &snap.Containers[0].Cgroup.IO.Devices
	*devs = append(*devs, cgroup.IODevice{Major: 254, Minor: 16, Name: "vdb", ReadBytes: sinktest.K(77), WriteBytes: sinktest.K(88), ReadOps: sinktest.K(7), WriteOps: sinktest.K(8)})
	*devs = append([]cgroup.IODevice{{Major: 254, Minor: 32, Name: "vdc", ReadBytes: sinktest.K(1), WriteBytes: sinktest.K(2), ReadOps: sinktest.K(3), WriteOps: sinktest.K(4)}}, *devs...)
	col, err := sinkprom.New(sinkprom.WithTags(tags))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	if err := col.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			var ls []string
			for _, l := range m.Label {
				if l.GetValue() != "" {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
			}
			sort.Strings(ls)
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				v = m.Gauge.GetValue()
			}
			want[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}

	got := map[string]float64{}
	for _, s := range encodeSnapshot(t, newEncoder(sink.MustTagger(tags), nil, true, nil, nil), snap) {
		k := s.key()
		if _, dup := got[k]; dup {
			t.Errorf("series %s twice", k)
		}
		got[k] = s.value
		if s.ts != t0.UnixMilli() {
			t.Errorf("%s: timestamp %d, want %d", k, s.ts, t0.UnixMilli())
		}
		if s.labels[0][0] != "__name__" {
			t.Errorf("%s: first label %q", k, s.labels[0][0])
		}
	}
	if len(want) < 150 {
		t.Fatalf("only %d series from the Prometheus sink", len(want))
	}
	for _, k := range []string{
		`container_oom_events_total{ id="/docker/` + snap.Departed[0].Container.ID + `"`, // the departed container
		`container_memory_events_total{`, `container_pressure_cpu_waiting_ratio{`, `container_network_udp_receive_errors_total{`,
	} {
		name, label, _ := strings.Cut(k, " ")
		found := false
		for w := range want {
			found = found || strings.HasPrefix(w, name) && strings.Contains(w, label)
		}
		if !found {
			t.Errorf("no series %s... from the Prometheus sink", k)
		}
	}
	info := 0
	for w := range want {
		if strings.HasPrefix(w, "container_info{") {
			info++
			if tags.Info || tags.InfoOnly {
				if !strings.Contains(w, `name="c-`) || !strings.Contains(w, `image="registry.example/app:1.2"`) {
					t.Errorf("container_info without the container's tags: %s", w)
				}
			}
		} else if tags.InfoOnly && strings.HasPrefix(w, "container_") && (strings.Contains(w, "name=") || strings.Contains(w, "image=")) {
			t.Errorf("InfoOnly: a series with more than id: %s", w)
		}
	}
	if want := map[bool]int{false: 0, true: 3}[tags.Info || tags.InfoOnly]; info != want {
		t.Errorf("%d container_info series, want %d", info, want)
	}
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing %s", k)
		case g != v:
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("extra %s", k)
		}
	}
	t.Logf("%d series, all equal", len(got))
}

// TestExternalLabels: external labels on every series, the self series
// included, sorted among the others.
func TestExternalLabels(t *testing.T) {
	snap := sinktest.MixedSnapshot(t0)
	ss := encodeSnapshot(t, defaultEncoder(map[string]string{"instance": "node-1", "A_first": "x", "job": "metricsd", "zone": ""}), snap)
	for _, s := range ss {
		have := map[string]string{}
		for _, l := range s.labels {
			have[l[0]] = l[1]
		}
		if have["instance"] != "node-1" || have["job"] != "metricsd" || have["A_first"] != "x" {
			t.Fatalf("%s: external labels missing", s.key())
		}
		if _, ok := have["zone"]; ok {
			t.Fatalf("%s: empty external label sent", s.key())
		}
		if s.labels[0][0] != "A_first" || s.labels[1][0] != "__name__" {
			t.Fatalf("%s: order %v", s.key(), s.labels)
		}
	}
}

// TestGlobalTags: the global tags (sink.Tags.Global: the daemon's host tag
// and -tag) on every series, the self series included, sorted among the
// external labels.
func TestGlobalTags(t *testing.T) {
	tags := sink.DefaultTags()
	tags.Global = []sink.Tag{{Key: "host", Value: "node-7"}, {Key: "zzz", Value: "last"}}
	e := newEncoder(sink.MustTagger(tags), nil, true, nil, map[string]string{"instance": "i-1"})
	self := 0
	for _, s := range encodeSnapshot(t, e, sinktest.MixedSnapshot(t0)) {
		have := map[string]string{}
		for i, l := range s.labels {
			have[l[0]] = l[1]
			if i > 0 && s.labels[i-1][0] >= l[0] {
				t.Fatalf("%s: labels not sorted: %v", s.key(), s.labels)
			}
		}
		if have["host"] != "node-7" || have["zzz"] != "last" || have["instance"] != "i-1" {
			t.Fatalf("%s: global tags or external label missing: %v", s.key(), s.labels)
		}
		if strings.HasPrefix(have["__name__"], "metricsd_") {
			self++
		}
	}
	if self == 0 {
		t.Error("no self series")
	}
}

// TestHostileLabelValues: a container's name, label and interface with
// invalid UTF-8 and a huge image name still make a valid request: every
// value valid UTF-8 (U+FFFD where the bytes were invalid), at most
// sink.DefaultMaxValueLen bytes. The real receivers are given the same in
// TestReceivers.
func TestHostileLabelValues(t *testing.T) {
	snap := hostileSnapshot()
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "team"}}
	e := newEncoder(sink.MustTagger(tags), nil, false, nil, nil)
	ss := encodeSnapshot(t, e, snap)
	var sawName, sawIface, sawImage, sawLabel bool
	for _, s := range ss {
		for _, l := range s.labels {
			if !utf8.ValidString(l[1]) {
				t.Fatalf("%s: label %s=%q is not valid UTF-8", s.key(), l[0], l[1])
			}
			if len(l[1]) > sink.DefaultMaxValueLen {
				t.Fatalf("label %s is %d bytes long", l[0], len(l[1]))
			}
			switch {
			case l[0] == "name":
				sawName = sawName || l[1] == "bad\uFFFDname\uFFFD"
			case l[0] == "interface":
				sawIface = sawIface || l[1] == "eth\uFFFD"
			case l[0] == "image":
				sawImage = sawImage || len(l[1]) == sink.DefaultMaxValueLen-1 && strings.HasSuffix(l[1], "é") // cut before a 3-byte character
			case l[0] == "container_label_team":
				sawLabel = sawLabel || l[1] == "a\uFFFDb"
			}
		}
	}
	if !sawName || !sawIface || !sawImage || !sawLabel {
		t.Errorf("sanitised values not seen: name %v interface %v image %v label %v", sawName, sawIface, sawImage, sawLabel)
	}
	if got, want := e.z.Sanitized(), (sink.Sanitized{Replaced: 3, Truncated: 1}); got != want {
		t.Errorf("Sanitized = %+v, want %+v (name, label, interface; image)", got, want)
	}
}

// hostileSnapshot is one container whose name, label, image and interface
// a hostile container chose.
func hostileSnapshot() *sink.Snapshot {
	snap := sinktest.FullSnapshot(1, 2, t0)
	c := &snap.Containers[0].Container
	c.Name = "bad\xffname\xc3"
	c.Labels = map[string]string{"team": "a\xff\xfeb"}
	// 1,021 ASCII bytes, é (2 bytes: up to 1,023), then € (3 bytes: would
	// pass 1,024, so the value ends after é).
	c.Image = strings.Repeat("i", sink.DefaultMaxValueLen-3) + "é" + "€" + strings.Repeat("x", 5000)
	snap.Containers[0].Net.Interfaces[1].Name = "eth\x80\x80"
	return snap
}

// TestEncodeSteadyStateAllocs: once its buffers have grown, encoding a
// snapshot allocates nothing.
func TestEncodeSteadyStateAllocs(t *testing.T) {
	snap := sinktest.MixedSnapshot(t0)
	e := defaultEncoder(map[string]string{"job": "metricsd"})
	var buf []byte
	var ends []int
	buf, ends = e.appendSnapshot(buf, ends, snap)
	allocs := testing.AllocsPerRun(20, func() {
		buf, ends = e.appendSnapshot(buf[:0], ends[:0], snap)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per snapshot, want 0", allocs)
	}
}
