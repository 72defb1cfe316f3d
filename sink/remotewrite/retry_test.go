package remotewrite

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
)

// fakeReceiver answers each request with the next status of a script (then
// 204), and records what it got. A mock: neither real receiver here can be
// made to answer 429 or 503 with a Retry-After on demand.
type fakeReceiver struct {
	mu       sync.Mutex
	script   []int
	retry    string // Retry-After sent with 429 and 503
	times    []time.Time
	headers  []http.Header
	accepted []series
	sizes    []int // samples in each accepted request
}

func (f *fakeReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.times = append(f.times, time.Now())
	f.headers = append(f.headers, r.Header.Clone())
	status := http.StatusNoContent
	if len(f.script) > 0 {
		status, f.script = f.script[0], f.script[1:]
	}
	if status == http.StatusNoContent {
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, "snappy: "+err.Error(), http.StatusBadRequest)
			return
		}
		ss, err := decodeWriteRequest(raw)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.accepted = append(f.accepted, ss...)
		f.sizes = append(f.sizes, len(ss))
	}
	if f.retry != "" && (status == 429 || status == 503) {
		w.Header().Set("Retry-After", f.retry)
	}
	w.WriteHeader(status)
	if status >= 400 {
		io.WriteString(w, "scripted failure\n")
	}
}

// TestRetryRules: 503 and 429 are retried with backoff, waiting at least
// the Retry-After; a 401 drops the batch and counts it under 401 with the
// receiver's reason; the protocol's headers and the credentials are sent.
func TestRetryRules(t *testing.T) {
	f := &fakeReceiver{script: []int{503, 429, 204, 401}, retry: "1"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s := newSink(t, srv.URL+"/api/v1/write", WithBackoff(10*time.Millisecond, 20*time.Millisecond),
		WithFlushInterval(20*time.Millisecond), WithBearerToken("s3cret"), WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-1"}))
	snap := sinktest.MixedSnapshot(t0)
	n := len(encodeSnapshot(t, defaultEncoder(nil), snap))
	if err := s.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	if !sinktest.Poll(10*time.Second, func() bool { return s.Stats().Sent == uint64(n) }) {
		t.Fatalf("not sent: %+v", s.Stats())
	}
	f.mu.Lock()
	if len(f.times) != 3 {
		t.Fatalf("%d requests, want 3", len(f.times))
	}
	for i := 1; i < 3; i++ {
		if d := f.times[i].Sub(f.times[i-1]); d < time.Second {
			t.Errorf("retry %d after %v, before the Retry-After of 1 s", i, d)
		}
	}
	h := f.headers[2]
	for k, want := range map[string]string{
		"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
		"X-Prometheus-Remote-Write-Version": "0.1.0", "Authorization": "Bearer s3cret", "X-Scope-Orgid": "tenant-1",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if len(f.accepted) != n {
		t.Errorf("receiver decoded %d series, want %d", len(f.accepted), n)
	}
	f.mu.Unlock()
	if st := s.Stats(); st.Failures != 2 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 2 failures", st)
	}

	if err := s.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	if !sinktest.Poll(10*time.Second, func() bool { return s.Stats().Rejected == uint64(n) }) {
		t.Fatalf("not rejected: %+v", s.Stats())
	}
	st := s.Stats()
	if len(st.Rejections) != 1 || st.Rejections[0].Status != 401 || st.Rejections[0].Reason != "scripted failure" {
		t.Errorf("rejections %+v", st.Rejections)
	}
	err := s.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: scripted failure (dropped)") {
		t.Errorf("close: %v, want the refusal", err)
	}
}

// TestBatchSize: no request carries more samples than WithBatchSize (the
// receiver decodes each strictly: one sample per series), and the samples
// of three snapshots go in the fewest requests that allows, every sample
// once.
func TestBatchSize(t *testing.T) {
	f := &fakeReceiver{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	snap := sinktest.MixedSnapshot(t0)
	perSnap := len(encodeSnapshot(t, defaultEncoder(nil), snap))
	const batch = 37
	s := newSink(t, srv.URL+"/api/v1/write", WithBatchSize(batch), WithFlushInterval(time.Hour))
	for i := range 3 {
		snap.Time = t0.Add(time.Duration(i) * time.Second)
		if err := s.Write(t.Context(), snap); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for i, n := range f.sizes {
		if n > batch || n == 0 {
			t.Errorf("request %d: %d samples, want 1 to %d", i, n, batch)
		}
		total += n
	}
	if want := (3*perSnap + batch - 1) / batch; len(f.sizes) != want || total != 3*perSnap {
		t.Errorf("%d requests of %v samples (%d in all), want %d requests, %d samples", len(f.sizes), f.sizes, total, want, 3*perSnap)
	}
	seen := map[string]bool{}
	for _, x := range f.accepted {
		k := x.key() + "@" + strconv.FormatInt(x.ts, 10)
		if seen[k] {
			t.Errorf("%s sent twice", k)
		}
		seen[k] = true
	}
	t.Logf("%d samples per snapshot, batch %d: requests of %v samples", perSnap, batch, f.sizes)
}

// TestBackoffJitter: waits grow from min to max, each between half and
// all of its step, and Retry-After wins when longer.
func TestBackoffJitter(t *testing.T) {
	s := newSink(t, "http://127.0.0.1:1/api/v1/write", WithBackoff(100*time.Millisecond, time.Second))
	seen := map[time.Duration]bool{}
	for attempt := 0; attempt < 8; attempt++ {
		step := min(100*time.Millisecond<<attempt, time.Second)
		for range 50 {
			d := s.q.Backoff(attempt, io.EOF)
			if d < step/2 || d > step {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, step/2, step)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct waits: no jitter", len(seen))
	}
	if d := s.q.Backoff(0, &WriteError{Status: 429, Retry: true, RetryAfter: 5 * time.Second}); d != 5*time.Second {
		t.Errorf("with Retry-After 5s: %v", d)
	}
}

// TestNewErrors: every problem with the options in one error.
func TestNewErrors(t *testing.T) {
	_, err := New("ftp://x", WithBatchSize(0), WithExternalLabels(map[string]string{"__x": "1", "interface": "2", "name": "3"}),
		WithBasicAuth("u", "p"), WithBearerToken("t"), WithHeaders(map[string]string{"content-type": "x"}), WithTimeout(0))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`URL "ftp://x"`, "batch size", `external label "__x"`, `external label "interface"`, `external label "name"`, "exclusive", `header "content-type"`, "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestSnappyBlock: the body the sink posts (klauspost/compress/s2's
// Snappy-compatible encoder) is a standard snappy block: the reference
// decoder, github.com/golang/snappy, gives back the WriteRequest exactly,
// for a request of a whole 33-container snapshot and for a tiny one.
func TestSnappyBlock(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	// The sink's records (its series table's), and the request they make.
	big, _ := s.enc.appendSnapshot(nil, nil, sinktest.FullSnapshot(33, 2, t0))
	small, _ := s.enc.appendSnapshot(nil, nil, &sink.Snapshot{Time: t0, Self: &sink.Self{}})
	for _, recs := range [][]byte{big, small} {
		var a assembler
		body := assembleAll(t, &a, nil, recs, s.enc.ids.labels)
		if we, err := s.post(context.Background(), recs, 1); we != nil || err != nil {
			t.Fatal(we, err)
		}
		mu.Lock()
		sent := got[len(got)-1]
		mu.Unlock()
		raw, err := snappy.Decode(nil, sent)
		if err != nil {
			t.Fatalf("golang/snappy cannot decode the body: %v", err)
		}
		if !bytes.Equal(raw, body) {
			t.Fatalf("decoded body differs from the request (%d bytes, want %d)", len(raw), len(body))
		}
		t.Logf("%d bytes sent as %d", len(body), len(sent))
	}
}

// TestUnknownSeriesIDReported: a record whose series id the table does not
// have (the table's invariant broken, which no input can cause: forged
// here, since it is a fault that cannot be made for real) is reported as
// refused, status 0, with its count, and the others are delivered.
func TestUnknownSeriesIDReported(t *testing.T) {
	rec := newRecorder(t)
	s, err := New(rec.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	recs, _ := s.enc.appendSnapshot(nil, nil, sinktest.FullSnapshot(3, 1, t0))
	good := len(recs) / recordSize
	forged := bytes.Clone(recs[:recordSize])
	binary.LittleEndian.PutUint32(forged, uint32(len(s.enc.ids.labels)+7))
	recs = append(recs, forged...)
	we, err := s.post(context.Background(), recs, good+1)
	if err != nil {
		t.Fatal(err)
	}
	if we == nil || !we.Partial() || we.Refused != 1 || we.Points != good+1 || we.Retry || we.Status != 0 {
		t.Fatalf("write error %+v, want 1 of %d refused, status 0, not retried", we, good+1)
	}
	if !strings.Contains(we.Error(), "series id is unknown") {
		t.Errorf("error %q does not say why", we.Error())
	}
	body, _ := rec.all()
	ss, err := decodeWriteRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != good {
		t.Errorf("the receiver got %d samples, want the %d good ones", len(ss), good)
	}
}
