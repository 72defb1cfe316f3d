package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/points"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
	"github.com/metricsd/metricsd/sink/stdout"
)

// The sink benchmarks encode one snapshot of 1,000 containers, each with
// full cgroup stats (2 block devices, 1 hugetlb size, PSI) and netns stats
// with 4 interfaces, as each sink does per interval (issue 5):
//
//	cd bench && go test -run '^$' -bench Sink -benchmem
const (
	benchContainers = 1000
	benchIfaces     = 4
)

var benchT = time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)

// benchSnapshots are the snapshots each sink benchmark encodes, all with
// full cgroup stats and 4 interfaces per container: every netns part
// (TierAll: net/dev, sockstat, snmp, netstat, TCP states), what
// netns.TierCheap reads every interval (net/dev and sockstat), and net/dev
// alone (Dev: the "full stats, 4 interfaces each").
func benchSnapshots() []struct {
	name string
	snap *sink.Snapshot
} {
	all := sinktest.FullSnapshot(benchContainers, benchIfaces, benchT)
	cheap := sinktest.FullSnapshot(benchContainers, benchIfaces, benchT)
	dev := sinktest.FullSnapshot(benchContainers, benchIfaces, benchT)
	for i := range cheap.Containers {
		cheap.Containers[i].Net.Parts = netns.TierCheap
		dev.Containers[i].Net.Parts = netns.PartDev
	}
	return []struct {
		name string
		snap *sink.Snapshot
	}{{"TierAll", all}, {"TierCheap", cheap}, {"Dev", dev}}
}

// BenchmarkSinkInfluxEncode is sink/influx's encoding (sink/points.Encoder,
// line protocol through influxdata/line-protocol/v2) into a reused buffer,
// which is what influx.Sink.Write does before buffering.
func BenchmarkSinkInfluxEncode(b *testing.B) {
	for _, bs := range benchSnapshots() {
		b.Run(bs.name, func(b *testing.B) {
			snap := bs.snap
			enc := points.NewEncoder(sink.MustTagger(sink.DefaultTags()), lineprotocol.Nanosecond, nil)
			var buf []byte
			var ends []int
			buf, ends, _, _ = enc.Append(buf, ends, snap)
			b.ReportMetric(float64(len(ends)), "points/op")
			b.ReportMetric(float64(len(buf)), "bytes/snapshot")
			b.ResetTimer()
			for b.Loop() {
				var err error
				buf, ends, _, err = enc.Append(buf[:0], ends[:0], snap)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSinkPrometheusCollect is one Collect of the prometheus sink's
// Collector (the const metrics of the latest snapshot), drained as a
// registry does.
func BenchmarkSinkPrometheusCollect(b *testing.B) {
	for _, bs := range benchSnapshots() {
		b.Run(bs.name, func(b *testing.B) {
			c, err := sinkprom.New()
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Write(context.Background(), bs.snap); err != nil {
				b.Fatal(err)
			}
			ch := make(chan prometheus.Metric, 1024)
			done := make(chan int)
			go func() {
				n := 0
				for range ch {
					n++
				}
				done <- n
			}()
			b.ResetTimer()
			for b.Loop() {
				c.Collect(ch)
			}
			b.StopTimer()
			close(ch)
			b.ReportMetric(float64(<-done)/float64(b.N), "series/op")
		})
	}
}

// BenchmarkSinkPrometheusGather is a whole scrape but the HTTP write:
// Collect plus the registry's checks, sorting and conversion to protobuf
// structs.
func BenchmarkSinkPrometheusGather(b *testing.B) {
	_, reg := promRegistered(b)
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// promRegistered is a prometheus sink holding the benchmark snapshot
// (cheap tier), registered in a registry of its own.
func promRegistered(b *testing.B) (*sinkprom.Collector, *prometheus.Registry) {
	c, err := sinkprom.New()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Write(context.Background(), sinktest.FullSnapshot(benchContainers, benchIfaces, benchT)); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return c, reg
}

// discardResponse is an http.ResponseWriter that drops the body.
type discardResponse struct{ h http.Header }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(int)             {}

// BenchmarkSinkPrometheusScrape is a whole scrape of 1,000 containers (the
// cheap tier) as a plain-text scraper gets it, without the network: the
// sink's Handler, which writes the text exposition itself, beside a
// registry served by promhttp (Gather, then client_golang's encoder), the
// way Handler worked before.
func BenchmarkSinkPrometheusScrape(b *testing.B) {
	c, reg := promRegistered(b)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"Handler", c.Handler()}, {"registry+promhttp", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}} {
		b.Run(h.name, func(b *testing.B) {
			w := &discardResponse{h: http.Header{}}
			for b.Loop() {
				h.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkSinkPrometheusWrite is the prometheus sink's Write: a deep copy
// of the snapshot into the Collector's spare one.
func BenchmarkSinkPrometheusWrite(b *testing.B) {
	c, err := sinkprom.New()
	if err != nil {
		b.Fatal(err)
	}
	snap := sinktest.FullSnapshot(benchContainers, benchIfaces, benchT)
	ctx := context.Background()
	for b.Loop() {
		if err := c.Write(ctx, snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSinkJSON is sink/stdout writing the snapshot as JSON lines (to
// io.Discard); BenchmarkSinkStdoutLineProtocol the same as line protocol.
func BenchmarkSinkJSON(b *testing.B) { benchStdout(b, stdout.JSONLines) }

func BenchmarkSinkStdoutLineProtocol(b *testing.B) { benchStdout(b, stdout.LineProtocol) }

func benchStdout(b *testing.B, f stdout.Format) {
	for _, bs := range benchSnapshots() {
		b.Run(bs.name, func(b *testing.B) {
			s, err := stdout.New(io.Discard, stdout.WithFormat(f))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if err := s.Write(ctx, bs.snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
