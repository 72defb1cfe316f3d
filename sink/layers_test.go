package sink_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers checks the layer rule of the sinks with go list: each sink
// pulls its own client library only, and a program importing sink/stdout
// pulls neither the InfluxDB sink nor Prometheus (nor net/http).
func TestLayers(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH: " + err.Error())
	}
	forbidden := map[string][]string{
		"sink":            {"prometheus", "influx", "line-protocol", "net/http"},
		"sink/stdout":     {"prometheus", "sink/influx", "net/http"},
		"sink/influx":     {"prometheus"},
		"sink/prometheus": {"influx", "line-protocol", "sink/points"},
		// The push sinks: their own protobuf encoders, net/http and snappy;
		// no Prometheus client, no gRPC, no OpenTelemetry SDK.
		"sink/remotewrite": {"client_golang", "influx", "line-protocol", "grpc", "opentelemetry"},
		"sink/otlp":        {"client_golang", "influx", "line-protocol", "grpc", "opentelemetry", "snappy"},
		// The live page: net/http and embed, no other sink's client.
		"sink/live": {"client_golang", "influx", "line-protocol", "grpc", "opentelemetry", "snappy", "sink/points"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command(goBin, "list", "-deps", "github.com/metricsd/metricsd/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.Contains(dep, b) && dep != "github.com/metricsd/metricsd/"+pkg {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
