package prometheus_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
)

// Serving the latest snapshot: Write each snapshot to the Collector and
// either serve its Handler or register it in the host program's registry.
func Example() {
	c, err := sinkprom.New(sinkprom.WithTags(sink.Tags{ID: true, Name: true, Image: true}))
	if err != nil {
		panic(err)
	}
	// Either: the host program's own registry (never the global default
	// from a library) ...
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	// ... or the Collector's own handler: http.Handle("/metrics", c.Handler()).

	var st cgroup.Stats
	st.CPU.Usage = cgroup.Value{V: 1_500_000_000, State: cgroup.Known}
	st.Memory.WorkingSet = cgroup.Value{V: 64 << 20, State: cgroup.Known}
	st.Memory.Limit = cgroup.Value{State: cgroup.Unlimited}
	snap := &sink.Snapshot{
		Time: time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC),
		Containers: []sink.Sample{{
			Container: runtime.Container{ID: "4f2a", Name: "web", Image: "nginx:1.27", CgroupPath: "/docker/4f2a"},
			Cgroup:    st,
		}},
	}
	if err := c.Write(context.Background(), snap); err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "container_") && !strings.HasPrefix(l, "container_last_seen") {
			fmt.Println(l)
		}
	}
	// Output:
	// container_cpu_usage_seconds_total{cpu="total",id="/docker/4f2a",image="nginx:1.27",name="web"} 1.5
	// container_memory_working_set_bytes{id="/docker/4f2a",image="nginx:1.27",name="web"} 6.7108864e+07
	// container_spec_memory_limit_bytes{id="/docker/4f2a",image="nginx:1.27",name="web"} 0
}
