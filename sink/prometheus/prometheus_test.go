package prometheus_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
)

var t0 = time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)

// gathered is a Gather's result: per metric name, per label set written
// "k=v,k=v" (sorted), the value.
type gathered map[string]map[string]float64 // name -> labels -> value

func gather(t *testing.T, g prometheus.Gatherer) gathered {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := gathered{}
	for _, mf := range mfs {
		m := map[string]float64{}
		for _, x := range mf.Metric {
			var ls []string
			for _, l := range x.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = x.Counter.GetValue()
			case dto.MetricType_GAUGE:
				v = x.Gauge.GetValue()
			default:
				t.Fatalf("%s: type %v", mf.GetName(), mf.GetType())
			}
			if x.TimestampMs != nil {
				t.Errorf("%s has a timestamp: staleness would not work", mf.GetName())
			}
			m[strings.Join(ls, ",")] = v
		}
		out[mf.GetName()] = m
	}
	return out
}

// labels is the label set of c's series with the default tags, plus extra.
func labels(c runtime.Container, extra ...string) string {
	ls := []string{"id=" + c.CgroupPath, "name=" + c.Name, "image=" + c.Image, "runtime=" + c.Runtime, "pod=", "namespace=", "container="}
	if c.Pod != nil {
		ls[4], ls[5], ls[6] = "pod="+c.Pod.Name, "namespace="+c.Pod.Namespace, "container="+c.Pod.Container
	}
	ls = append(ls, extra...)
	sort.Strings(ls)
	// Gather keeps labels with an empty value (pod= for a container outside
	// a pod); the exposition and Prometheus drop them.
	return strings.Join(ls, ",")
}

func newCollector(t *testing.T, opts ...sinkprom.Option) *sinkprom.Collector {
	t.Helper()
	c, err := sinkprom.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// snapshot2 has c-0 (everything, cgroup v2 style: weight, no shares) and
// c-1 in a pod with unlimited limits, an unavailable kernel memory, and a
// block I/O and a net/dev counter the kernel did not print.
func snapshot2(t time.Time) *sink.Snapshot {
	s := sinktest.FullSnapshot(2, 2, t)
	s.Containers[0].Cgroup.CPU.Shares = cgroup.Value{}
	c1 := &s.Containers[1]
	c1.Container.Pod = &runtime.Pod{Name: "web-7d9", Namespace: "shop", Container: "nginx"}
	c1.Cgroup.Memory.Limit = sinktest.Unlimited
	c1.Cgroup.CPU.Quota = sinktest.Unlimited
	c1.Cgroup.Pids.Limit = sinktest.Unlimited
	c1.Cgroup.Memory.Kernel = cgroup.Value{}
	c1.Cgroup.IO.Devices[1].WriteOps = cgroup.Value{}
	c1.Net.Interfaces[1].TxErrors = netns.Value{}
	c1.Net.Parts = netns.PartDev
	return s
}

// TestCollect gathers the Collector from a pedantic registry (which checks
// that every metric matches a described Desc) and checks values and labels
// exactly, units converted to seconds, limits per the documented convention,
// and that a container gone from the snapshot is gone from the next Gather.
func TestCollect(t *testing.T) {
	c := newCollector(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if g := gather(t, reg); len(g) != 0 {
		t.Fatalf("before any Write: %v", g)
	}
	snap := snapshot2(t0)
	ctx := context.Background()
	if err := c.Write(ctx, snap); err != nil {
		t.Fatal(err)
	}
	c0, c1 := snap.Containers[0].Container, snap.Containers[1].Container
	// The caller reuses its snapshot: the Collector must have copied it.
	snap.Containers[0].Cgroup.CPU.Usage = sinktest.K(1)
	snap.Containers[0].Net.Interfaces[1].RxBytes = sinktest.N(1)
	snap.Containers = snap.Containers[:0]

	g := gather(t, reg)
	checks := []struct {
		name, labels string
		want         float64
	}{
		{"container_cpu_usage_seconds_total", labels(c0, "cpu=total"), 3},
		{"container_cpu_usage_seconds_total", labels(c1, "cpu=total"), 3.000001},
		{"container_cpu_user_seconds_total", labels(c0), 2},
		{"container_cpu_system_seconds_total", labels(c0), 1},
		{"container_cpu_cfs_periods_total", labels(c0), 100},
		{"container_cpu_cfs_throttled_periods_total", labels(c0), 7},
		{"container_cpu_cfs_throttled_seconds_total", labels(c0), 0.07},
		{"container_spec_cpu_quota", labels(c0), 50000},
		{"container_spec_cpu_period", labels(c0), 100000},
		{"container_spec_cpu_shares", labels(c0), 2 + 99*262142/9999}, // from weight 100
		{"container_spec_cpu_shares", labels(c1), 1024},
		{"container_memory_usage_bytes", labels(c0), 200 << 20},
		{"container_memory_working_set_bytes", labels(c0), 150 << 20},
		{"container_memory_rss", labels(c0), 100 << 20},
		{"container_memory_cache", labels(c0), 100 << 20},
		{"container_memory_mapped_file", labels(c0), 2 << 20},
		{"container_memory_swap", labels(c0), 0},
		{"container_memory_max_usage_bytes", labels(c0), 300 << 20},
		{"container_memory_kernel_usage", labels(c0), 3 << 20},
		{"container_memory_failures_total", labels(c0, "failure_type=pgfault", "scope=hierarchy"), 5000},
		{"container_memory_failures_total", labels(c0, "failure_type=pgmajfault", "scope=hierarchy"), 12},
		{"container_spec_memory_limit_bytes", labels(c0), 512 << 20},
		{"container_spec_memory_limit_bytes", labels(c1), 0}, // unlimited: 0, as cAdvisor
		{"container_spec_memory_swap_limit_bytes", labels(c0), 0},
		{"container_oom_events_total", labels(c0), 1},
		{"container_threads", labels(c0), 5},
		{"container_threads_max", labels(c0), 1000},
		{"container_threads_max", labels(c1), 0},
		{"container_last_seen", labels(c0), float64(t0.Unix())},
		{"container_fs_reads_bytes_total", labels(c0, "device=/dev/vda"), 4096},
		{"container_fs_writes_bytes_total", labels(c0, "device=/dev/vda"), 8192},
		{"container_fs_reads_total", labels(c0, "device=7:3"), 1},
		{"container_fs_writes_total", labels(c0, "device=/dev/vda"), 20},
		{"container_fs_writes_total", labels(c0, "device=7:3"), 0},
		{"container_fs_reads_total", labels(c1, "device=7:3"), 1},
		{"container_network_transmit_errors_total", labels(c1, "interface=lo"), 4},
		{"container_hugetlb_usage_bytes", labels(c0, "pagesize=2MB"), 0},
		{"container_pressure_cpu_waiting_seconds_total", labels(c0), 0.123456},
		{"container_pressure_cpu_stalled_seconds_total", labels(c0), 0.001},
		{"container_pressure_io_stalled_seconds_total", labels(c0), 0.000066},
		{"container_network_receive_bytes_total", labels(c0, "interface=eth0"), 1_000_100},
		{"container_network_receive_bytes_total", labels(c0, "interface=lo"), 1_000_000},
		{"container_network_receive_packets_total", labels(c0, "interface=eth0"), 1100},
		{"container_network_receive_packets_dropped_total", labels(c0, "interface=eth0"), 2},
		{"container_network_receive_errors_total", labels(c0, "interface=eth0"), 1},
		{"container_network_transmit_bytes_total", labels(c0, "interface=eth0"), 2_000_100},
		{"container_network_transmit_packets_total", labels(c0, "interface=eth0"), 2100},
		{"container_network_transmit_packets_dropped_total", labels(c0, "interface=eth0"), 5},
		{"container_network_transmit_errors_total", labels(c0, "interface=eth0"), 4},
		{"container_network_tcp_connections", labels(c0, "tcp_state=established"), 7},
		{"container_network_tcp_connections", labels(c0, "tcp_state=listen"), 2},
		{"container_network_tcp6_connections", labels(c0, "tcp_state=timewait"), 3},
	}
	for _, ck := range checks {
		v, ok := g[ck.name][ck.labels]
		if !ok {
			t.Errorf("%s{%s} missing; have %v", ck.name, ck.labels, keys(g[ck.name]))
			continue
		}
		if diff := v - ck.want; diff > 1e-9*max(1, ck.want) || diff < -1e-9*max(1, ck.want) {
			t.Errorf("%s{%s} = %v, want %v", ck.name, ck.labels, v, ck.want)
		}
	}
	absent := []struct{ name, labels string }{
		{"container_spec_cpu_quota", labels(c1)},                                   // no quota
		{"container_memory_kernel_usage", labels(c1)},                              // unavailable
		{"container_network_tcp_connections", labels(c1, "tcp_state=established")}, // part not read
		{"container_start_time_seconds", labels(c0)},                               // unknown
		{"container_fs_writes_total", labels(c1, "device=7:3")},                    // no such row
		{"container_network_transmit_errors_total", labels(c1, "interface=eth0")},  // no such column
	}
	for _, a := range absent {
		if v, ok := g[a.name][a.labels]; ok {
			t.Errorf("%s{%s} = %v, want absent", a.name, a.labels, v)
		}
	}
	// The label allow-list: no container label ("env", "noise") ever.
	for name, m := range g {
		for ls := range m {
			if strings.Contains(ls, "env=") || strings.Contains(ls, "noise") {
				t.Errorf("%s{%s}: a container label not in the allow-list", name, ls)
			}
		}
	}

	// c-0 goes away: its series are gone from the next Gather.
	next := snapshot2(t0.Add(time.Second))
	next.Containers = next.Containers[1:]
	if err := c.Write(ctx, next); err != nil {
		t.Fatal(err)
	}
	g = gather(t, reg)
	for name, m := range g {
		for ls := range m {
			if strings.Contains(ls, "name=c-0") {
				t.Errorf("%s{%s}: c-0 is gone but still served", name, ls)
			}
		}
	}
	if v := g["container_last_seen"][labels(c1)]; v != float64(t0.Unix()+1) {
		t.Errorf("c-1 last seen %v after the second Write", v)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if g := gather(t, reg); len(g) != 0 {
		t.Errorf("after Close: %d families", len(g))
	}
}

func keys(m map[string]float64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestOptions: the id label as the runtime's ID, a chosen container label,
// cAdvisor's interface filter.
func TestOptions(t *testing.T) {
	tags := sink.Tags{ID: true, Name: true, Labels: []sink.LabelTag{{Label: "com.example.team"}}}
	c := newCollector(t, sinkprom.WithTags(tags), sinkprom.WithCgroupID(false), sinkprom.WithInterfaceFilter(netns.DefaultInterfaceFilter))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	snap := snapshot2(t0)
	if err := c.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	g := gather(t, reg)
	want := "container_label_com_example_team=core,cpu=total,id=" + snap.Containers[0].Container.ID + ",name=c-0"
	if v, ok := g["container_cpu_usage_seconds_total"][want]; !ok || v != 3 {
		t.Errorf("container_cpu_usage_seconds_total{%s} = %v %v; have %v", want, v, ok, keys(g["container_cpu_usage_seconds_total"]))
	}
	for ls := range g["container_network_receive_bytes_total"] {
		if strings.Contains(ls, "interface=lo") {
			t.Errorf("lo kept with cAdvisor's filter: %s", ls)
		}
	}
	if len(g["container_network_receive_bytes_total"]) != 2 {
		t.Errorf("want eth0 of both containers: %v", keys(g["container_network_receive_bytes_total"]))
	}
}

// TestConcurrentScrapes scrapes the Handler from several goroutines while
// another writes snapshots of varying size (run with -race). Every scrape
// must be a whole snapshot: the same last-seen time on every container.
func TestConcurrentScrapes(t *testing.T) {
	c := newCollector(t)
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	ctx := context.Background()
	snaps := []*sink.Snapshot{sinktest.FullSnapshot(3, 2, t0), sinktest.FullSnapshot(7, 1, t0.Add(time.Second)), sinktest.FullSnapshot(1, 4, t0.Add(2*time.Second))}
	if err := c.Write(ctx, snaps[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Write(ctx, snaps[i%len(snaps)]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var swg sync.WaitGroup
	for range 4 {
		swg.Add(1)
		go func() {
			defer swg.Done()
			for range 10 {
				resp, err := http.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d: %s", resp.StatusCode, b)
					return
				}
				seen := map[string]bool{}
				n := 0
				for _, l := range strings.Split(string(b), "\n") {
					if strings.HasPrefix(l, "container_last_seen{") {
						seen[l[strings.LastIndexByte(l, ' ')+1:]] = true
						n++
					}
				}
				if len(seen) != 1 || (n != 3 && n != 7 && n != 1) {
					t.Errorf("a scrape mixed snapshots: %d containers, last-seen values %v", n, seen)
					return
				}
			}
		}()
	}
	swg.Wait()
	close(stop)
	wg.Wait()
}

// TestPromtoolCheckMetrics runs Prometheus's own linter, promtool check
// metrics, on the exposition of a full snapshot.
func TestPromtoolCheckMetrics(t *testing.T) {
	bin, why := sinktest.Binary("METRICSD_TEST_PROMTOOL")
	if bin == "" {
		rttest.Unavailable(t, "%s", "no promtool: "+why)
	}
	c := newCollector(t)
	snap := sinktest.FullSnapshot(3, 2, t0)
	snap.Self = &sink.Self{ScrapeSeconds: 0.01, Containers: 3, Errors: []sink.StageErrors{{Stage: "open", Count: 1}}}
	if err := c.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if !strings.Contains(body, "# TYPE container_cpu_usage_seconds_total counter") || !strings.Contains(body, `metricsd_errors_total{stage="open"} 1`) {
		t.Fatalf("exposition lacks container_cpu_usage_seconds_total:\n%.2000s", body)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestPrometheusScrape has a real Prometheus 2.x scrape the Handler on
// 127.0.0.1 and finds the series through its HTTP API with the expected
// values and labels; then a container goes away and its series disappear
// from Prometheus's instant queries after the next scrape (staleness).
func TestPrometheusScrape(t *testing.T) {
	bin, why := sinktest.Binary("METRICSD_TEST_PROMETHEUS")
	if bin == "" {
		rttest.Unavailable(t, "%s", "no prometheus: "+why)
	}
	c := newCollector(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.Write(ctx, snapshot2(t0)); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", c.Handler())
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	defer hs.Close()

	p, err := sinktest.StartPrometheus(bin, t.TempDir(), l.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	query := func(q string) []sinktest.Sample {
		t.Helper()
		r, err := p.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	waitFor := func(what, q string, ok func([]sinktest.Sample) bool) []sinktest.Sample {
		t.Helper()
		var r []sinktest.Sample
		if !sinktest.Poll(30*time.Second, func() bool { r = query(q); return ok(r) }) {
			t.Fatalf("%s: %s = %v\nprometheus log:\n%s", what, q, r, p.Log())
		}
		return r
	}
	r := waitFor("first scrape", `container_cpu_usage_seconds_total`, func(r []sinktest.Sample) bool { return len(r) == 2 })
	sort.Slice(r, func(i, j int) bool { return r[i].Metric["name"] < r[j].Metric["name"] })
	snap := snapshot2(t0)
	c0, c1 := snap.Containers[0].Container, snap.Containers[1].Container
	// cpu="total", as cAdvisor: dashboards select it.
	want0 := map[string]string{"__name__": "container_cpu_usage_seconds_total", "cpu": "total", "id": c0.CgroupPath, "name": "c-0", "image": c0.Image, "runtime": "docker", "job": "metricsd", "instance": l.Addr().String()}
	if fmt.Sprint(r[0].Metric) != fmt.Sprint(want0) || r[0].Value != 3 {
		t.Errorf("c-0: %v = %v, want %v = 3", r[0].Metric, r[0].Value, want0)
	}
	want1 := map[string]string{"__name__": "container_cpu_usage_seconds_total", "cpu": "total", "id": c1.CgroupPath, "name": "c-1", "image": c1.Image, "runtime": "docker",
		"pod": "web-7d9", "namespace": "shop", "container": "nginx", "job": "metricsd", "instance": l.Addr().String()}
	if fmt.Sprint(r[1].Metric) != fmt.Sprint(want1) || r[1].Value != 3.000001 {
		t.Errorf("c-1: %v = %v, want %v = 3.000001", r[1].Metric, r[1].Value, want1)
	}
	for q, want := range map[string]float64{
		`container_memory_working_set_bytes{name="c-0"}`:                        150 << 20,
		`container_network_receive_bytes_total{name="c-1",interface="eth0"}`:    1_001_100,
		`container_spec_memory_limit_bytes{name="c-1"}`:                         0,
		`container_fs_writes_bytes_total{name="c-0",device="/dev/vda"}`:         8192,
		`container_memory_failures_total{name="c-0",failure_type="pgmajfault"}`: 12,
	} {
		r := query(q)
		if len(r) != 1 || r[0].Value != want {
			t.Errorf("%s = %v, want one sample %v", q, r, want)
		}
	}
	if r := query(`container_spec_cpu_quota{name="c-1"}`); len(r) != 0 {
		t.Errorf("quota of c-1 (unlimited) = %v, want absent", r)
	}

	// c-0 goes away, c-1's CPU time grows: after the next scrape c-0 is
	// stale and c-1 has its new value.
	next := snapshot2(t0.Add(time.Second))
	next.Containers = next.Containers[1:]
	next.Containers[0].Cgroup.CPU.Usage = sinktest.K(7_500_000_000)
	if err := c.Write(ctx, next); err != nil {
		t.Fatal(err)
	}
	waitFor("c-0 gone, c-1 updated", `container_cpu_usage_seconds_total`, func(r []sinktest.Sample) bool {
		return len(r) == 1 && r[0].Metric["name"] == "c-1" && r[0].Value == 7.5
	})
	if r := query(`{name="c-0"}`); len(r) != 0 {
		t.Errorf("series of the gone c-0 still there: %d, e.g. %v", len(r), r[0].Metric)
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestSelfSeries: a snapshot's Self is served as metricsd_* series with no
// container labels, through a pedantic registry.
func TestSelfSeries(t *testing.T) {
	c := newCollector(t)
	snap := snapshot2(t0)
	snap.Self = &sink.Self{ScrapeSeconds: 0.02, Containers: 2, Namespaces: 2, SinkDropped: 5, SinkWriteSeconds: 0.25,
		Errors: []sink.StageErrors{{Stage: "discover", Count: 1}, {Stage: "open"}, {Stage: "cgroup"}, {Stage: "net"}, {Stage: "sink", Count: 4}}}
	if err := c.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				got[key] = g.GetValue()
			} else if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"metricsd_scrape_duration_seconds":     0.02,
		"metricsd_containers":                  2,
		"metricsd_network_namespaces":          2,
		"metricsd_errors_total,stage=discover": 1,
		"metricsd_errors_total,stage=sink":     4,
		"metricsd_sink_dropped_points_total":   5,
		"metricsd_sink_write_duration_seconds": 0.25,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}
