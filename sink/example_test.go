package sink_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// memorySink prints each container's memory usage and limit. It is a whole
// sink: it reads what it needs during Write and keeps nothing.
type memorySink struct {
	w    io.Writer
	tags *sink.Tagger
}

func (m *memorySink) Write(ctx context.Context, s *sink.Snapshot) error {
	for i := range s.Containers {
		c := &s.Containers[i]
		usage, ok := c.Cgroup.Memory.Usage.Get()
		if !ok {
			continue // not read: say nothing rather than 0
		}
		limit := "none"
		switch l := c.Cgroup.Memory.Limit; l.State {
		case cgroup.Known:
			limit = fmt.Sprint(l.V)
		case cgroup.Unavailable:
			limit = "unknown"
		}
		fmt.Fprintf(m.w, "%s %v usage=%d limit=%s\n", s.Time.Format(time.TimeOnly), m.tags.Append(nil, &c.Container), usage, limit)
	}
	return nil
}

func (m *memorySink) Close(ctx context.Context) error { return nil }

// Writing your own sink: implement Write and Close; tag with a Tagger made
// from an allow-list.
func Example() {
	var s sink.Sink = &memorySink{w: os.Stdout, tags: sink.MustTagger(sink.Tags{Name: true, Labels: []sink.LabelTag{{Label: "team"}}})}
	var st cgroup.Stats
	st.Memory.Usage = cgroup.Value{V: 64 << 20, State: cgroup.Known}
	st.Memory.Limit = cgroup.Value{State: cgroup.Unlimited}
	snap := &sink.Snapshot{
		Time: time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC),
		Containers: []sink.Sample{
			{Container: runtime.Container{ID: "4f2a", Name: "web", Labels: map[string]string{"team": "shop", "commit": "abc"}}, Cgroup: st},
			{Container: runtime.Container{ID: "9c1e", Name: "idle"}}, // nothing read
		},
	}
	if err := s.Write(context.Background(), snap); err != nil {
		panic(err)
	}
	s.Close(context.Background())
	// Output:
	// 07:00:00 [{container_label_team shop} {name web}] usage=67108864 limit=none
}
