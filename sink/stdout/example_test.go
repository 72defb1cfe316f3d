package stdout_test

import (
	"context"
	"os"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/stdout"
)

// exampleSnapshot is one container with a CPU time, a memory usage (its
// limit not set) and one interface (every net/dev counter, as the kernel
// prints them all); the rest was not read.
func exampleSnapshot() *sink.Snapshot {
	var st cgroup.Stats
	st.CPU.Usage = cgroup.Value{V: 1_500_000_000, State: cgroup.Known}
	st.Memory.Usage = cgroup.Value{V: 52428800, State: cgroup.Known}
	st.Memory.Limit = cgroup.Value{State: cgroup.Unlimited}
	n := func(v uint64) netns.Value { return netns.Value{V: v, State: netns.Known} }
	eth0 := netns.Interface{Name: "eth0", RxBytes: n(2048), RxPackets: n(16), TxBytes: n(1024), TxPackets: n(8)}
	for _, v := range []*netns.Value{&eth0.RxErrors, &eth0.RxDropped, &eth0.RxFIFO, &eth0.RxFrame, &eth0.RxCompressed, &eth0.RxMulticast,
		&eth0.TxErrors, &eth0.TxDropped, &eth0.TxFIFO, &eth0.TxCollisions, &eth0.TxCarrier, &eth0.TxCompressed} {
		*v = n(0)
	}
	return &sink.Snapshot{
		Time: time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC),
		Containers: []sink.Sample{{
			Container: runtime.Container{ID: "4f2a", Name: "web", Image: "nginx:1.27", Runtime: "docker",
				Labels: map[string]string{"team": "shop", "build": "1234"}},
			Cgroup: st,
			Net:    &netns.Stats{Parts: netns.PartDev, Interfaces: []netns.Interface{eth0}},
		}},
	}
}

// Line protocol on standard output, with the container label "team" as a
// tag (and "build" left out: labels are an allow-list).
func Example() {
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "team", Tag: "team"}}
	s, err := stdout.New(os.Stdout, stdout.WithTags(tags))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, exampleSnapshot()); err != nil {
		panic(err)
	}
	s.Close(ctx)
	// Output:
	// container_cpu,id=4f2a,image=nginx:1.27,name=web,runtime=docker,team=shop usage_ns=1500000000i 1795849200000000000
	// container_memory,id=4f2a,image=nginx:1.27,name=web,runtime=docker,team=shop usage_bytes=52428800i 1795849200000000000
	// container_net,id=4f2a,image=nginx:1.27,interface=eth0,name=web,runtime=docker,team=shop rx_bytes=2048i,rx_packets=16i,rx_errors=0i,rx_dropped=0i,rx_fifo=0i,rx_frame=0i,rx_compressed=0i,rx_multicast=0i,tx_bytes=1024i,tx_packets=8i,tx_errors=0i,tx_dropped=0i,tx_fifo=0i,tx_collisions=0i,tx_carrier=0i,tx_compressed=0i 1795849200000000000
}

// JSON lines, with only the name and image tags.
func Example_json() {
	s, err := stdout.New(os.Stdout, stdout.WithFormat(stdout.JSONLines), stdout.WithTags(sink.Tags{Name: true, Image: true}))
	if err != nil {
		panic(err)
	}
	snap := exampleSnapshot()
	snap.Containers[0].Net = nil // say, it shares the host's network
	if err := s.Write(context.Background(), snap); err != nil {
		panic(err)
	}
	// Output:
	// {"name":"container_cpu","time":"2026-11-28T07:00:00Z","tags":{"image":"nginx:1.27","name":"web"},"fields":{"usage_ns":1500000000}}
	// {"name":"container_memory","time":"2026-11-28T07:00:00Z","tags":{"image":"nginx:1.27","name":"web"},"fields":{"usage_bytes":52428800}}
}
