package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/live"
)

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

// sample is a container's sample with the given counters.
func sample(id string, cpuNS, rx, tx uint64, ifaces int) sink.Sample {
	s := sink.Sample{Container: runtime.Container{ID: id, Name: "n-" + id, Runtime: "docker", Image: "busybox:1",
		Labels: map[string]string{"app": "web", "tier": "front"}}, Network: sink.NetOwn, Net: &netns.Stats{}}
	s.Cgroup.CPU.Usage = cgroup.Value{V: cpuNS, State: cgroup.Known}
	s.Cgroup.Memory.WorkingSet = cgroup.Value{V: 10 << 20, State: cgroup.Known}
	s.Cgroup.Memory.Limit = cgroup.Value{State: cgroup.Unlimited}
	s.Cgroup.Pids.Current = cgroup.Value{V: 3, State: cgroup.Known}
	for i := range ifaces {
		name := "lo"
		if i > 0 {
			name = fmt.Sprintf("eth%d", i-1)
		}
		s.Net.Interfaces = append(s.Net.Interfaces, netns.Interface{Name: name,
			RxBytes: cgroup.Value{V: rx / uint64(ifaces), State: cgroup.Known}, TxBytes: cgroup.Value{V: tx / uint64(ifaces), State: cgroup.Known}})
	}
	return s
}

func write(t testing.TB, k *live.Sink, at time.Time, smps ...sink.Sample) {
	t.Helper()
	if err := k.Write(context.Background(), &sink.Snapshot{Time: at, Containers: smps}); err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, h http.Handler, path string, v any) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if v != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body)
		}
	}
	return rec.Result()
}

// containers is the API's answer, decoded loosely: null stays nil.
type containers struct {
	IntervalSeconds float64 `json:"interval_seconds"`
	DroppedPoints   uint64  `json:"dropped_points"`
	NotKept         int     `json:"containers_not_kept"`
	Containers      []struct {
		Ref        uint64            `json:"ref"`
		Name       string            `json:"name"`
		State      string            `json:"state"`
		Labels     map[string]string `json:"labels"`
		Interfaces []string          `json:"interfaces"`
		CPU        *float64          `json:"cpu_percent"`
		Rx         *float64          `json:"net_rx_bytes_per_second"`
		Tx         *float64          `json:"net_tx_bytes_per_second"`
		MemLimit   *int64            `json:"memory_limit_bytes"`
		Pids       *int64            `json:"pids"`
	} `json:"containers"`
}

type series struct {
	T   []int64    `json:"t"`
	CPU []*float64 `json:"cpu_percent"`
	Rx  []*float64 `json:"net_rx_bytes_per_second"`
}

// TestRates: CPU % and network rates come from consecutive snapshots'
// counters; the first point has none, nor a point whose counter went back
// (a restart) or whose interfaces changed; the series keeps them in order.
func TestRates(t *testing.T) {
	k, err := live.New(live.WithPoints(10))
	if err != nil {
		t.Fatal(err)
	}
	h := k.Handler()
	steps := []struct {
		cpu, rx, tx uint64
		ifaces      int
		wantCPU     float64 // NaN: null
		wantRx      float64
	}{
		{1e9, 1000, 500, 2, math.NaN(), math.NaN()},
		{1.5e9, 3000, 1500, 2, 25, 1000},         // 0.5 s of CPU in 2 s; 2000 B in 2 s
		{0.2e9, 5000, 2500, 2, math.NaN(), 1000}, // CPU counter reset (restart)
		{0.6e9, 9000, 4500, 3, 20, math.NaN()},   // an interface more
		{1.0e9, 9000, 4500, 3, 20, 0},
	}
	for i, st := range steps {
		write(t, k, t0.Add(time.Duration(i)*2*time.Second), sample("a", st.cpu, st.rx, st.tx, st.ifaces))
		var c containers
		get(t, h, "/api/v1/containers", &c)
		if len(c.Containers) != 1 {
			t.Fatalf("step %d: %d containers", i, len(c.Containers))
		}
		got := c.Containers[0]
		check := func(what string, p *float64, want float64) {
			if math.IsNaN(want) != (p == nil) || p != nil && math.Abs(*p-want) > 1e-9 {
				t.Errorf("step %d: %s = %v, want %v", i, what, deref(p), want)
			}
		}
		check("cpu_percent", got.CPU, st.wantCPU)
		check("net_rx", got.Rx, st.wantRx)
		if i > 0 && c.IntervalSeconds != 2 {
			t.Errorf("interval %v, want 2", c.IntervalSeconds)
		}
		if got.MemLimit == nil || *got.MemLimit != -1 || got.Pids == nil || *got.Pids != 3 {
			t.Errorf("memory limit %v (want -1, unlimited), pids %v", deref64(got.MemLimit), deref64(got.Pids))
		}
	}
	var s series
	get(t, h, "/api/v1/series?ref=1", &s)
	if len(s.T) != len(steps) || len(s.CPU) != len(steps) {
		t.Fatalf("series of %d points, want %d", len(s.T), len(steps))
	}
	for i, st := range steps {
		if s.T[i] != t0.Add(time.Duration(i)*2*time.Second).UnixMilli() {
			t.Errorf("point %d at %d", i, s.T[i])
		}
		if math.IsNaN(st.wantCPU) != (s.CPU[i] == nil) || s.CPU[i] != nil && math.Abs(*s.CPU[i]-st.wantCPU) > 1e-4 {
			t.Errorf("point %d: cpu %v, want %v", i, deref(s.CPU[i]), st.wantCPU)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func deref64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestRingBounds: a ring keeps its last WithPoints points; past
// WithMaxContainers a new container is not kept and its points are
// counted, unless a departed one makes room; a departed container stays,
// marked, until its last point is as old as a full ring.
func TestRingBounds(t *testing.T) {
	k, err := live.New(live.WithPoints(4), live.WithMaxContainers(2))
	if err != nil {
		t.Fatal(err)
	}
	h := k.Handler()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for i := range 6 {
		write(t, k, at(i), sample("a", uint64(i)*1e8, 0, 0, 1), sample("b", 0, 0, 0, 1), sample("c", 0, 0, 0, 1))
	}
	var c containers
	get(t, h, "/api/v1/containers", &c)
	if len(c.Containers) != 2 || c.NotKept != 1 || c.DroppedPoints != 6 || k.Dropped() != 6 {
		t.Fatalf("%d containers, %d not kept, %d points dropped (Dropped %d); want 2, 1, 6", len(c.Containers), c.NotKept, c.DroppedPoints, k.Dropped())
	}
	var s series
	get(t, h, "/api/v1/series?ref=1", &s)
	if len(s.T) != 4 || s.T[0] != at(2).UnixMilli() || s.T[3] != at(5).UnixMilli() {
		t.Fatalf("ring holds %v, want the last 4 points (%d..%d)", s.T, at(2).UnixMilli(), at(5).UnixMilli())
	}
	// b departs: it is shown as departed, then c takes its place at once
	// (the ring was full), and b's series is gone.
	write(t, k, at(6), sample("a", 7e8, 0, 0, 1))
	get(t, h, "/api/v1/containers", &c)
	if len(c.Containers) != 2 || c.Containers[1].Name != "n-b" || c.Containers[1].State != "departed" {
		t.Fatalf("after b left: %+v", c.Containers)
	}
	write(t, k, at(7), sample("a", 8e8, 0, 0, 1), sample("c", 0, 0, 0, 1))
	get(t, h, "/api/v1/containers", &c)
	if len(c.Containers) != 2 || c.Containers[1].Name != "n-c" || c.NotKept != 0 {
		t.Fatalf("c did not take departed b's place: %+v", c)
	}
	// c departs and ages out after 4 intervals (a full ring).
	for i := 8; i < 12; i++ {
		write(t, k, at(i), sample("a", uint64(i)*1e8, 0, 0, 1))
		get(t, h, "/api/v1/containers", &c)
		if want := map[bool]int{true: 2, false: 1}[i < 11]; len(c.Containers) != want {
			t.Errorf("at %d: %d containers, want %d (c's last point at 7, a ring of 4 s)", i, len(c.Containers), want)
		}
	}
}

// TestHandlerSafety: every answer carries the CSP and nosniff; only GET
// and HEAD are served; a hostile name, label and interface name come out
// as JSON strings with <, > and & escaped, and the page's own markup and
// script hold no container string and use no innerHTML.
func TestHandlerSafety(t *testing.T) {
	k, _ := live.New()
	h := k.Handler()
	evil := `<img src=x onerror="document.title='pwned'">`
	s := sample("evil", 1, 1, 1, 1)
	s.Container.Name = evil
	s.Container.Labels = map[string]string{evil: evil + "\x01\xff"}
	s.Net.Interfaces[0].Name = "<b>x"
	write(t, k, t0, s)
	for _, p := range []string{"/", "/static/live.js", "/static/live.css", "/api/v1/containers", "/api/v1/series?ref=1"} {
		res := get(t, h, p, nil)
		if res.StatusCode != 200 {
			t.Errorf("%s: %s", p, res.Status)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
		body, _ := io.ReadAll(res.Body)
		if strings.Contains(string(body), "<img") || strings.Contains(string(body), "<b>x") {
			t.Errorf("%s: a container's markup comes out unescaped: %s", p, body)
		}
		if strings.Contains(string(body), "innerHTML") || strings.Contains(string(body), "outerHTML") || strings.Contains(string(body), "insertAdjacentHTML") {
			t.Errorf("%s: uses HTML parsing of strings", p)
		}
	}
	var c containers
	get(t, h, "/api/v1/containers", &c)
	got := c.Containers[0]
	if got.Name != evil || got.Labels[evil] != evil+"\uFFFD" || got.Interfaces[0] != "<b>x" {
		t.Errorf("strings not kept as text (sanitised): %q %q %q", got.Name, got.Labels, got.Interfaces)
	}
	if k.Sanitized().Replaced != 1 {
		t.Errorf("Sanitized %+v, want 1 value replaced", k.Sanitized())
	}
	head := httptest.NewRecorder()
	h.ServeHTTP(head, httptest.NewRequest(http.MethodHead, "/", nil))
	if head.Code != 200 || head.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("HEAD /: %d, CSP %q", head.Code, head.Header().Get("Content-Security-Policy"))
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/api/v1/containers", strings.NewReader("x")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	for _, p := range []string{"/metrics", "/static/../live.go", "/api/v1/series?ref=99", "/api/v1/series?ref=x"} {
		if res := get(t, h, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, res.Status)
		}
	}
}

func TestOptions(t *testing.T) {
	if _, err := live.New(live.WithPoints(1), live.WithMaxContainers(0), live.WithLogger(nil)); err == nil ||
		strings.Count(err.Error(), "live:") != 3 {
		t.Errorf("bad options: %v, want three errors", err)
	}
	k, _ := live.New()
	k.Close(context.Background())
	if k.Write(context.Background(), &sink.Snapshot{Time: t0}) == nil || k.Close(context.Background()) == nil {
		t.Error("Write and a second Close after Close succeeded")
	}
}

// fill writes points snapshots of n containers into a new Sink.
func fill(tb testing.TB, n, points int) *live.Sink {
	k, err := live.New(live.WithMaxContainers(n))
	if err != nil {
		tb.Fatal(err)
	}
	smps := make([]sink.Sample, n)
	for i := range smps {
		smps[i] = sample(fmt.Sprintf("%064x", i), 0, 0, 0, 2)
	}
	for p := range points {
		for i := range smps {
			smps[i].Cgroup.CPU.Usage.V += 1e7
		}
		write(tb, k, t0.Add(time.Duration(p)*time.Second), smps...)
	}
	return k
}

// ringBytes measures the heap one container's full ring and figures take:
// the live heap after filling n containers' rings, less before, over n.
func ringBytes(tb testing.TB, n int) float64 {
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	k := fill(tb, n, live.DefaultPoints)
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	goruntime.KeepAlive(k)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestRingBytes: a container with a full ring (DefaultPoints points) costs
// its points (PointBytes each) and at most 1.5 KiB more (its strings,
// map entry, figures), measured on the
// heap (runtime.MemStats) over 200 containers.
func TestRingBytes(t *testing.T) {
	per := ringBytes(t, 200)
	ring := float64(live.PointBytes * live.DefaultPoints)
	t.Logf("%.0f bytes per container with %d points (%.0f of them the points)", per, live.DefaultPoints, ring)
	if per < ring || per > ring+1536 {
		t.Errorf("%.0f bytes per container, want %.0f to %.0f", per, ring, ring+1536)
	}
}

// BenchmarkRingBytes reports the heap bytes of one container with a full
// ring (bytes/container) and the cost of writing a snapshot of 33
// containers into full rings.
func BenchmarkRingBytes(b *testing.B) {
	per := ringBytes(b, 200)
	k := fill(b, 33, live.DefaultPoints)
	smps := make([]sink.Sample, 33)
	for i := range smps {
		smps[i] = sample(fmt.Sprintf("%064x", i), 0, 0, 0, 2)
	}
	snap := &sink.Snapshot{Containers: smps}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		snap.Time = t0.Add(time.Duration(live.DefaultPoints+i) * time.Second)
		k.Write(context.Background(), snap)
	}
	b.ReportMetric(per, "bytes/container")
}

// BenchmarkPageRefresh is what one refresh of an open page costs the
// daemon at 33 containers with full rings: /api/v1/containers and one
// container's /api/v1/series, answered and encoded.
func BenchmarkPageRefresh(b *testing.B) {
	h := fill(b, 33, live.DefaultPoints).Handler()
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range []string{"/api/v1/containers", "/api/v1/series?ref=1"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			if rec.Code != 200 {
				b.Fatal(rec.Code)
			}
		}
	}
}
