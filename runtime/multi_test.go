package runtime_test

import (
	"context"
	"testing"

	"github.com/metricsd/metricsd/runtime"
)

// TestMultiSameIDTwoNamespaces: containerd containers with the same ID in
// two namespaces are two containers; Multi once kept only the first, so a
// container could hide another by taking its ID in a namespace of its own.
// (TestFilterLive shows the same with real containerd containers.)
func TestMultiSameIDTwoNamespaces(t *testing.T) {
	a := staticDiscoverer{{ID: "job", Name: "job", Runtime: "containerd", Namespace: "a"}}
	b := staticDiscoverer{{ID: "job", Name: "job", Runtime: "containerd", Namespace: "b"}, {ID: "job", Name: "job", Runtime: "containerd", Namespace: "a"}}
	cs, err := runtime.NewMulti(a, b).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Namespace != "a" || cs[1].Namespace != "b" {
		t.Fatalf("listed %+v, want job in namespaces a and b once each", cs)
	}
}

// TestMultiSameIDTwoRuntimes: the same ID from two runtimes (neither with a
// namespace) is two containers.
func TestMultiSameIDTwoRuntimes(t *testing.T) {
	a := staticDiscoverer{{ID: "web", Name: "web", Runtime: "cgroupfs"}}
	b := staticDiscoverer{{ID: "web", Name: "web", Runtime: "lxc"}, {ID: "web", Name: "web", Runtime: "cgroupfs"}}
	cs, err := runtime.NewMulti(a, b).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Runtime != "cgroupfs" || cs[1].Runtime != "lxc" {
		t.Fatalf("listed %+v, want web from cgroupfs and from lxc once each", cs)
	}
}
