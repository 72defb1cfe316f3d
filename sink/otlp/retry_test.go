package otlp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/metricsd/metricsd/internal/sinktest"
)

// TestRetryRules makes the Collector's OTLP receiver refuse requests (its
// /fail switch: the consumer returns the gRPC status the receiver turns
// into the HTTP status, Retry-After and google.rpc.Status body it writes
// itself) and checks the OTLP/HTTP delivery rules: 429 and 503 are
// retried, no sooner than the Retry-After; 500 and 400 drop the batch,
// with no retry, counted under their status with the reason decoded from
// the protobuf google.rpc.Status; the data points the receiver kept are
// exactly those of the accepted request.
func TestRetryRules(t *testing.T) {
	r := startReceiver(t)
	ctx := t.Context()
	s := newSink(t, r.MetricsURL, WithBackoff(10*time.Millisecond, 20*time.Millisecond), WithFlushInterval(20*time.Millisecond))
	snap := sinktest.MixedSnapshot(t0)
	n := uint64(countPoints(snap))

	// Retried: 429 then 503, each with a Retry-After of 1 s, then accepted.
	if err := r.Fail(ctx, http.StatusTooManyRequests, 1, time.Second, "scripted: slow down"); err != nil {
		t.Fatal(err)
	}
	if err := r.Fail(ctx, http.StatusServiceUnavailable, 1, time.Second, "scripted: unavailable"); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if !sinktest.Poll(15*time.Second, func() bool { return s.Stats().Sent == n }) {
		t.Fatalf("not sent: %+v\n%s", s.Stats(), r.Log())
	}
	calls, err := r.Calls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[0].Status != 429 || calls[1].Status != 503 || calls[2].Status != 200 {
		t.Fatalf("calls %+v, want 429, 503, 200", calls)
	}
	for i := 1; i < 3; i++ {
		if d := calls[i].Time().Sub(calls[i-1].Time()); d < time.Second {
			t.Errorf("retry %d after %v, before the Retry-After of 1 s (backoff 10-20 ms)", i, d)
		}
	}
	if st := s.Stats(); st.Failures != 2 || st.Dropped != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v, want 2 failures, nothing dropped or rejected", st)
	}

	// Dropped: 500 (retried by remote_write, not by OTLP/HTTP) and 400.
	for i, status := range []int{http.StatusInternalServerError, http.StatusBadRequest} {
		if err := r.Fail(ctx, status, 1, 0, "scripted: refused with "+http.StatusText(status)); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, snap); err != nil {
			t.Fatal(err)
		}
		if !sinktest.Poll(10*time.Second, func() bool { return s.Stats().Rejected == uint64(i+1)*n }) {
			t.Fatalf("%d: not rejected: %+v", status, s.Stats())
		}
	}
	time.Sleep(200 * time.Millisecond) // ten flush intervals: a retry would show in the calls
	st := s.Stats()
	if len(st.Rejections) != 2 {
		t.Fatalf("rejections %+v, want 400 and 500", st.Rejections)
	}
	want := map[int]string{400: "scripted: refused with Bad Request", 500: "scripted: refused with Internal Server Error"}
	for _, rj := range st.Rejections {
		if want[rj.Status] != rj.Reason || rj.Points != n {
			t.Errorf("rejection %+v, want %d points with reason %q", rj, n, want[rj.Status])
		}
	}
	if st.Sent != n || st.Failures != 2 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	if calls, err = r.Calls(ctx); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 5 {
		t.Errorf("%d requests, want 5 (the refusals not retried): %+v", len(calls), calls)
	}
	reqs, err := r.Received(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, req := range reqs {
		for _, rm := range req.ResourceMetrics {
			got += len(points(t, rm))
		}
	}
	if uint64(got) != n {
		t.Errorf("receiver kept %d data points, want %d (one snapshot)", got, n)
	}
	err = s.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request: scripted: refused with Bad Request (dropped)") {
		t.Errorf("close: %v, want the refusals", err)
	}
}

// scriptedBackend answers each request with the next status of a script
// (then 200 with an empty ExportMetricsServiceResponse). A mock, for what
// the Collector's OTLP receiver never answers: 502 and 504 (a proxy or
// load balancer in front of a backend sends them) and a partial success
// (its receiver always answers an empty response).
type scriptedBackend struct {
	mu      sync.Mutex
	script  []int
	partial []byte // the body of the 200 answer, when set
	calls   int
}

func (f *scriptedBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	status := http.StatusOK
	if len(f.script) > 0 {
		status, f.script = f.script[0], f.script[1:]
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(status)
	if status == http.StatusOK {
		w.Write(f.partial)
	}
}

// TestProxyStatusesAndPartialSuccess: 502 and 504 are retried; a 200 with
// a partial_success is counted in Stats.PartiallyRejected, the request
// not retried.
func TestProxyStatusesAndPartialSuccess(t *testing.T) {
	// ExportMetricsServiceResponse{partial_success: {rejected_data_points: 7, error_message: "scripted"}}
	var ps []byte
	ps = protowire.AppendTag(ps, 1, protowire.VarintType)
	ps = protowire.AppendVarint(ps, 7)
	ps = protowire.AppendTag(ps, 2, protowire.BytesType)
	ps = protowire.AppendString(ps, "scripted")
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendBytes(body, ps)
	f := &scriptedBackend{script: []int{http.StatusBadGateway, http.StatusGatewayTimeout}, partial: body}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s := newSink(t, srv.URL+"/v1/metrics", WithBackoff(10*time.Millisecond, 20*time.Millisecond), WithFlushInterval(20*time.Millisecond))
	snap := sinktest.MixedSnapshot(t0)
	n := uint64(countPoints(snap))
	if err := s.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	if !sinktest.Poll(10*time.Second, func() bool { return s.Stats().Sent == n }) {
		t.Fatalf("not sent: %+v", s.Stats())
	}
	time.Sleep(100 * time.Millisecond)
	st := s.Stats()
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	if calls != 3 || st.Failures != 2 || st.PartiallyRejected != 7 || st.Rejected != 0 || st.Dropped != 0 {
		t.Errorf("%d requests, stats %+v; want 3 requests, 2 failures, 7 partially rejected", calls, st)
	}
}
