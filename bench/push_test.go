package bench

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"google.golang.org/protobuf/proto"

	colpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/otlp"
	"github.com/metricsd/metricsd/sink/points"
	"github.com/metricsd/metricsd/sink/remotewrite"
)

// The push sinks' encoders beside the InfluxDB one, in one run (issue 13):
//
//	cd bench && go test -run '^$' -bench 'SinkPushEncode' -benchmem -count 5
//
// Each encodes the 1,000-container snapshots of the other sink benchmarks
// into a reused buffer, as its Sink.Write does into its queue: InfluxDB
// line protocol (sink/points), a remote_write WriteRequest
// (remotewrite.Encoder) and an OTLP ExportMetricsServiceRequest
// (otlp.Encoder), before compression; and the same OTLP metrics built from
// the generated types of go.opentelemetry.io/proto/otlp and marshalled, the
// path sink/otlp does not take.
func BenchmarkSinkPushEncode(b *testing.B) {
	for _, bs := range benchSnapshots() {
		snap := bs.snap
		b.Run("influx/"+bs.name, func(b *testing.B) {
			enc := points.NewEncoder(sink.MustTagger(sink.DefaultTags()), lineprotocol.Nanosecond, nil)
			buf, ends, _, _ := enc.Append(nil, nil, snap)
			n := len(ends)
			cpu := startCPU()
			for b.Loop() {
				buf, ends, _, _ = enc.Append(buf[:0], ends[:0], snap)
			}
			cpu.report(b, n, len(buf))
		})
		b.Run("remotewrite/"+bs.name, func(b *testing.B) {
			enc, err := remotewrite.NewEncoder(remotewrite.WithExternalLabels(map[string]string{"job": "metricsd", "instance": "node-1"}))
			if err != nil {
				b.Fatal(err)
			}
			buf, n := enc.Append(nil, snap)
			cpu := startCPU()
			for b.Loop() {
				buf, _ = enc.Append(buf[:0], snap)
			}
			cpu.report(b, n, len(buf))
		})
		b.Run("otlp/"+bs.name, func(b *testing.B) {
			enc, err := otlp.NewEncoder(otlp.WithResourceAttributes(map[string]string{"host.name": "node-1"}))
			if err != nil {
				b.Fatal(err)
			}
			buf, n := enc.Append(nil, snap)
			cpu := startCPU()
			for b.Loop() {
				buf, _ = enc.Append(buf[:0], snap)
			}
			cpu.report(b, n, len(buf))
		})
		b.Run("otlp-proto-structs/"+bs.name, func(b *testing.B) {
			benchOTLPProto(b, snap)
		})
	}
}

// cpuClock measures the CPU time of the benchmark's thread, which the
// other load of a shared machine inflates less than the wall-clock ns/op
// (it still suffers the caches and the cores it shares).
type cpuClock struct{ t0 time.Duration }

func startCPU() cpuClock {
	runtime.LockOSThread()
	return cpuClock{threadCPU()}
}

// report adds cpu-ns/op, points/op and bytes/op (the encoded snapshot).
func (c cpuClock) report(b *testing.B, points, bytes int) {
	d := threadCPU() - c.t0
	runtime.UnlockOSThread()
	b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(points), "points/op")
	b.ReportMetric(float64(bytes), "bytes/op")
}

func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchOTLPProto is the path sink/otlp does not take: the generated types
// of go.opentelemetry.io/proto/otlp filled for the same snapshot (the
// metrics of sink/otlp, a data point each with its attributes) and
// proto.Marshal'd, reusing nothing across snapshots, as the SDK exporter
// does after its own aggregation. It is a lower bound of the SDK
// exporter's cost per snapshot.
func benchOTLPProto(b *testing.B, snap *sink.Snapshot) {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	now := uint64(snap.Time.UnixNano())
	build := func() *colpb.ExportMetricsServiceRequest {
		req := &colpb.ExportMetricsServiceRequest{}
		for i := range snap.Containers {
			s := &snap.Containers[i]
			c := &s.Container
			var ms []*metricspb.Metric
			sum := func(name, unit string, attrs []*commonpb.KeyValue, v int64) {
				ms = append(ms, &metricspb.Metric{Name: name, Unit: unit, Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true,
					DataPoints: []*metricspb.NumberDataPoint{{Attributes: attrs, TimeUnixNano: now, Value: &metricspb.NumberDataPoint_AsInt{AsInt: v}}},
				}}})
			}
			gauge := func(name, unit string, v int64) {
				ms = append(ms, &metricspb.Metric{Name: name, Unit: unit, Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{
					DataPoints: []*metricspb.NumberDataPoint{{TimeUnixNano: now, Value: &metricspb.NumberDataPoint_AsInt{AsInt: v}}},
				}}})
			}
			st := &s.Cgroup
			for _, x := range []struct {
				name string
				v    uint64
				ok   bool
			}{
				{"container.cpu.time", st.CPU.Usage.V, true}, {"container.cpu.usage.usermode", st.CPU.User.V, true},
				{"container.cpu.usage.kernelmode", st.CPU.System.V, true}, {"container.cpu.throttling_data.periods", st.CPU.Periods.V, true},
				{"container.cpu.throttling_data.throttled_periods", st.CPU.ThrottledPeriods.V, true},
				{"container.cpu.throttling_data.throttled_time", st.CPU.ThrottledTime.V, true},
				{"container.memory.oom_kills", st.Memory.Events.OOMKill.V, true},
			} {
				sum(x.name, "s", nil, int64(x.v))
			}
			for _, x := range []struct {
				name string
				v    uint64
			}{
				{"container.memory.usage", st.Memory.Usage.V}, {"container.memory.working_set", st.Memory.WorkingSet.V},
				{"container.memory.rss", st.Memory.Anon.V}, {"container.memory.cache", st.Memory.File.V},
				{"container.memory.mapped_file", st.Memory.MappedFile.V}, {"container.memory.swap", st.Memory.SwapUsage.V},
				{"container.memory.usage.max", st.Memory.Peak.V}, {"container.memory.kernel", st.Memory.Kernel.V},
				{"container.memory.usage.limit", st.Memory.Limit.V}, {"container.pids.count", st.Pids.Current.V},
				{"container.pids.limit", st.Pids.Limit.V}, {"container.cpu.shares", st.CPU.Shares.V},
			} {
				gauge(x.name, "By", int64(x.v))
			}
			for j := range st.IO.Devices {
				d := &st.IO.Devices[j]
				dev := str("system.device", d.Name)
				sum("container.disk.io", "By", []*commonpb.KeyValue{str("disk.io.direction", "read"), dev}, int64(d.ReadBytes.V))
				sum("container.disk.io", "By", []*commonpb.KeyValue{str("disk.io.direction", "write"), dev}, int64(d.WriteBytes.V))
				sum("container.disk.operations", "{operation}", []*commonpb.KeyValue{str("disk.io.direction", "read"), dev}, int64(d.ReadOps.V))
				sum("container.disk.operations", "{operation}", []*commonpb.KeyValue{str("disk.io.direction", "write"), dev}, int64(d.WriteOps.V))
			}
			for _, p := range []uint64{st.Pressure.CPU.Some.Total.V, st.Pressure.CPU.Full.Total.V, st.Pressure.Memory.Some.Total.V,
				st.Pressure.Memory.Full.Total.V, st.Pressure.IO.Some.Total.V, st.Pressure.IO.Full.Total.V} {
				sum("container.pressure.cpu.waiting", "s", nil, int64(p))
			}
			if s.Net != nil {
				for j := range s.Net.Interfaces {
					it := &s.Net.Interfaces[j]
					name := str("network.interface.name", it.Name)
					rx, tx := str("network.io.direction", "receive"), str("network.io.direction", "transmit")
					for _, m := range []struct {
						name string
						r, t uint64
					}{
						{"container.network.io", it.RxBytes.V, it.TxBytes.V}, {"container.network.packet.count", it.RxPackets.V, it.TxPackets.V},
						{"container.network.packet.dropped", it.RxDropped.V, it.TxDropped.V}, {"container.network.errors", it.RxErrors.V, it.TxErrors.V},
					} {
						sum(m.name, "By", []*commonpb.KeyValue{rx, name}, int64(m.r))
						sum(m.name, "By", []*commonpb.KeyValue{tx, name}, int64(m.t))
					}
				}
				for st := range s.Net.TCPStates.V4 {
					gauge("container.network.connection.count", "{connection}", int64(s.Net.TCPStates.V4[st].V))
					gauge("container.network.connection.count", "{connection}", int64(s.Net.TCPStates.V6[st].V))
				}
			}
			req.ResourceMetrics = append(req.ResourceMetrics, &metricspb.ResourceMetrics{
				Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
					str("container.id", c.ID), str("container.name", c.Name), str("container.image.name", c.Image), str("container.runtime", c.Runtime),
				}},
				ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: &commonpb.InstrumentationScope{Name: "metricsd"}, Metrics: ms}},
			})
		}
		return req
	}
	var buf []byte
	points := 0
	for _, rm := range build().ResourceMetrics {
		points += len(rm.ScopeMetrics[0].Metrics)
	}
	cpu := startCPU()
	for b.Loop() {
		var err error
		buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], build())
		if err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, points, len(buf))
}
