package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
)

// failingDelivery is a sink whose background delivery fails: the one fault
// of this test that is not caused for real here (TestReadyzInfluxOutage
// does that with a real InfluxDB).
type failingDelivery struct{ err error }

func (f *failingDelivery) Write(context.Context, *sink.Snapshot) error { return nil }
func (f *failingDelivery) Close(context.Context) error                 { return nil }
func (f *failingDelivery) DeliveryError() error                        { return f.err }

// TestReadiness walks the readiness states with a clock the test moves:
// none before the first snapshot, ready after it, not ready when a sink's
// write failed in the last snapshot or a background sink is not
// delivering, and not ready when snapshots stop coming.
func TestReadiness(t *testing.T) {
	now := time.Unix(1000, 0)
	bg := &failingDelivery{}
	r := newReadiness(time.Second, []sink.Sink{&trimAfterStart{}, bg}, []string{"stdout", "influx"})
	r.now = func() time.Time { return now }
	var sinkErrs uint64
	r.sinkErrors = func() uint64 { return sinkErrs }
	want := func(sub string) {
		t.Helper()
		err := r.ready()
		switch {
		case sub == "" && err != nil:
			t.Fatalf("ready = %v, want nil", err)
		case sub != "" && (err == nil || !strings.Contains(err.Error(), sub)):
			t.Fatalf("ready = %v, want an error containing %q", err, sub)
		}
	}
	want("no snapshot taken yet")
	r.Write(context.Background(), nil)
	want("")
	sinkErrs = 2 // two sinks failed to take the next snapshot
	now = now.Add(time.Second)
	r.Write(context.Background(), nil)
	want("2 sink write(s) of the last snapshot failed")
	now = now.Add(time.Second)
	r.Write(context.Background(), nil) // the next one went through
	want("")
	bg.err = errors.New("connection refused")
	want("-sink influx is not delivering: connection refused")
	bg.err = nil
	now = now.Add(2*time.Second + writeTimeout) // at the bound: still ready
	want("")
	now = now.Add(time.Millisecond)
	want("the last snapshot is 7.001s old")
}

// startDaemon runs the daemon as a child (the test binary playing it) with
// its standard output going to stdout, and returns the base URL of its
// -listen address. The child is stopped with SIGTERM at cleanup.
func startDaemon(t *testing.T, stdout *os.File, args ...string) string {
	t.Helper()
	port, err := sinktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(os.Args[0], append([]string{"-listen", addr}, args...)...)
	cmd.Env = append(os.Environ(), "METRICSD_TEST_DAEMON=1")
	var errOut rttest.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v\n%s", err, errOut.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("daemon did not exit within 20 s of SIGINT\n%s", errOut.String())
		}
	})
	return "http://" + addr
}

// get fetches a URL and returns the status code and body; code 0 when no
// answer came.
func get(u string) (int, string) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls u until it answers code with a body containing sub.
func waitStatus(t *testing.T, u string, code int, sub string, timeout time.Duration) {
	t.Helper()
	var got int
	var body string
	if !sinktest.Poll(timeout, func() bool {
		got, body = get(u)
		return got == code && strings.Contains(body, sub)
	}) {
		t.Fatalf("%s: %d %q after %v, want %d and %q", u, got, body, timeout, code, sub)
	}
}

// TestHealthEndpoints runs the daemon for real: /healthz answers while it
// runs; /readyz once snapshots are written, and 503 naming the failure when
// its stdout sink can not write (standard output on /dev/full: every write
// fails with ENOSPC).
func TestHealthEndpoints(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup")
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full to make writes fail: %v", err)
	}
	defer full.Close()

	t.Run("writing", func(t *testing.T) {
		base := startDaemon(t, devNull, "-runtime", "cgroupfs", "-interval", "200ms", "-net", "none")
		waitStatus(t, base+"/healthz", 200, "ok", 15*time.Second)
		waitStatus(t, base+"/readyz", 200, "ok", 15*time.Second)
		if code, body := get(base + "/metrics"); code != 404 {
			t.Errorf("/metrics without -sink prometheus: %d %q, want 404", code, body)
		}
	})
	t.Run("stdout-full", func(t *testing.T) {
		base := startDaemon(t, full, "-runtime", "cgroupfs", "-interval", "200ms", "-net", "none")
		waitStatus(t, base+"/healthz", 200, "ok", 15*time.Second)
		waitStatus(t, base+"/readyz", 503, "sink write(s) of the last snapshot failed", 15*time.Second)
	})
}

// TestReadyzInfluxOutage: with -sink influx, whose writes only buffer,
// /readyz follows the background delivery to a real InfluxDB: ready while it
// delivers, 503 naming the sink and the error while InfluxDB is stopped,
// ready again once it is back and a retry delivered.
func TestReadyzInfluxOutage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup")
	}
	bin, why := sinktest.Binary("METRICSD_TEST_INFLUXD")
	if bin == "" {
		rttest.Unavailable(t, "%s", why)
	}
	d, err := sinktest.StartInfluxd(bin, t.TempDir(), sinktest.InfluxdConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := d.Exec(ctx, "CREATE DATABASE readyz"); err != nil {
		t.Fatal(err)
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	base := startDaemon(t, devNull, "-runtime", "cgroupfs", "-interval", "500ms", "-net", "none",
		"-sink", "influx", "-influx-url", d.URL, "-influx-db", "readyz")
	// The sink sends every 10 s (its default flush interval): the first
	// delivery, and the first failure, come within that.
	waitStatus(t, base+"/readyz", 200, "ok", 30*time.Second)
	d.Stop()
	waitStatus(t, base+"/readyz", 503, "-sink influx is not delivering", 30*time.Second)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", 200, "ok", 30*time.Second)
}
