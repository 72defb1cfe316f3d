package remotewrite

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
)

// The real receivers, started for each test that needs one (an outage test
// kills its own): VictoriaMetrics single-node (Debian victoria-metrics
// 1.79) and Prometheus 2.42 with --web.enable-remote-write-receiver, from
// METRICSD_TEST_VICTORIAMETRICS and METRICSD_TEST_PROMETHEUS
// (scripts/servers.sh sets them).
type receiverKind struct {
	name, env string
	start     func(bin, dir string) (*sinktest.Receiver, error)
}

var receiverKinds = []receiverKind{
	{"victoria-metrics", "METRICSD_TEST_VICTORIAMETRICS", func(bin, dir string) (*sinktest.Receiver, error) {
		return sinktest.StartVictoriaMetrics(bin, dir)
	}},
	{"prometheus", "METRICSD_TEST_PROMETHEUS", sinktest.StartPrometheusReceiver},
}

// eachReceiver runs f in a subtest per receiver kind, each with a receiver
// of its own, skipping a kind whose binary is not there.
func eachReceiver(t *testing.T, f func(t *testing.T, r *sinktest.Receiver)) {
	for _, k := range receiverKinds {
		t.Run(k.name, func(t *testing.T) {
			bin, why := sinktest.Binary(k.env)
			if bin == "" {
				rttest.Unavailable(t, "%s", "no "+k.name+": "+why)
			}
			r, err := k.start(bin, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Stop)
			f(t, r)
		})
	}
}

func newSink(t *testing.T, url string, opts ...Option) *Sink {
	t.Helper()
	s, err := New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// readBack returns every series the receiver has at time at, keyed as
// series.key makes them, once it has want of them or 10 s have passed:
// VictoriaMetrics makes a new series searchable within a second or so of
// a force_flush.
func readBack(t *testing.T, r *sinktest.Receiver, at time.Time, want int) map[string]float64 {
	t.Helper()
	ctx := t.Context()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var vec []sinktest.Sample
	var err error
	sinktest.Poll(10*time.Second, func() bool {
		vec, err = r.QueryAt(ctx, `{__name__=~".+"}`, at)
		return err != nil || len(vec) >= want
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, s := range vec {
		var ls [][2]string
		for k, v := range s.Metric {
			ls = append(ls, [2]string{k, v})
		}
		out[series{labels: ls}.key()] = s.Value
	}
	return out
}

// sampleCount is the number of samples the receiver holds in (at-window,
// at], once it is want or 10 s have passed (see readBack).
func sampleCount(t *testing.T, r *sinktest.Receiver, at time.Time, window time.Duration, want int) int {
	t.Helper()
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n int
	var err error
	sinktest.Poll(10*time.Second, func() bool {
		n, err = r.CountSamples(t.Context(), `{__name__=~".+"}`, window, at)
		return err != nil || n >= want
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// expected is what the encoder makes of snap, keyed as readBack keys.
func expected(t *testing.T, e *encoder, snap *sink.Snapshot) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range encodeSnapshot(t, e, snap) {
		out[s.key()] = s.value
	}
	return out
}

// sameValue compares a value read back from r with the one written:
// exactly, but for VictoriaMetrics, which keeps 12 significant decimal
// digits (its documentation says so; container_last_seen, a Unix time in
// seconds with milliseconds, has 13).
func sameValue(r *sinktest.Receiver, got, want float64) bool {
	if r.Name == "victoria-metrics" {
		return math.Abs(got-want) <= 1e-12*math.Abs(want)
	}
	return got == want
}

// TestReceivers writes a known snapshot, and one of a hostile container,
// to each real receiver and reads them back through its query API: exactly
// the series the encoder made, with their values.
func TestReceivers(t *testing.T) {
	eachReceiver(t, func(t *testing.T, r *sinktest.Receiver) {
		ext := map[string]string{"job": "metricsd", "instance": "node-1"}
		tags := sink.DefaultTags()
		tags.Labels = []sink.LabelTag{{Label: "team"}}
		s := newSink(t, r.WriteURL, WithExternalLabels(ext), WithTags(tags))
		at := time.Now().Add(-5 * time.Minute).Truncate(time.Millisecond)
		snap := sinktest.MixedSnapshot(at)
		if err := s.Write(t.Context(), snap); err != nil {
			t.Fatal(err)
		}
		hostile := hostileSnapshot()
		hostile.Time = at
		hostile.Containers[0].Container.ID = strings.Repeat("f", 64)
		hostile.Containers[0].Container.CgroupPath = "/docker/" + strings.Repeat("f", 64)
		if err := s.Write(t.Context(), hostile); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(t.Context()); err != nil {
			t.Fatalf("flush: %v\n%s", err, r.Log())
		}
		e := newEncoder(sink.MustTagger(tags), nil, true, nil, ext)
		want := expected(t, e, snap)
		for k, v := range expected(t, e, hostile) {
			want[k] = v
		}
		got := readBack(t, r, at, len(want))
		if len(got) != len(want) {
			t.Errorf("%s holds %d series, want %d", r.Name, len(got), len(want))
		}
		for k, v := range want {
			if g, ok := got[k]; !ok {
				t.Errorf("missing %s", k)
			} else if !sameValue(r, g, v) {
				t.Errorf("%s = %v, want %v", k, g, v)
			}
		}
		st := s.Stats()
		if st.Sent != st.Written || st.Dropped != 0 || st.Rejected != 0 || st.Written != uint64(len(want)) {
			t.Errorf("stats %+v, want %d written and sent", st, len(want))
		}
		t.Logf("%s: %d series read back", r.Name, len(got))
	})
}

// TestReceiversMerged: three snapshots a second apart, whose values
// differ, sent in one request (the sink merges a batch's snapshots: each
// series once, with three samples), are stored by each receiver as three
// samples of each series, each snapshot's values read back at its time.
func TestReceiversMerged(t *testing.T) {
	eachReceiver(t, func(t *testing.T, r *sinktest.Receiver) {
		s := newSink(t, r.WriteURL, WithFlushInterval(time.Hour), WithBatchSize(100000))
		base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
		e := defaultEncoder(nil)
		var want []map[string]float64
		for i := range 3 {
			snap := sinktest.MixedSnapshot(base.Add(time.Duration(i) * time.Second))
			for j := range snap.Containers {
				c := &snap.Containers[j].Cgroup
				c.CPU.Usage.V += uint64(i) * 1e9
				c.Memory.Usage.V += uint64(i) << 20
			}
			want = append(want, expected(t, e, snap))
			if err := s.Write(t.Context(), snap); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(t.Context()); err != nil {
			t.Fatalf("flush: %v\n%s", err, r.Log())
		}
		n := len(want[0])
		if got := sampleCount(t, r, base.Add(2*time.Second), 5*time.Second, 3*n); got != 3*n {
			t.Errorf("%s stores %d samples, want %d", r.Name, got, 3*n)
		}
		for i, w := range want {
			got := readBack(t, r, base.Add(time.Duration(i)*time.Second), n)
			for k, v := range w {
				if g, ok := got[k]; !ok {
					t.Errorf("snapshot %d: missing %s", i, k)
				} else if !sameValue(r, g, v) {
					t.Errorf("snapshot %d: %s = %v, want %v", i, k, g, v)
				}
			}
		}
		if st := s.Stats(); st.Sent != uint64(3*n) || st.Failures != 0 {
			t.Errorf("stats %+v, want %d samples sent", st, 3*n)
		}
	})
}

// TestOutage ends the receiver by its PID (see down), writes snapshots
// while it is down, restarts it, and reads back: first an outage the
// buffer holds (nothing lost), then one that overflows it (exactly the
// newest samples that fit are stored, and the rest are counted dropped).
func TestOutage(t *testing.T) {
	eachReceiver(t, func(t *testing.T, r *sinktest.Receiver) {
		perSnap := len(encodeSnapshot(t, defaultEncoder(nil), sinktest.MixedSnapshot(t0)))
		const snaps = 2
		limit := snaps * perSnap
		s := newSink(t, r.WriteURL, WithBufferSnapshots(snaps), WithBatchSize(perSnap/2),
			WithFlushInterval(50*time.Millisecond), WithBackoff(20*time.Millisecond, 100*time.Millisecond), WithTimeout(2*time.Second))
		base := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
		write := func(i int) {
			t.Helper()
			if err := s.Write(t.Context(), sinktest.MixedSnapshot(base.Add(time.Duration(i)*time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		// down ends the receiver by its PID. Prometheus is killed (SIGKILL):
		// it writes its WAL before it answers. VictoriaMetrics answers
		// before its data and index reach disk (it flushes them every
		// second or so): a SIGKILL just after a request loses what it
		// acknowledged (a third of the first phase's samples here), which
		// is the receiver's durability, not the sink's delivery; it is
		// stopped with SIGTERM, which makes it flush.
		down := r.Kill
		if r.Name == "victoria-metrics" {
			down = r.Stop
		}
		// Before the outage: one snapshot delivered.
		write(0)
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}

		// An outage within the buffer: two snapshots, nothing lost.
		down()
		write(1)
		write(2)
		time.Sleep(300 * time.Millisecond) // the sender fails and retries meanwhile
		if st := s.Stats(); st.Failures == 0 || st.Dropped != 0 {
			t.Errorf("during the outage: %+v, want failures and nothing dropped", st)
		}
		if s.DeliveryError() == nil {
			t.Error("during the outage: DeliveryError is nil")
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		if !sinktest.Poll(30*time.Second, func() bool { return s.Stats().Buffered == 0 }) {
			t.Fatalf("not delivered after the restart: %+v", s.Stats())
		}
		if !sinktest.Poll(10*time.Second, func() bool { return s.DeliveryError() == nil }) {
			t.Errorf("after the restart: DeliveryError %v", s.DeliveryError())
		}
		if n := sampleCount(t, r, base.Add(2*time.Second), time.Minute, 3*perSnap); n != 3*perSnap {
			t.Errorf("after an outage within the buffer: %d samples stored, want %d", n, 3*perSnap)
		}

		// An outage past the buffer: ten snapshots, the oldest dropped.
		down()
		for i := 10; i < 20; i++ {
			write(i)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(t.Context()); err != nil {
			t.Fatalf("close: %v", err)
		}
		st := s.Stats()
		wantDropped := uint64(10*perSnap - limit)
		if st.Dropped != wantDropped || s.Dropped() != wantDropped {
			t.Errorf("dropped %d (%d), want %d", st.Dropped, s.Dropped(), wantDropped)
		}
		if st.Sent != st.Written-st.Dropped || st.Rejected != 0 {
			t.Errorf("stats %+v", st)
		}
		if n := sampleCount(t, r, base.Add(19*time.Second), 10*time.Second, limit); n != limit {
			t.Errorf("after an outage past the buffer: %d samples stored, want %d (the buffer)", n, limit)
		}
		// The newest snapshots are the ones kept: the last two whole.
		last := expected(t, defaultEncoder(nil), sinktest.MixedSnapshot(base.Add(19*time.Second)))
		got := readBack(t, r, base.Add(19*time.Second), len(last))
		for k := range last {
			if _, ok := got[k]; !ok {
				t.Errorf("newest snapshot: %s missing", k)
				break
			}
		}
		t.Logf("%s: %d samples per snapshot, buffer %d, dropped %d, failures %d", r.Name, perSnap, limit, st.Dropped, st.Failures)
	})
}

// TestRejectedOutOfOrder makes a real Prometheus refuse a batch: samples
// older than those it has for the same series are "out of order" (400).
// The batch is dropped, counted under 400 with Prometheus's reason, and
// returned by Flush; the sink goes on.
func TestRejectedOutOfOrder(t *testing.T) {
	bin, why := sinktest.Binary("METRICSD_TEST_PROMETHEUS")
	if bin == "" {
		rttest.Unavailable(t, "%s", "no prometheus: "+why)
	}
	r, err := sinktest.StartPrometheusReceiver(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	s := newSink(t, r.WriteURL)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	snap := sinktest.MixedSnapshot(at)
	n := len(encodeSnapshot(t, defaultEncoder(nil), snap))
	if err := s.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	snap.Time = at.Add(-time.Second)
	if err := s.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	err = s.Flush(t.Context())
	var we *WriteError
	if !errors.As(err, &we) || we.Status != 400 || we.Retry {
		t.Fatalf("flush: %v, want a 400 WriteError", err)
	}
	st := s.Stats()
	if st.Rejected != uint64(n) || len(st.Rejections) != 1 || st.Rejections[0].Status != 400 || st.Rejections[0].Points != uint64(n) {
		t.Fatalf("stats %+v, want %d rejected under 400", st, n)
	}
	if !strings.Contains(st.Rejections[0].Reason, "out of order") {
		t.Errorf("reason %q, want Prometheus's", st.Rejections[0].Reason)
	}
	// Later samples go through.
	snap.Time = at.Add(time.Second)
	if err := s.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, r, snap.Time, n); len(got) != n {
		t.Errorf("%d series after the rejection, want %d", len(got), n)
	}
	t.Logf("rejected: %s", st.Rejections[0].Reason)
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }
