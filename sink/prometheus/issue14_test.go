package prometheus_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
)

// TestNewSeries: the series of issue 14 (memory events, local and swap
// events, swap peak, pids peak and fork failures, PSI averages, TCP
// segments and UDP errors) with their values, each from its Stats field.
func TestNewSeries(t *testing.T) {
	c := newCollector(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	snap := sinktest.FullSnapshot(1, 2, t0)
	if err := c.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	c0 := snap.Containers[0].Container
	g := gather(t, reg)
	for _, ck := range []struct {
		name, labels string
		want         float64
	}{
		{"container_memory_swap_max_usage_bytes", labels(c0), 1 << 20},
		{"container_memory_events_total", labels(c0, "event=high"), 1},
		{"container_memory_events_total", labels(c0, "event=max"), 2},
		{"container_memory_events_total", labels(c0, "event=oom_kill"), 1},
		{"container_memory_events_total", labels(c0, "event=oom_group_kill"), 0},
		{"container_memory_events_local_total", labels(c0, "event=max"), 2},
		{"container_memory_swap_events_total", labels(c0, "event=max"), 4},
		{"container_memory_swap_events_total", labels(c0, "event=fail"), 5},
		{"container_threads_peak", labels(c0), 9},
		{"container_fork_failures_total", labels(c0), 6},
		{"container_pressure_cpu_waiting_ratio", labels(c0, "window=10s"), 0.015},
		{"container_pressure_cpu_waiting_ratio", labels(c0, "window=60s"), 0.0075},
		{"container_pressure_cpu_waiting_ratio", labels(c0, "window=300s"), 0.0025},
		{"container_pressure_cpu_stalled_ratio", labels(c0, "window=10s"), 0.005},
		{"container_pressure_io_waiting_ratio", labels(c0, "window=10s"), 0.001},
		{"container_network_tcp_segments_received_total", labels(c0), 9000},
		{"container_network_tcp_segments_sent_total", labels(c0), 8000},
		{"container_network_tcp_segments_retransmitted_total", labels(c0), 11},
		{"container_network_udp_receive_errors_total", labels(c0), 3},
		{"container_network_udp_receive_buffer_errors_total", labels(c0), 2},
		{"container_network_udp_send_buffer_errors_total", labels(c0), 1},
	} {
		v, ok := g[ck.name][ck.labels]
		if !ok {
			t.Errorf("%s{%s} missing; have %v", ck.name, ck.labels, keys(g[ck.name]))
			continue
		}
		if d := v - ck.want; d > 1e-12 || d < -1e-12 {
			t.Errorf("%s{%s} = %v, want %v", ck.name, ck.labels, v, ck.want)
		}
	}
	if _, ok := g["container_info"]; ok {
		t.Error("container_info without Tags.Info")
	}
}

// TestContainerInfo: with Tags.Info, container_info carries every tag of
// each container with the value 1, and the other series keep theirs; with
// InfoOnly, the other series carry id (and the global tags) alone, and
// join container_info on it.
func TestContainerInfo(t *testing.T) {
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "com.example.team", Tag: "team"}}
	tags.Global = []sink.Tag{{Key: "host", Value: "h1"}}
	for _, only := range []bool{false, true} {
		tg := tags
		tg.Info, tg.InfoOnly = !only, only
		c := newCollector(t, sinkprom.WithTags(tg))
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		snap := sinktest.FullSnapshot(2, 1, t0)
		if err := c.Write(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		g := gather(t, reg)
		for _, s := range snap.Containers {
			ct := s.Container
			info := "container=,host=h1,id=" + ct.CgroupPath + ",image=" + ct.Image + ",name=" + ct.Name + ",namespace=,pod=,runtime=docker,team=core"
			if v, ok := g["container_info"][info]; !ok || v != 1 {
				t.Errorf("InfoOnly %v: container_info{%s} = %v %v; have %v", only, info, v, ok, keys(g["container_info"]))
			}
			series := info
			if only {
				series = "host=h1,id=" + ct.CgroupPath
			}
			if _, ok := g["container_memory_usage_bytes"][series]; !ok {
				t.Errorf("InfoOnly %v: container_memory_usage_bytes{%s} missing; have %v", only, series, keys(g["container_memory_usage_bytes"]))
			}
		}
	}
	if _, err := sink.NewTagger(sink.Tags{Name: true, InfoOnly: true}); err == nil {
		t.Error("InfoOnly without ID accepted")
	}
}

// TestDepartedServedOnce: a container that left with OOM kills
// (Snapshot.Departed) keeps its container_oom_events_total series until a
// scrape has served it, however many Writes come before, and not after;
// one whose labels are a live container's is left out (the live series
// wins).
func TestDepartedServedOnce(t *testing.T) {
	c := newCollector(t)
	ctx := context.Background()
	gone := sinktest.Container("gone", 5)
	snap := sinktest.FullSnapshot(1, 1, t0)
	snap.Departed = []sink.Departed{{Container: gone, OOMKills: sinktest.K(3), Time: t0}}
	if err := c.Write(ctx, snap); err != nil {
		t.Fatal(err)
	}
	series := `container_oom_events_total{container="",id="` + gone.CgroupPath + `",image="` + gone.Image + `",name="gone-5",namespace="",pod="",runtime="docker"} 3`
	scrape := func() string {
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	// Two more snapshots without it, before any scrape: still served.
	for i := 1; i <= 2; i++ {
		next := sinktest.FullSnapshot(1, 1, t0.Add(time.Duration(i)*time.Second))
		if err := c.Write(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	page := scrape()
	if !strings.Contains(page, series) {
		t.Fatalf("the departed container's series is not served:\n%s", grep(page, "container_oom_events_total"))
	}
	if !strings.Contains(scrape(), series) {
		t.Error("a second scrape before the next Write no longer serves it")
	}
	if err := c.Write(ctx, sinktest.FullSnapshot(1, 1, t0.Add(3*time.Second))); err != nil {
		t.Fatal(err)
	}
	if page := scrape(); strings.Contains(page, `name="gone-5"`) {
		t.Errorf("served again after a scrape and a Write:\n%s", grep(page, "gone-5"))
	}

	// Departed under the labels of a live container: left out.
	snap = sinktest.FullSnapshot(1, 1, t0.Add(4*time.Second))
	snap.Departed = []sink.Departed{{Container: snap.Containers[0].Container, OOMKills: sinktest.K(7), Time: t0}}
	if err := c.Write(ctx, snap); err != nil {
		t.Fatal(err)
	}
	page = scrape()
	if n := strings.Count(page, "container_oom_events_total{"); n != 1 {
		t.Errorf("%d container_oom_events_total series, want the live container's only:\n%s", n, grep(page, "container_oom_events_total"))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("Gather: %v", err)
	}
}

func grep(page, s string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDocumented: every family the sink serves (a full snapshot with
// container_info and a departed container) is in the Prometheus section
// of docs/METRICS.md, the collector's own in its table.
func TestDocumented(t *testing.T) {
	doc, err := sinktest.MetricsDoc()
	if err != nil {
		t.Fatal(err)
	}
	prom, self := sinktest.Section(doc, "Prometheus series"), sinktest.Section(doc, "The collector's own figures")
	tags := sink.DefaultTags()
	tags.Info = true
	c := newCollector(t, sinkprom.WithTags(tags))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if err := c.Write(context.Background(), sinktest.MixedSnapshot(t0)); err != nil {
		t.Fatal(err)
	}
	for name := range gather(t, reg) {
		if !prom[name] && !self[name] {
			t.Errorf("%s is not in docs/METRICS.md", name)
		}
	}
}
