package otlp

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
)

var t0 = time.Date(2026, 11, 28, 7, 0, 0, 123456789, time.UTC)

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// The receiver the tests read back from is the OpenTelemetry Collector's
// own OTLP receiver (go.opentelemetry.io/collector/receiver/otlpreceiver
// v0.165.0) built into a test binary, internal/sinktest/otlpreceiver.
// Why it and not VictoriaMetrics' OTLP ingestion: it is the reference
// implementation of OTLP/HTTP, and its read-back is the OTLP data model
// itself (sums with their temporality and monotonicity, gauges, units,
// start times, typed resource attributes), where a Prometheus-style
// database would flatten those into labelled samples and hide a wrong
// temporality or type. It is a module of its own, so the library's go.mod
// does not carry the Collector.
func startReceiver(t *testing.T) *sinktest.OTLPReceiver {
	t.Helper()
	bin, why := sinktest.Binary("METRICSD_TEST_OTLPRECEIVER")
	if bin == "" {
		rttest.Unavailable(t, "%s", "no OTLP receiver: "+why)
	}
	r, err := sinktest.StartOTLPReceiver(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func newSink(t *testing.T, url string, opts ...Option) *Sink {
	t.Helper()
	s, err := New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// dp is a data point read back, flattened: metric, its kind, its
// attributes and value.
type dp struct {
	metric, unit string
	sum          bool
	attrs        string // k=v,k=v sorted
	value        float64
	start, time  string
}

// resources returns the resources received, by container.name
// (service.name for the collector's own).
func resources(t *testing.T, reqs []sinktest.OTLPRequest) map[string]sinktest.OTLPResourceMetrics {
	t.Helper()
	out := map[string]sinktest.OTLPResourceMetrics{}
	for _, req := range reqs {
		for _, rm := range req.ResourceMetrics {
			name, ok := sinktest.Attr(rm.Resource.Attributes, "container.name")
			if !ok {
				name, _ = sinktest.Attr(rm.Resource.Attributes, "service.name")
			}
			if _, dup := out[name]; dup {
				t.Errorf("resource %q twice", name)
			}
			out[name] = rm
		}
	}
	return out
}

func points(t *testing.T, rm sinktest.OTLPResourceMetrics) map[string]dp {
	t.Helper()
	out := map[string]dp{}
	if len(rm.ScopeMetrics) != 1 || rm.ScopeMetrics[0].Scope.Name != "metricsd" {
		t.Fatalf("scope metrics %+v", rm.ScopeMetrics)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		var pts []sinktest.OTLPDataPoint
		isSum := m.Sum != nil
		switch {
		case m.Sum != nil && m.Gauge == nil:
			pts = m.Sum.DataPoints
			if m.Sum.AggregationTemporality != 2 || !m.Sum.IsMonotonic {
				t.Errorf("%s: temporality %d monotonic %v, want cumulative monotonic", m.Name, m.Sum.AggregationTemporality, m.Sum.IsMonotonic)
			}
		case m.Gauge != nil && m.Sum == nil:
			pts = m.Gauge.DataPoints
		default:
			t.Fatalf("%s: neither a sum nor a gauge", m.Name)
		}
		for _, p := range pts {
			var as []string
			for _, kv := range p.Attributes {
				v, _ := sinktest.Attr([]sinktest.OTLPKeyValue{kv}, kv.Key)
				as = append(as, kv.Key+"="+v)
			}
			sort.Strings(as)
			d := dp{metric: m.Name, unit: m.Unit, sum: isSum, attrs: strings.Join(as, ","), value: p.Value(), start: p.StartTimeUnixNano, time: p.TimeUnixNano}
			k := m.Name + "{" + d.attrs + "}"
			if _, dup := out[k]; dup {
				t.Errorf("data point %s twice", k)
			}
			out[k] = d
		}
	}
	return out
}

func ns(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// TestReceiver writes a known snapshot and a hostile container to the
// Collector's OTLP receiver and reads back the decoded data: resources and
// their semantic-convention attributes, metric types, units, start times
// and values, checked against the snapshot's own figures.
func TestReceiver(t *testing.T) {
	r := startReceiver(t)
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "com.example.team"}}
	tags.Global = []sink.Tag{{Key: "cluster", Value: "eu-1"}}
	s := newSink(t, r.MetricsURL, WithTags(tags), WithResourceAttributes(map[string]string{"host.name": "node-1"}),
		WithHeaders(map[string]string{"Authorization": "Bearer s3cret", "X-Test": "yes"}), WithScopeVersion("v1.2.3"))
	snap := sinktest.MixedSnapshot(t0)
	hostile := hostileSnapshot()
	ctx := t.Context()
	for _, sn := range []*sink.Snapshot{snap, hostile} {
		if err := s.Write(ctx, sn); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v\n%s", err, r.Log())
	}
	reqs, err := r.Received(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := resources(t, reqs)
	if len(res) != 6 {
		t.Fatalf("%d resources, want 6 (3 containers, one that departed, a hostile one, the collector): %v", len(res), keysOf(res))
	}
	// The departed container: its resource with its count of OOM kills
	// alone, at the snapshot's time.
	gone := points(t, res["gone-9"])
	if d, ok := gone["container.memory.oom_kills{}"]; len(gone) != 1 || !ok || d.value != 2 || d.time != ns(t0) || !d.sum {
		t.Errorf("gone-9: %+v, want container.memory.oom_kills 2 alone", gone)
	}
	if id, _ := sinktest.Attr(res["gone-9"].Resource.Attributes, "container.id"); id != snap.Departed[0].Container.ID {
		t.Errorf("gone-9: container.id %q", id)
	}

	// Resource attributes.
	c0 := snap.Containers[0].Container
	wantAttrs := map[string]string{
		"container.id": c0.ID, "container.name": "c-0", "container.image.name": "registry.example/app",
		"container.runtime": "docker", "container.label.com.example.team": "core", "host.name": "node-1",
		"cluster": "eu-1",
	}
	rm := res["c-0"]
	for k, v := range wantAttrs {
		if got, _ := sinktest.Attr(rm.Resource.Attributes, k); got != v {
			t.Errorf("c-0: %s = %q, want %q", k, got, v)
		}
	}
	if len(rm.Resource.Attributes) != len(wantAttrs)+1 {
		t.Errorf("c-0: %d resource attributes, want %d: %+v", len(rm.Resource.Attributes), len(wantAttrs)+1, rm.Resource.Attributes)
	}
	var tagsOK bool
	for _, kv := range rm.Resource.Attributes {
		if kv.Key == "container.image.tags" && kv.Value.ArrayValue != nil && len(kv.Value.ArrayValue.Values) == 1 && *kv.Value.ArrayValue.Values[0].StringValue == "1.2" {
			tagsOK = true
		}
	}
	if !tagsOK {
		t.Errorf("c-0: container.image.tags is not [\"1.2\"]")
	}
	if rm.ScopeMetrics[0].Scope.Version != "v1.2.3" {
		t.Errorf("scope version %q", rm.ScopeMetrics[0].Scope.Version)
	}
	pod := snap.Containers[1].Container.Pod
	for k, v := range map[string]string{"k8s.pod.name": pod.Name, "k8s.namespace.name": pod.Namespace, "k8s.pod.uid": pod.UID, "k8s.container.name": pod.Container} {
		if got, _ := sinktest.Attr(res["c-1"].Resource.Attributes, k); got != v {
			t.Errorf("c-1: %s = %q, want %q", k, got, v)
		}
	}
	if _, ok := sinktest.Attr(res["c-0"].Resource.Attributes, "k8s.pod.name"); ok {
		t.Error("c-0 is not in a pod but has k8s.pod.name")
	}

	// Data points of c-0, against the snapshot's figures.
	st := &snap.Containers[0].Cgroup
	net := snap.Containers[0].Net
	p := points(t, res["c-0"])
	started, now := ns(c0.Started), ns(t0)
	usage, _ := st.CPU.Usage.Get()
	memUsage, _ := st.Memory.Usage.Get()
	pgfault, _ := st.Memory.Pgfault.Get()
	pgmaj, _ := st.Memory.Pgmajfault.Get()
	quota, _ := st.CPU.Quota.Get()
	period, _ := st.CPU.Period.Get()
	want := []dp{
		{metric: "container.cpu.time", unit: "s", sum: true, value: float64(usage) / 1e9, start: started},
		{metric: "container.cpu.limit", unit: "{cpu}", value: float64(quota) / float64(period)},
		{metric: "container.memory.usage", unit: "By", value: float64(memUsage)},
		{metric: "container.paging.faults", unit: "{fault}", sum: true, attrs: "system.paging.fault.type=minor", value: float64(pgfault - pgmaj), start: started},
		{metric: "container.paging.faults", unit: "{fault}", sum: true, attrs: "system.paging.fault.type=major", value: float64(pgmaj), start: started},
		{metric: "container.uptime", unit: "s", value: t0.Sub(c0.Started).Seconds()},
		{metric: "container.disk.io", unit: "By", sum: true, attrs: "disk.io.direction=write,system.device=/dev/vda", value: float64(st.IO.Devices[0].WriteBytes.V), start: started},
		{metric: "container.disk.operations", unit: "{operation}", sum: true, attrs: "disk.io.direction=read,system.device=7:3", value: float64(st.IO.Devices[1].ReadOps.V), start: started},
		{metric: "container.network.io", unit: "By", sum: true, attrs: "network.interface.name=eth0,network.io.direction=receive", value: float64(net.Interfaces[1].RxBytes.V), start: started},
		{metric: "container.network.packet.dropped", unit: "{packet}", sum: true, attrs: "network.interface.name=lo,network.io.direction=transmit", value: float64(net.Interfaces[0].TxDropped.V), start: started},
		{metric: "container.network.connection.count", unit: "{connection}", attrs: "network.connection.state=established,network.transport=tcp,network.type=ipv6", value: float64(net.TCPStates.V6[netns.TCPEstablished].V)},
		{metric: "container.pressure.cpu.waiting", unit: "s", sum: true, value: float64(st.Pressure.CPU.Some.Total.V) / 1e9, start: started},
		{metric: "container.hugetlb.usage", unit: "By", attrs: "hugetlb.page_size=2MB", value: 0},
	}
	for _, w := range want {
		k := w.metric + "{" + w.attrs + "}"
		g, ok := p[k]
		if !ok {
			t.Errorf("c-0: no %s", k)
			continue
		}
		w.time = now
		if g != w {
			t.Errorf("c-0: %s = %+v, want %+v", k, g, w)
		}
	}
	// Limits: unlimited ones are left out (c-1 has no memory limit).
	if _, ok := points(t, res["c-1"])["container.memory.usage.limit{}"]; ok {
		t.Error("c-1: an unlimited memory limit was sent")
	}
	// A sum without a known container start has no start time.
	for k, d := range points(t, res["c-1"]) {
		if d.sum && d.start != "" && d.start != "0" {
			t.Errorf("c-1 (start unknown): %s has start %s", k, d.start)
		}
	}
	// The collector's own.
	self := points(t, res["metricsd"])
	if d := self["metricsd.errors{stage=sink}"]; d.value != 3 || !d.sum {
		t.Errorf("metricsd.errors{stage=sink} = %+v", d)
	}
	if d := self["metricsd.containers{}"]; d.value != 3 || d.sum {
		t.Errorf("metricsd.containers = %+v", d)
	}
	if c, _ := sinktest.Attr(res["metricsd"].Resource.Attributes, "cluster"); c != "eu-1" {
		t.Errorf("the collector's resource has cluster %q, want the global tag", c)
	}

	// Hostile values arrive as valid UTF-8, bounded.
	var hostileRes *sinktest.OTLPResourceMetrics
	for name, rm := range res {
		if strings.HasPrefix(name, "bad") {
			hostileRes = &rm
			if name != "bad\uFFFDname\uFFFD" {
				t.Errorf("hostile name arrived as %q", name)
			}
		}
	}
	if hostileRes == nil {
		t.Fatal("hostile container not received")
	}
	img, _ := sinktest.Attr(hostileRes.Resource.Attributes, "container.image.name")
	if len(img) > sink.DefaultMaxValueLen || !utf8.ValidString(img) {
		t.Errorf("hostile image name: %d bytes", len(img))
	}
	if _, ok := points(t, *hostileRes)["container.network.io{network.interface.name=eth\uFFFD,network.io.direction=receive}"]; !ok {
		t.Error("hostile interface name not sanitised")
	}
	// The name, the label and the interface replaced; the image's name cut
	// (before its invalid byte).
	if got, want := s.Sanitized(), (sink.Sanitized{Replaced: 3, Truncated: 1}); got != want {
		t.Errorf("Sanitized = %+v, want %+v", got, want)
	}

	// Counts: every data point written was received.
	total := 0
	for _, rm := range res {
		total += len(points(t, rm))
	}
	stats := s.Stats()
	if stats.Written != uint64(total) || stats.Sent != uint64(total) || stats.Dropped != 0 || stats.Rejected != 0 {
		t.Errorf("stats %+v, receiver has %d data points", stats, total)
	}
	hs, err := r.Headers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) == 0 || fmt.Sprint(hs[0]["Authorization"]) != "[Bearer s3cret]" || fmt.Sprint(hs[0]["X-Test"]) != "[yes]" {
		t.Errorf("headers %v", hs)
	}
	t.Logf("%d resources, %d data points", len(res), total)
}

func keysOf[V any](m map[string]V) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

// hostileSnapshot is one container whose name, label, image and interface
// a hostile container chose.
func hostileSnapshot() *sink.Snapshot {
	snap := sinktest.FullSnapshot(1, 2, t0)
	c := &snap.Containers[0].Container
	c.ID = strings.Repeat("f", 64)
	c.Name = "bad\xffname\xc3"
	c.Labels = map[string]string{"com.example.team": "a\xff\xfeb"}
	c.Image = strings.Repeat("i", 3000) + "\xff:tag"
	snap.Containers[0].Net.Interfaces[1].Name = "eth\x80\x80"
	return snap
}

// TestOutage kills the receiver (SIGKILL by PID), writes while it is down
// and restarts it (the restarted receiver has nothing: it keeps what it
// gets in memory): first an outage the buffer holds, whose snapshots all
// arrive, whole; then one past the buffer, after which the sink's Close
// delivers the newest snapshots that fit and counts the rest, exactly, in
// data points.
func TestOutage(t *testing.T) {
	r := startReceiver(t)
	snap := sinktest.MixedSnapshot(t0)
	perSnap := countPoints(snap)
	s := newSink(t, r.MetricsURL, WithBufferSnapshots(2), WithBatchSize(4),
		WithFlushInterval(50*time.Millisecond), WithBackoff(20*time.Millisecond, 100*time.Millisecond), WithTimeout(2*time.Second))
	ctx := t.Context()
	write := func(i int) {
		t.Helper()
		snap.Time = t0.Add(time.Duration(i) * time.Second)
		if err := s.Write(ctx, snap); err != nil {
			t.Fatal(err)
		}
	}
	// received returns the resources and data points received, and the
	// data points by snapshot time.
	received := func() (resources, pts int, byTime map[string]int) {
		t.Helper()
		reqs, err := r.Received(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byTime = map[string]int{}
		for _, req := range reqs {
			for _, rm := range req.ResourceMetrics {
				resources++
				for _, d := range points(t, rm) {
					pts++
					byTime[d.time]++
				}
			}
		}
		return resources, pts, byTime
	}

	// Before the outage: one snapshot delivered.
	write(0)
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	// An outage within the buffer: two snapshots, nothing lost.
	r.Kill()
	write(1)
	write(2)
	time.Sleep(300 * time.Millisecond) // the sender fails and retries meanwhile
	if st := s.Stats(); st.Failures == 0 || st.Dropped != 0 {
		t.Errorf("during the outage: %+v, want failures and nothing dropped", st)
	}
	if s.DeliveryError() == nil {
		t.Error("during the outage: DeliveryError is nil")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if !sinktest.Poll(30*time.Second, func() bool { return s.Stats().Buffered == 0 }) {
		t.Fatalf("not delivered after the restart: %+v", s.Stats())
	}
	if !sinktest.Poll(10*time.Second, func() bool { return s.DeliveryError() == nil }) {
		t.Errorf("after the restart: DeliveryError %v", s.DeliveryError())
	}
	res, got, byTime := received()
	if res != 10 || got != 2*perSnap || byTime[ns(t0.Add(time.Second))] != perSnap || byTime[ns(t0.Add(2*time.Second))] != perSnap {
		t.Errorf("after an outage within the buffer: %d resources, %d data points (by time %v), want 10 and both snapshots whole (%d each)", res, got, byTime, perSnap)
	}
	if st := s.Stats(); st.Written != uint64(3*perSnap) || st.Sent != st.Written || st.Dropped != 0 {
		t.Errorf("after an outage within the buffer: stats %+v", st)
	}

	// An outage past the buffer: 5 snapshots of 5 resources (a departed
	// container's among them), 25; the buffer holds the last 2 (10).
	r.Kill()
	for i := 10; i < 15; i++ {
		write(i)
	}
	time.Sleep(200 * time.Millisecond)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	res, got, byTime = received()
	st := s.Stats()
	if res != 10 {
		t.Errorf("%d resources received, want the 10 the buffer holds", res)
	}
	wantDropped := uint64(3 * perSnap)
	if st.Written != uint64(8*perSnap) || st.Sent != st.Written-wantDropped || got != 2*perSnap || st.Dropped != wantDropped || s.Dropped() != wantDropped || st.Failures == 0 {
		t.Errorf("stats %+v; received %d data points, want %d, %d dropped", st, got, 2*perSnap, wantDropped)
	}
	// The newest are kept: the last two snapshots whole.
	if byTime[ns(t0.Add(13*time.Second))] != perSnap || byTime[ns(t0.Add(14*time.Second))] != perSnap {
		t.Errorf("data points by snapshot time %v, want the last two whole (%d each)", byTime, perSnap)
	}
	t.Logf("%d data points per snapshot; dropped %d, failures %d", perSnap, st.Dropped, st.Failures)
}

// countPoints is the number of data points the encoder makes of snap.
func countPoints(snap *sink.Snapshot) int {
	e := &encoder{z: sink.NewSanitizer(sink.Limits{}), tags: sink.DefaultTags()}
	_, _, pts := e.appendSnapshot(nil, nil, nil, snap)
	return pts[len(pts)-1]
}

// TestEncodeSteadyStateAllocs: once its buffers have grown, encoding a
// snapshot allocates nothing.
func TestEncodeSteadyStateAllocs(t *testing.T) {
	snap := sinktest.MixedSnapshot(t0)
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "com.example.team"}}
	e := &encoder{z: sink.NewSanitizer(sink.Limits{}), tags: tags, resAttrs: []attr{{key: "host.name", value: "node-1"}}}
	buf, ends, pts := e.appendSnapshot(nil, nil, nil, snap)
	allocs := testing.AllocsPerRun(20, func() {
		buf, ends, pts = e.appendSnapshot(buf[:0], ends[:0], pts[:0], snap)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per snapshot, want 0", allocs)
	}
}

// TestGlobalTags: the global tags (sink.Tags.Global: the daemon's host tag
// and -tag) are resource attributes of every resource the receiver gets,
// the collector's own included; host as host.name.
func TestGlobalTags(t *testing.T) {
	r := startReceiver(t)
	tags := sink.DefaultTags()
	tags.Global = []sink.Tag{{Key: "host", Value: "node-7"}, {Key: "env", Value: "ci"}}
	s := newSink(t, r.MetricsURL, WithTags(tags))
	ctx := t.Context()
	if err := s.Write(ctx, sinktest.MixedSnapshot(t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v\n%s", err, r.Log())
	}
	reqs, err := r.Received(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := resources(t, reqs)
	if _, ok := res["metricsd"]; !ok || len(res) != 5 {
		t.Fatalf("resources %v, want 3 containers, one that departed and the collector", keysOf(res))
	}
	for name, rm := range res {
		h, _ := sinktest.Attr(rm.Resource.Attributes, "host.name")
		e, _ := sinktest.Attr(rm.Resource.Attributes, "env")
		if h != "node-7" || e != "ci" {
			t.Errorf("%s: host.name %q env %q, want node-7 and ci", name, h, e)
		}
	}
}

// TestNewErrors: every problem with the options in one error.
func TestNewErrors(t *testing.T) {
	_, err := New("localhost:4318", WithBatchSize(0), WithResourceAttributes(map[string]string{"container.id": "x"}),
		WithHeaders(map[string]string{"content-encoding": "br"}), WithTimeout(0))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`URL "localhost:4318"`, "batch size", `"container.id" is the sink's own`, `header "content-encoding"`, "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestSplitImage(t *testing.T) {
	for ref, want := range map[string][2]string{
		"nginx":                          {"nginx", ""},
		"nginx:1.27":                     {"nginx", "1.27"},
		"registry:5000/team/app:v2":      {"registry:5000/team/app", "v2"},
		"registry:5000/team/app":         {"registry:5000/team/app", ""},
		"app@sha256:0123456789abcdef":    {"app@sha256:0123456789abcdef", ""},
		"docker.io/library/busybox:musl": {"docker.io/library/busybox", "musl"},
	} {
		if n, tag := splitImage(ref); n != want[0] || tag != want[1] {
			t.Errorf("%s: %q %q, want %q", ref, n, tag, want)
		}
	}
}

// TestDocumented: every metric the sink writes (a full snapshot with
// container.info and a departed container) is in the OTLP section of
// docs/METRICS.md.
func TestDocumented(t *testing.T) {
	doc, err := sinktest.MetricsDoc()
	if err != nil {
		t.Fatal(err)
	}
	sec := sinktest.Section(doc, "OTLP metrics")
	e := &encoder{z: sink.NewSanitizer(sink.Limits{}), tags: sink.DefaultTags(), info: true}
	snap := sinktest.MixedSnapshot(t0)
	names := map[string]bool{}
	for i := range snap.Containers {
		e.points = e.points[:0]
		e.sample(&snap.Containers[i], snap)
		for _, p := range e.points {
			names[p.m.name] = true
		}
	}
	if len(names) < 40 {
		t.Fatalf("only %d metrics", len(names))
	}
	for n := range names {
		if !sec[n] {
			t.Errorf("%s is not in docs/METRICS.md", n)
		}
	}
}
