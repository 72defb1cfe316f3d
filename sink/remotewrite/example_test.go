package remotewrite_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang/snappy"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/remotewrite"
)

// Pushing to a remote_write receiver: New with its write URL and the
// labels that tell this host apart, Write each snapshot, Close at the end
// to send what is buffered. Here a stand-in receiver prints what it gets.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		raw, _ := snappy.Decode(nil, body)
		fmt.Printf("%s %s %s, %d bytes of WriteRequest\n", r.Method, r.URL.Path, r.Header.Get("Content-Encoding"), len(raw))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	s, err := remotewrite.New(srv.URL+"/api/v1/write",
		remotewrite.WithExternalLabels(map[string]string{"job": "metricsd", "instance": "node-1"}))
	if err != nil {
		panic(err)
	}
	var st cgroup.Stats
	st.CPU.Usage = cgroup.Value{V: 1_500_000_000, State: cgroup.Known} // container_cpu_usage_seconds_total 1.5
	st.Pids.Current = cgroup.Value{V: 12, State: cgroup.Known}         // container_threads 12 (and container_last_seen)
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
	fmt.Printf("%+v\n", s.Stats())
	// Output:
	// POST /api/v1/write snappy, 494 bytes of WriteRequest
	// {Written:3 Sent:3 Dropped:0 Rejected:0 Rejections:[] Partial:0 Failures:0 Buffered:0}
}
