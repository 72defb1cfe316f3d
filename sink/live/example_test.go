package live_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/live"
)

// Keep the last minutes of every container and serve the page beneath
// /live/ of an embedder's own server; a metricsd.Collector would be given
// the sink with metricsd.WithSinks and write every snapshot to it.
func Example() {
	ring, err := live.New(live.WithPoints(120))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/", http.StripPrefix("/live", ring.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Two snapshots a second apart, as a collector writes them.
	at := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	for i, usage := range []uint64{4e9, 4.25e9} {
		s := sink.Sample{Container: runtime.Container{ID: "web-1", Name: "web", Runtime: "containerd"}}
		s.Cgroup.CPU.Usage = cgroup.Value{V: usage, State: cgroup.Known}
		ring.Write(context.Background(), &sink.Snapshot{Time: at.Add(time.Duration(i) * time.Second), Containers: []sink.Sample{s}})
	}
	res, err := http.Get(srv.URL + "/live/api/v1/series?ref=1")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	fmt.Println(res.Header.Get("Content-Type"))
	fmt.Print(string(b))
	// Output:
	// application/json
	// {"ref":1,"name":"web","interval_seconds":1,"points":120,"t":[1796191200000,1796191201000],"cpu_percent":[null,25],"memory_working_set_bytes":[null,null],"memory_limit_bytes":null,"net_rx_bytes_per_second":[null,null],"net_tx_bytes_per_second":[null,null],"pids":[null,null],"psi_cpu_some_avg10":[null,null],"psi_memory_some_avg10":[null,null],"psi_io_some_avg10":[null,null]}
}
