package otlp_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/otlp"
)

// Pushing to an OpenTelemetry Collector: New with its /v1/metrics URL and
// the resource attributes of this host, Write each snapshot, Close at the
// end to send what is buffered. Here a stand-in receiver prints what it
// gets.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, _ := gzip.NewReader(r.Body) // gzip by default
		body, _ := io.ReadAll(zr)
		fmt.Printf("%s %s %s, %d bytes of ExportMetricsServiceRequest\n", r.Method, r.URL.Path, r.Header.Get("Content-Type"), len(body))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	s, err := otlp.New(srv.URL+"/v1/metrics", otlp.WithResourceAttributes(map[string]string{"host.name": "node-1"}))
	if err != nil {
		panic(err)
	}
	var st cgroup.Stats
	st.CPU.Usage = cgroup.Value{V: 1_500_000_000, State: cgroup.Known} // container.cpu.time 1.5 s
	st.Memory.Usage = cgroup.Value{V: 64 << 20, State: cgroup.Known}   // container.memory.usage
	snap := &sink.Snapshot{
		Time:       time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC),
		Containers: []sink.Sample{{Container: runtime.Container{ID: "4f2a", Name: "web", Image: "nginx:1.27", Runtime: "docker"}, Cgroup: st}},
	}
	ctx := context.Background()
	if err := s.Write(ctx, snap); err != nil {
		panic(err)
	}
	if err := s.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("written %d, sent %d data points\n", s.Stats().Written, s.Stats().Sent)
	// Output:
	// POST /v1/metrics application/x-protobuf, 295 bytes of ExportMetricsServiceRequest
	// written 2, sent 2 data points
}
