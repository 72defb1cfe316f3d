package metricsd_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers: the root package (and examples/embed, which uses its default
// discoverer) links no runtime client: no Docker client, no gRPC, no
// containerd API, no OpenTelemetry. Those come only with runtime/detect or
// an adapter the program names.
func TestLayers(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH: " + err.Error())
	}
	bad := []string{"github.com/moby/", "google.golang.org/grpc", "github.com/containerd/containerd", "go.opentelemetry.io/",
		"metricsd/runtime/docker", "metricsd/runtime/containerd", "metricsd/runtime/detect"}
	for _, pkg := range []string{"github.com/metricsd/metricsd", "github.com/metricsd/metricsd/examples/embed"} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.Contains(dep, b) {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}
