package points_test

import (
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/points"
)

// recorder records each point as "measurement field=value ..." with its
// tags, for exact checks.
type recorder struct {
	tags   []sink.Tag
	points []recorded
}

type recorded struct {
	m      string
	tags   map[string]string
	fields map[string]int64
	t      time.Time
}

func (r *recorder) Container(tags []sink.Tag) { r.tags = append(r.tags[:0], tags...) }
func (r *recorder) Begin(m string, extra sink.Tag) {
	p := recorded{m: m, tags: map[string]string{}, fields: map[string]int64{}}
	for _, t := range r.tags {
		if t.Value != "" {
			p.tags[t.Key] = t.Value
		}
	}
	if extra.Key != "" {
		p.tags[extra.Key] = extra.Value
	}
	r.points = append(r.points, p)
}
func (r *recorder) Int(k string, v int64)     { r.points[len(r.points)-1].fields[k] = v }
func (r *recorder) Float(k string, v float64) { r.points[len(r.points)-1].fields[k] = int64(v * 1e6) }
func (r *recorder) End(t time.Time)           { r.points[len(r.points)-1].t = t }

func (r *recorder) find(m, name string) *recorded {
	for i := range r.points {
		if p := &r.points[i]; p.m == m && (name == "" || p.tags["name"] == name) {
			return p
		}
	}
	return nil
}

// TestIssue14Fields: the new fields with their values, container_info
// (Tags.Info; with InfoOnly the other points keep id and the global tags
// only), a departed container's last container_memory point, and an OOM
// kill event's container_oom_kill point at the event's time.
func TestIssue14Fields(t *testing.T) {
	snap := sinktest.MixedSnapshot(t0)
	tags := sink.DefaultTags()
	tags.Global = []sink.Tag{{Key: "host", Value: "h1"}}
	r := &recorder{}
	points.NewWalker(sink.MustTagger(tags), nil).Walk(snap, r)
	if p := r.find("container_info", ""); p != nil {
		t.Errorf("container_info without Tags.Info: %+v", p)
	}
	mem := r.find("container_memory", "c-0")
	for k, want := range map[string]int64{
		"swap_peak_bytes": 1 << 20, "events_oom_group_kill": 0, "events_local_max": 2, "events_local_oom_kill": 1,
		"swap_events_max": 4, "swap_events_fail": 5, "swap_events_high": 0,
	} {
		if got, ok := mem.fields[k]; !ok || got != want {
			t.Errorf("container_memory %s = %v %v, want %d", k, got, ok, want)
		}
	}
	pids := r.find("container_pids", "c-0")
	if pids.fields["peak"] != 9 || pids.fields["fork_failures"] != 6 {
		t.Errorf("container_pids %v", pids.fields)
	}
	gone := r.find("container_memory", "gone-9")
	if gone == nil || len(gone.fields) != 1 || gone.fields["events_oom_kill"] != 2 || !gone.t.Equal(t0) || gone.tags["host"] != "h1" {
		t.Errorf("the departed container's point: %+v", gone)
	}

	for _, only := range []bool{false, true} {
		tg := tags
		tg.Info, tg.InfoOnly = !only, only
		r := &recorder{}
		points.NewWalker(sink.MustTagger(tg), nil).Walk(snap, r)
		info := r.find("container_info", "c-1")
		if info == nil || info.tags["pod"] != "web-7d9" || info.tags["image"] == "" || info.tags["host"] != "h1" || info.fields["paused"] != 0 {
			t.Fatalf("InfoOnly %v: container_info of c-1: %+v", only, info)
		}
		if _, ok := r.find("container_info", "c-0").fields["start_time_s"]; !ok {
			t.Errorf("container_info of c-0 (started) has no start_time_s")
		}
		n := 0
		for _, p := range r.points {
			if p.m == "container_info" {
				n++
				continue
			}
			if only && (p.tags["name"] != "" || p.tags["image"] != "") && p.m != "metricsd" {
				t.Errorf("InfoOnly: %s carries %v", p.m, p.tags)
			}
			if only && p.m != "metricsd" && p.tags["id"] == "" {
				t.Errorf("InfoOnly: %s has no id", p.m)
			}
		}
		if n != 3 {
			t.Errorf("%d container_info points, want 3", n)
		}
	}

	ev := sink.Event{Kind: sink.EventOOMKill, Time: t0.Add(1500 * time.Millisecond), Container: sinktest.Container("c", 0), Count: 1, Total: 4}
	ev.Container.State = runtime.StateRunning
	r = &recorder{}
	points.NewWalker(sink.MustTagger(tags), nil).WalkEvent(&ev, r)
	if len(r.points) != 1 {
		t.Fatalf("event: %d points", len(r.points))
	}
	p := r.points[0]
	if p.m != "container_oom_kill" || p.fields["kills"] != 1 || p.fields["kills_total"] != 4 || !p.t.Equal(ev.Time) || p.tags["name"] != "c-0" || p.tags["host"] != "h1" {
		t.Errorf("event point %+v", p)
	}
}

// TestDocumented: every measurement and field the points hold (a full
// snapshot with container_info, a departed container and an event) is
// in docs/METRICS.md, under the measurement's heading.
func TestDocumented(t *testing.T) {
	doc, err := sinktest.MetricsDoc()
	if err != nil {
		t.Fatal(err)
	}
	snap := sinktest.MixedSnapshot(t0)
	tags := sink.DefaultTags()
	tags.Info = true
	w := points.NewWalker(sink.MustTagger(tags), nil)
	r := &recorder{}
	w.Walk(snap, r)
	w.WalkEvent(&sink.Event{Kind: sink.EventOOMKill, Time: t0, Container: snap.Containers[0].Container, Count: 1, Total: 1}, r)
	for _, p := range r.points {
		if p.m == "metricsd" {
			continue // the collector's own, in a table of its own
		}
		sec := sinktest.Section(doc, "`"+p.m+"`")
		if sec == nil {
			t.Errorf("no section for %s in docs/METRICS.md", p.m)
			continue
		}
		for f := range p.fields {
			if !sec[f] && !strings.Contains(f, "__") {
				t.Errorf("%s field %s is not in its section of docs/METRICS.md", p.m, f)
			}
		}
	}
}
