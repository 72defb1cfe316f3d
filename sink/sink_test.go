package sink_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

func TestTaggerOrderAndValues(t *testing.T) {
	tg, err := sink.NewTagger(sink.Tags{ID: true, Name: true, Image: true, Runtime: true, Pod: true,
		Labels: []sink.LabelTag{{Label: "com.example.team", Tag: "team"}, {Label: "app.kubernetes.io/name"}}})
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"container", "container_label_app_kubernetes_io_name", "id", "image", "name", "namespace", "pod", "runtime", "team"}
	if !reflect.DeepEqual(tg.Keys(), wantKeys) {
		t.Fatalf("keys %v, want %v", tg.Keys(), wantKeys)
	}
	c := runtime.Container{ID: "abc", Name: "web", Image: "nginx", Runtime: "containerd",
		Labels: map[string]string{"com.example.team": "core", "app.kubernetes.io/name": "shop", "other": "x"},
		Pod:    &runtime.Pod{Name: "p", Namespace: "ns", Container: "c"}}
	got := fmt.Sprint(tg.Append(nil, &c))
	if want := "[{container c} {container_label_app_kubernetes_io_name shop} {id abc} {image nginx} {name web} {namespace ns} {pod p} {runtime containerd} {team core}]"; got != want {
		t.Errorf("tags %s\nwant %s", got, want)
	}
	c.Pod = nil
	delete(c.Labels, "com.example.team")
	if got := strings.Join(tg.Values(nil, &c), ","); got != ",shop,abc,nginx,web,,,containerd," {
		t.Errorf("values without pod and team: %q", got)
	}
}

// TestRuntimeNamespaceTag: a plain containerd container (ID not a 64-digit
// hash) is identified by its name and containerd namespace.
func TestRuntimeNamespaceTag(t *testing.T) {
	tg, err := sink.NewTagger(sink.Tags{Name: true, RuntimeNamespace: true})
	if err != nil {
		t.Fatal(err)
	}
	c := runtime.Container{ID: "build-42", Name: "build-42", Runtime: "containerd", Namespace: "ci"}
	if got := fmt.Sprint(tg.Append(nil, &c)); got != "[{name build-42} {runtime_namespace ci}]" {
		t.Errorf("tags %s", got)
	}
	if fmt.Sprint(sink.MustTagger(sink.DefaultTags()).Keys()) != "[container id image name namespace pod runtime]" {
		t.Errorf("default keys changed: %v", sink.MustTagger(sink.DefaultTags()).Keys())
	}
}

func TestTaggerRejects(t *testing.T) {
	for name, tags := range map[string]sink.Tags{
		"bad char":       {Labels: []sink.LabelTag{{Label: "x", Tag: "a.b"}}},
		"leading digit":  {Labels: []sink.LabelTag{{Label: "x", Tag: "1a"}}},
		"double under":   {Labels: []sink.LabelTag{{Label: "x", Tag: "__x"}}},
		"reserved":       {Labels: []sink.LabelTag{{Label: "x", Tag: "device"}}},
		"clash builtin":  {Name: true, Labels: []sink.LabelTag{{Label: "x", Tag: "name"}}},
		"twice":          {Labels: []sink.LabelTag{{Label: "x", Tag: "t"}, {Label: "y", Tag: "t"}}},
		"empty label":    {Labels: []sink.LabelTag{{Tag: "t"}}},
		"cadvisor twice": {Labels: []sink.LabelTag{{Label: "a.b"}, {Label: "a-b"}}},
	} {
		if _, err := sink.NewTagger(tags); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := sink.LabelTagName("io.kubernetes.pod/name-x"); got != "container_label_io_kubernetes_pod_name_x" {
		t.Errorf("LabelTagName = %s", got)
	}
}

// TestCopyTo: the copy is deep (changing the source afterwards leaves it
// alone), equal to the source, and copying again into the same destination
// allocates nothing.
func TestCopyTo(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)
	src := sinktest.FullSnapshot(3, 2, t0)
	src.Containers[1].Net = nil
	src.Containers[2].Container.Pod = &runtime.Pod{Name: "p"}
	var dst sink.Snapshot
	src.CopyTo(&dst)
	if !reflect.DeepEqual(src, &dst) {
		t.Fatal("copy differs from the source")
	}
	want := sinktest.FullSnapshot(3, 2, t0)
	want.Containers[1].Net = nil
	want.Containers[2].Container.Pod = &runtime.Pod{Name: "p"}
	// Scribble over every shared-looking part of the source.
	for i := range src.Containers {
		c := &src.Containers[i]
		c.Cgroup.CPU.PerCPU[0] = 1
		c.Cgroup.IO.Devices[0].ReadBytes.V = 1
		c.Cgroup.Hugetlb.Sizes[0].PageSize = "x"
		c.Cgroup.Memory.Usage.V = 1
		if c.Net != nil {
			c.Net.Interfaces[0].RxBytes.V = 1
			c.Net.Interfaces[0].Name = "x"
			c.Net.TCP.InSegs.V = 1
		}
		if c.Container.Pod != nil {
			c.Container.Pod.Name = "x"
		}
	}
	if !reflect.DeepEqual(want, &dst) {
		t.Fatal("changing the source changed the copy")
	}
	src = sinktest.FullSnapshot(3, 2, t0)
	if n := testing.AllocsPerRun(20, func() { src.CopyTo(&dst) }); n != 0 {
		t.Errorf("CopyTo into a used destination: %v allocations", n)
	}
	// Fewer containers, then more again.
	small := sinktest.FullSnapshot(1, 1, t0)
	small.CopyTo(&dst)
	if !reflect.DeepEqual(small, &dst) {
		t.Fatal("copy of a smaller snapshot differs")
	}
	src.CopyTo(&dst)
	if !reflect.DeepEqual(src, &dst) {
		t.Fatal("copy after shrinking differs")
	}
}
