package metricsd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
	"github.com/metricsd/metricsd/sink/otlp"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
	"github.com/metricsd/metricsd/sink/remotewrite"
	"github.com/metricsd/metricsd/sink/stdout"
)

// oomSinks is every sink an OOM test checks, each read back on its own
// terms: stdout in line protocol and in JSON lines (buffers), the
// Prometheus sink (its page), and, where scripts/servers.sh provides their
// servers, InfluxDB (a real influxd, queried), remote_write (a real
// VictoriaMetrics, queried) and OTLP (the OpenTelemetry Collector's
// receiver, which decodes what it got). Plus a recorder of the snapshots'
// Departed and of the events, as the Collector hands them over.
type oomSinks struct {
	line, json syncBuf
	prom       *sinkprom.Collector
	promPage   []byte
	rec        *oomRecorder
	sinks      []sink.Sink

	influxd *sinktest.Influxd
	vm      *sinktest.Receiver
	otlpr   *sinktest.OTLPReceiver
}

// syncBuf is a bytes.Buffer for a sink written from Run's goroutine and
// read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// oomRecorder records what the Collector hands a sink about OOM kills: each
// snapshot's Departed, each event, and each live container's count.
type oomRecorder struct {
	mu       sync.Mutex
	departed map[string][]uint64 // by container name: OOMKills, per snapshot it was in
	events   map[string][]sink.Event
	live     map[string]uint64 // by name: the latest Memory.Events.OOMKill
	seen     map[string]bool   // by name: in a snapshot's Containers once
	snaps    int
}

func newOOMRecorder() *oomRecorder {
	return &oomRecorder{departed: map[string][]uint64{}, events: map[string][]sink.Event{}, live: map[string]uint64{}, seen: map[string]bool{}}
}

func (r *oomRecorder) Write(ctx context.Context, s *sink.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps++
	for _, c := range s.Containers {
		r.seen[c.Container.Name] = true
		if v, ok := c.Cgroup.Memory.Events.OOMKill.Get(); ok {
			r.live[c.Container.Name] = v
		}
	}
	for _, d := range s.Departed {
		r.departed[d.Container.Name] = append(r.departed[d.Container.Name], d.OOMKills.V)
	}
	return nil
}

func (r *oomRecorder) WriteEvent(ctx context.Context, e *sink.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[e.Container.Name] = append(r.events[e.Container.Name], *e)
	return nil
}

func (r *oomRecorder) Close(ctx context.Context) error { return nil }

// hasSeen reports whether a snapshot had the container.
func (r *oomRecorder) hasSeen(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[name]
}

// eventKills sums the kills of the container's events.
func (r *oomRecorder) eventKills(name string) (kills uint64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events[name] {
		kills += e.Count
	}
	return kills, len(r.events[name])
}

// departedCount returns the count the container departed with and in how
// many snapshots it was.
func (r *oomRecorder) departedCount(name string) (kills uint64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.departed[name]
	if len(d) == 0 {
		return 0, 0
	}
	return d[len(d)-1], len(d)
}

// newOOMSinks makes the sinks, starting the servers that are available.
func newOOMSinks(t *testing.T) *oomSinks {
	t.Helper()
	ctx := t.Context()
	s := &oomSinks{rec: newOOMRecorder()}
	var err error
	lineSink, err := stdout.New(&s.line)
	if err != nil {
		t.Fatal(err)
	}
	jsonSink, err := stdout.New(&s.json, stdout.WithFormat(stdout.JSONLines))
	if err != nil {
		t.Fatal(err)
	}
	if s.prom, err = sinkprom.New(); err != nil {
		t.Fatal(err)
	}
	s.sinks = []sink.Sink{s.rec, lineSink, jsonSink, s.prom}
	if bin, why := sinktest.Binary("METRICSD_TEST_INFLUXD"); bin != "" {
		if s.influxd, err = sinktest.StartInfluxd(bin, t.TempDir(), sinktest.InfluxdConfig{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.influxd.Stop)
		if err := s.influxd.Exec(ctx, "CREATE DATABASE oom"); err != nil {
			t.Fatal(err)
		}
		ifx, err := influx.New(s.influxd.URL, influx.WithV1("oom", ""), influx.WithFlushInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		s.sinks = append(s.sinks, ifx)
	} else {
		t.Logf("InfluxDB not checked: %s", why)
	}
	if bin, why := sinktest.Binary("METRICSD_TEST_VICTORIAMETRICS"); bin != "" {
		if s.vm, err = sinktest.StartVictoriaMetrics(bin, t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.vm.Stop)
		rw, err := remotewrite.New(s.vm.WriteURL, remotewrite.WithFlushInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		s.sinks = append(s.sinks, rw)
	} else {
		t.Logf("remote_write not checked: %s", why)
	}
	if bin, why := sinktest.Binary("METRICSD_TEST_OTLPRECEIVER"); bin != "" {
		if s.otlpr, err = sinktest.StartOTLPReceiver(bin, t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.otlpr.Stop)
		o, err := otlp.New(s.otlpr.MetricsURL, otlp.WithFlushInterval(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		s.sinks = append(s.sinks, o)
	} else {
		t.Logf("OTLP not checked: %s", why)
	}
	return s
}

// scrape takes the Prometheus sink's page, as a scrape does: call it
// before Run ends (a closed sink serves nothing).
func (s *oomSinks) scrape(t *testing.T) {
	rec := httptest.NewRecorder()
	s.prom.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	s.promPage, _ = io.ReadAll(rec.Body)
}

// oomCount is what each sink says of one container's OOM kills.
type oomCount struct {
	sink       string
	total      float64 // the counter: its last value
	eventKills float64 // the events' kills summed (-1: the sink writes no events)
	events     int
}

// check asserts that every sink counted want OOM kills of the container
// named name, and (for the sinks that write events) in events whose kills
// add up to want; it returns what each sink said, for the test's log. The
// sinks must have been closed (Run ended): what they buffered is sent.
func (s *oomSinks) check(t *testing.T, name string, want uint64) []oomCount {
	t.Helper()
	ctx := t.Context()
	var got []oomCount
	k, n := s.rec.eventKills(name)
	live := s.rec.live[name]
	dep, _ := s.rec.departedCount(name)
	got = append(got, oomCount{"collector", float64(max(live, dep)), float64(k), n})

	for _, f := range []struct {
		name string
		buf  *syncBuf
	}{{"stdout line", &s.line}, {"stdout json", &s.json}} {
		c := oomCount{sink: f.name}
		parsePoints(t, f.buf.String(), f.name == "stdout json", func(m string, tags map[string]string, fields map[string]float64) {
			if tags["name"] != name {
				return
			}
			switch m {
			case "container_memory":
				if v, ok := fields["events_oom_kill"]; ok {
					c.total = v
				}
			case "container_oom_kill":
				c.events++
				c.eventKills += fields["kills"]
			}
		})
		got = append(got, c)
	}

	page := s.promPage
	c := oomCount{sink: "prometheus", eventKills: -1}
	re := regexp.MustCompile(`(?m)^container_oom_events_total\{[^}]*name="` + regexp.QuoteMeta(name) + `"[^}]*\} (\S+)$`)
	if m := re.FindSubmatch(page); m != nil {
		c.total, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	got = append(got, c)

	if s.influxd != nil {
		c := oomCount{sink: "influxdb"}
		q := func(query string) (float64, int) {
			series, err := s.influxd.Query(ctx, "oom", query)
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			if len(series) == 0 || len(series[0].Values) == 0 {
				return 0, 0
			}
			num, _ := series[0].Values[0][1].(json.Number) // the sinktest client decodes with UseNumber
			v, _ := num.Float64()
			return v, len(series[0].Values)
		}
		c.total, _ = q(`SELECT last(events_oom_kill) FROM container_memory WHERE "name" = '` + name + `'`)
		c.eventKills, _ = q(`SELECT sum(kills) FROM container_oom_kill WHERE "name" = '` + name + `'`)
		n, _ := q(`SELECT count(kills) FROM container_oom_kill WHERE "name" = '` + name + `'`)
		c.events = int(n)
		got = append(got, c)
	}
	if s.vm != nil {
		c := oomCount{sink: "remote_write (victoria-metrics)", eventKills: -1}
		if err := s.vm.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		sinktest.Poll(10*time.Second, func() bool {
			vec, err := s.vm.QueryAt(ctx, `max_over_time(container_oom_events_total{name="`+name+`"}[1h])`, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(vec) > 0 {
				c.total = vec[0].Value
			}
			return c.total >= float64(want)
		})
		got = append(got, c)
	}
	if s.otlpr != nil {
		c := oomCount{sink: "otlp (collector receiver)", eventKills: -1}
		reqs, err := s.otlpr.Received(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			for _, rm := range r.ResourceMetrics {
				if n, _ := sinktest.Attr(rm.Resource.Attributes, "container.name"); n != name {
					continue
				}
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						if m.Name == "container.memory.oom_kills" && m.Sum != nil {
							for _, p := range m.Sum.DataPoints {
								c.total = max(c.total, p.Value())
							}
						}
					}
				}
			}
		}
		got = append(got, c)
	}

	for _, c := range got {
		if c.total != float64(want) {
			t.Errorf("%s: %s counted %v OOM kills, want %d", c.sink, name, c.total, want)
		}
		if c.eventKills >= 0 && (c.eventKills != float64(want) || c.events < 1 && want > 0) {
			t.Errorf("%s: %s has %d OOM kill events for %v kills, want %d kills", c.sink, name, c.events, c.eventKills, want)
		}
	}
	return got
}

// parsePoints calls f for each point of stdout's output, line protocol
// or JSON lines (integer and float fields as float64).
func parsePoints(t *testing.T, out string, isJSON bool, f func(m string, tags map[string]string, fields map[string]float64)) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if isJSON {
			var p struct {
				Name   string
				Tags   map[string]string
				Fields map[string]float64
			}
			if err := json.Unmarshal([]byte(l), &p); err != nil {
				t.Fatalf("not a JSON point: %v %q", err, l)
			}
			f(p.Name, p.Tags, p.Fields)
			continue
		}
		// measurement,tags fields time: the test's names and values have
		// no escaped spaces or commas.
		parts := strings.Split(l, " ")
		if len(parts) != 3 {
			continue
		}
		head := strings.Split(parts[0], ",")
		tags := map[string]string{}
		for _, kv := range head[1:] {
			k, v, _ := strings.Cut(kv, "=")
			tags[k] = v
		}
		fields := map[string]float64{}
		for _, kv := range strings.Split(parts[1], ",") {
			k, v, _ := strings.Cut(kv, "=")
			x, err := strconv.ParseFloat(strings.TrimSuffix(v, "i"), 64)
			if err == nil {
				fields[k] = x
			}
		}
		f(head[0], tags, fields)
	}
}

func (c oomCount) String() string {
	if c.eventKills < 0 {
		return fmt.Sprintf("%s: %v", c.sink, c.total)
	}
	return fmt.Sprintf("%s: %v (%d events, %v kills)", c.sink, c.total, c.events, c.eventKills)
}
