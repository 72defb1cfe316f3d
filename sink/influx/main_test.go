package influx_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// server is the InfluxDB 1.x every test of the package shares (nil when
// METRICSD_TEST_INFLUXD is not set; skipReason says why). Tests that stop it
// or need another configuration start their own.
var (
	server     *sinktest.Influxd
	skipReason string
	influxdBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	influxdBin, skipReason = sinktest.Binary("METRICSD_TEST_INFLUXD")
	if influxdBin != "" {
		dir, err := os.MkdirTemp("", "metricsd-influx-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		server, err = sinktest.StartInfluxd(influxdBin, dir, sinktest.InfluxdConfig{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting influxd:", err)
			return 1
		}
		defer server.Stop()
	}
	return m.Run()
}

// needInfluxd skips t when there is no influxd to test against.
func needInfluxd(t *testing.T) *sinktest.Influxd {
	t.Helper()
	if server == nil {
		rttest.Unavailable(t, "%s", "no InfluxDB 1.x: "+skipReason)
	}
	return server
}
