package influx_test

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
)

// request is what an httptest server received.
type request struct {
	method, path string
	query        map[string][]string
	header       http.Header
	body         string // decompressed
	at           time.Time
}

// recorder is an httptest handler that records requests and answers each
// with the next of a script of responses (then 204).
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	reqs    []request
	answers []func(w http.ResponseWriter)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.t.Errorf("gzip body: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		r.t.Errorf("reading body: %v", err)
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, request{req.Method, req.URL.Path, req.URL.Query(), req.Header.Clone(), string(b), time.Now()})
	var answer func(w http.ResponseWriter)
	if len(r.answers) > 0 {
		answer, r.answers = r.answers[0], r.answers[1:]
	}
	r.mu.Unlock()
	if answer != nil {
		answer(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func status(code int, header, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if k, v, ok := strings.Cut(header, ": "); ok {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// tinySnapshot has one container with a CPU usage, a memory usage with no
// limit, and one interface.
func tinySnapshot() *sink.Snapshot {
	var st cgroup.Stats
	st.CPU.Usage = sinktest.K(5_000_000_000)
	st.CPU.Quota = sinktest.Unlimited
	st.Memory.Usage = sinktest.K(10 << 20)
	st.Memory.Limit = sinktest.Unlimited
	net := &netns.Stats{Parts: netns.PartDev, Interfaces: []netns.Interface{sinktest.Iface("eth0", 7, 1, 9, 2)}}
	return &sink.Snapshot{Time: t0, Containers: []sink.Sample{{
		Container: runtime.Container{ID: "abc", Name: "web", Image: "nginx:1", Runtime: "containerd", Labels: map[string]string{"com.example.team": "core", "secret": "x"}},
		Cgroup:    st, Net: net,
	}}}
}

// TestV2API checks what the sink sends to InfluxDB 2.x's /api/v2/write. No
// InfluxDB 2.x can run here, so an httptest server stands in: it checks the
// path, the query (org, bucket, precision), the token header and the
// gzip-decoded body, line by line.
func TestV2API(t *testing.T) {
	rec := &recorder{t: t}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSink(t, srv.URL, influx.WithV2("my org", "metrics", "s3cr3t"), influx.WithTags(testTags),
		influx.WithPrecision(lineprotocol.Second), influx.WithFlushInterval(time.Hour))
	ctx := context.Background()
	if err := s.Write(ctx, tinySnapshot()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/api/v2/write" {
		t.Errorf("%s %s", r.method, r.path)
	}
	if fmt.Sprint(r.query) != "map[bucket:[metrics] org:[my org] precision:[s]]" {
		t.Errorf("query %v", r.query)
	}
	if got := r.header.Get("Authorization"); got != "Token s3cr3t" {
		t.Errorf("Authorization %q", got)
	}
	if got := r.header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding %q, want gzip by default", got)
	}
	sec := fmt.Sprint(t0.Unix())
	want := []string{
		"container_cpu,id=abc,image=nginx:1,name=web,runtime=containerd,team=core usage_ns=5000000000i " + sec,
		"container_memory,id=abc,image=nginx:1,name=web,runtime=containerd,team=core usage_bytes=10485760i " + sec,
		"container_net,id=abc,image=nginx:1,interface=eth0,name=web,runtime=containerd,team=core " +
			"rx_bytes=7i,rx_packets=1i,rx_errors=0i,rx_dropped=0i,rx_fifo=0i,rx_frame=0i,rx_compressed=0i,rx_multicast=0i," +
			"tx_bytes=9i,tx_packets=2i,tx_errors=0i,tx_dropped=0i,tx_fifo=0i,tx_collisions=0i,tx_carrier=0i,tx_compressed=0i " + sec,
	}
	got := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, g, w)
		}
	}
}

// TestV1URLAndAuth checks the 1.x query (db, rp, precision) and basic
// authentication, and a body sent without gzip, against an httptest server
// (the real InfluxDB 1.6 here runs without authentication).
func TestV1URLAndAuth(t *testing.T) {
	rec := &recorder{t: t}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSink(t, srv.URL+"/", influx.WithV1("telegraf", "autogen"), influx.WithCredentials("bob", "pw"),
		influx.WithGzip(false), influx.WithPrecision(lineprotocol.Millisecond), influx.WithFlushInterval(time.Hour))
	ctx := context.Background()
	if err := s.Write(ctx, tinySnapshot()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.path != "/write" || fmt.Sprint(r.query) != "map[db:[telegraf] precision:[ms] rp:[autogen]]" {
		t.Errorf("%s %v", r.path, r.query)
	}
	if u, p, ok := (&http.Request{Header: r.header}).BasicAuth(); !ok || u != "bob" || p != "pw" {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
	if r.header.Get("Content-Encoding") != "" {
		t.Errorf("Content-Encoding %q with gzip off", r.header.Get("Content-Encoding"))
	}
	if want := fmt.Sprint(t0.UnixMilli()); !strings.HasSuffix(r.body, " "+want+"\n") || strings.Count(r.body, "\n") != 3 {
		t.Errorf("body %q", r.body)
	}
}

// TestRetryHonoursRetryAfter: 429 with Retry-After and 503 are retried
// with backoff, the first not before Retry-After has passed, and every point
// arrives once, in order. InfluxDB 1.6 never answers 429 and can not be
// made to answer 503 on demand, hence the httptest server.
func TestRetryHonoursRetryAfter(t *testing.T) {
	rec := &recorder{t: t, answers: []func(http.ResponseWriter){
		status(http.StatusTooManyRequests, "Retry-After: 1", `{"code":"too many requests","message":"slow down"}`),
		status(http.StatusServiceUnavailable, "", `{"error":"engine: cache maximum memory size exceeded"}`),
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	// One Write of a full batch kicks the sender (the interval never
	// comes), so every request carries the same 3 points.
	s := newSink(t, srv.URL, influx.WithV2("o", "b", "t"), influx.WithBatchSize(3), influx.WithFlushInterval(time.Hour),
		influx.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	ctx := context.Background()
	if err := s.Write(ctx, nPoints(3)); err != nil {
		t.Fatal(err)
	}
	if !sinktest.Poll(10*time.Second, func() bool { return s.Stats().Sent == 3 }) {
		t.Fatalf("stats %+v", s.Stats())
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (429, 503, 204)", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}
	for i, r := range reqs {
		if r.body != reqs[0].body || strings.Count(r.body, "\n") != 3 {
			t.Errorf("request %d body %q, want the same 3 points each time", i, r.body)
		}
	}
	if st := s.Stats(); st.Failures != 2 || st.Sent != 3 || st.Dropped != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestOther4xxDrops: a 401 drops the batch with an error naming the reason
// and the sink goes on with the next batch (an httptest server stands in
// for an InfluxDB 2.x with a bad token).
func TestOther4xxDrops(t *testing.T) {
	rec := &recorder{t: t, answers: []func(http.ResponseWriter){
		status(http.StatusUnauthorized, "", `{"code":"unauthorized","message":"unauthorized access"}`),
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s := newSink(t, srv.URL, influx.WithV2("o", "b", "bad"), influx.WithBatchSize(2), influx.WithFlushInterval(time.Hour))
	ctx := context.Background()
	if err := s.Write(ctx, nPoints(4)); err != nil {
		t.Fatal(err)
	}
	err := s.Close(ctx)
	var we *influx.WriteError
	if !errors.As(err, &we) || we.Status != 401 || we.Reason != "unauthorized: unauthorized access" || we.Points != 2 || we.Retry {
		t.Fatalf("Close = %v", err)
	}
	if !strings.Contains(err.Error(), "unauthorized access") {
		t.Errorf("error %q does not name the reason", err)
	}
	if st := s.Stats(); st.Rejected != 2 || st.Sent != 2 {
		t.Errorf("stats %+v, want 2 rejected, 2 sent", st)
	}
	if n := len(rec.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (no retry of a 401)", n)
	}
}

// nPoints is a snapshot of n containers with one field each: n points.
func nPoints(n int) *sink.Snapshot {
	s := &sink.Snapshot{Time: t0}
	for i := range n {
		var st cgroup.Stats
		st.Pids.Current = sinktest.K(uint64(i))
		s.Containers = append(s.Containers, sink.Sample{Container: sinktest.Container("n", i), Cgroup: st})
	}
	return s
}
