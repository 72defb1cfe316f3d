package live

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// TestEncodeMatchesJSON: the hand-written answers decode to what
// encoding/json writes of the same structs (the documented schema), for
// figures known, unavailable, unlimited and not computed, and strings with
// markup, quotes, control characters, invalid UTF-8 and U+2028.
func TestEncodeMatchesJSON(t *testing.T) {
	k, _ := New(WithLimits(sink.Limits{MaxValueLen: -1}))
	at := time.Date(2026, 12, 2, 6, 0, 0, 123456789, time.UTC)
	odd := "<img src=x onerror=\"a('&')\">\\ \u2028 \xff \x01 é"
	for i := range 3 {
		a := sink.Sample{Container: runtime.Container{ID: "a", Name: odd, Runtime: "containerd", Namespace: "k8s.io", Image: odd,
			Labels: map[string]string{odd: odd, "b": ""}, Pod: &runtime.Pod{Name: "p", Namespace: odd}},
			Network: sink.NetOwn, Net: &netns.Stats{Interfaces: []netns.Interface{{Name: odd, RxBytes: cgroup.Value{V: uint64(i) * 1000, State: cgroup.Known}}}}}
		a.Cgroup.CPU.Usage = cgroup.Value{V: uint64(i) * 3e8, State: cgroup.Known}
		a.Cgroup.CPU.Quota, a.Cgroup.CPU.Period = cgroup.Value{V: 50000, State: cgroup.Known}, cgroup.Value{V: 100000, State: cgroup.Known}
		a.Cgroup.CPU.ThrottledTime = cgroup.Value{V: 1.5e9, State: cgroup.Known}
		a.Cgroup.Memory.Limit = cgroup.Value{State: cgroup.Unlimited}
		a.Cgroup.Memory.WorkingSet = cgroup.Value{V: 1 << 40, State: cgroup.Known}
		a.Cgroup.Pressure.CPU.Some = cgroup.PSILine{Avg10: 12.34, Total: cgroup.Value{V: 1, State: cgroup.Known}}
		b := sink.Sample{Container: runtime.Container{ID: "b", Name: "b", Runtime: "docker"}, Network: sink.NetShared, NetCarrier: "a"}
		snap := &sink.Snapshot{Time: at.Add(time.Duration(i) * 1500 * time.Millisecond), Containers: []sink.Sample{a, b}}
		if i == 2 {
			snap.Self = &sink.Self{ScrapeSeconds: 0.002, Containers: 2, Errors: []sink.StageErrors{{Stage: "net", Count: 3}}}
		}
		if err := k.Write(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
	}
	same := func(what string, hand []byte, v any) {
		t.Helper()
		ref, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var x, y any
		if err := json.Unmarshal(hand, &x); err != nil {
			t.Fatalf("%s: hand-written JSON does not parse: %v\n%s", what, err, hand)
		}
		json.Unmarshal(ref, &y)
		if !reflect.DeepEqual(x, y) {
			t.Errorf("%s:\nhand:          %s\nencoding/json: %s", what, hand, ref)
		}
	}
	c := k.containers()
	same("containers", c.appendJSON(nil), c)
	for ref := uint64(1); ref <= 2; ref++ {
		s, _ := k.seriesOf(ref)
		same("series", s.appendJSON(nil), s)
	}
	empty, _ := New()
	same("no snapshot", empty.containers().appendJSON(nil), empty.containers())
}
