package influx_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
)

// Writing to InfluxDB 1.x: New with the server's URL and database, Write
// each snapshot, Close at the end to send what is buffered. Here a stand-in
// server prints what it receives.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, _ := gzip.NewReader(r.Body) // gzip by default
		body, _ := io.ReadAll(zr)
		fmt.Printf("%s %s?%s\n%s", r.Method, r.URL.Path, r.URL.RawQuery, body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	s, err := influx.New(srv.URL, influx.WithV1("metrics", ""), influx.WithPrecision(lineprotocol.Second))
	if err != nil {
		panic(err)
	}
	var st cgroup.Stats
	st.CPU.Usage = cgroup.Value{V: 1_500_000_000, State: cgroup.Known}
	st.Pids.Current = cgroup.Value{V: 12, State: cgroup.Known}
	st.Pids.Limit = cgroup.Value{State: cgroup.Unlimited} // left out
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
	// POST /write?db=metrics&precision=s
	// container_cpu,id=4f2a,image=nginx:1.27,name=web,runtime=docker usage_ns=1500000000i 1795849200
	// container_pids,id=4f2a,image=nginx:1.27,name=web,runtime=docker current=12i 1795849200
	// {Written:2 Sent:2 Dropped:0 Rejected:0 Partial:0 Skipped:0 Failures:0 Buffered:0}
}
