package remotewrite

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/internal/wire"
	"github.com/metricsd/metricsd/sink"
)

// point is one sample of a series.
type point struct {
	ts   int64
	bits uint64 // the value's bits: NaN compares
}

// samplesByKey decodes a WriteRequest into each series' samples in the
// order the request has them.
func samplesByKey(t testing.TB, b []byte) map[string][]point {
	t.Helper()
	ss, err := decodeWriteRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	for _, s := range ss {
		out[s.key()] = append(out[s.key()], point{s.ts, math.Float64bits(s.value)})
	}
	return out
}

// timeSeriesCount counts a WriteRequest's TimeSeries fields.
func timeSeriesCount(t testing.TB, b []byte) int {
	t.Helper()
	n := 0
	for len(b) > 0 {
		_, _, k := protowire.ConsumeField(b)
		if k < 0 {
			t.Fatal("bad WriteRequest")
		}
		b, n = b[k:], n+1
	}
	return n
}

// assembleAll assembles recs, failing t if a record's id is unknown.
func assembleAll(t testing.TB, a *assembler, dst, recs []byte, labels []string) []byte {
	t.Helper()
	req, unknown := a.assemble(dst, recs, labels)
	if unknown != 0 {
		t.Fatalf("%d of %d records with an unknown series id", unknown, len(recs)/recordSize)
	}
	return req
}

// sameSamples checks that merged (a request the sink assembled) holds
// exactly the samples of body (full records), each series in one
// TimeSeries, and returns the number of series.
func sameSamples(t testing.TB, body, merged []byte) int {
	t.Helper()
	n := sameSamplesLoose(t, body, merged)
	if c := timeSeriesCount(t, merged); c != n {
		t.Errorf("%d TimeSeries for %d series: a series is split", c, n)
	}
	return n
}

// tableEncoder is a Sink's encoder: records of a series table.
func tableEncoder(tg *sink.Tagger, ext map[string]string) *encoder {
	e := newEncoder(tg, nil, true, nil, ext)
	e.ids = newSeriesTable()
	return e
}

// writeTable is what Sink.Write does with snap: its records appended to
// recs, the table compacted first when idle.
func writeTable(e *encoder, recs []byte, snap *sink.Snapshot, idle bool) []byte {
	if idle {
		e.ids.compact()
	}
	recs, e.ends = e.appendSnapshot(recs, e.ends[:0], snap)
	e.ids.endSnapshot()
	return recs
}

// TestSeriesTableChangingSnapshots writes through a series table the
// snapshots whose containers are renamed, relabelled, restarted under a new
// ID, gone and new (the sequence every encoder is tested with), and
// assembles the records, whole and cut at every 97th record (a batch may
// start or end inside a snapshot): exactly the samples of the full
// encoding, each series once per request, its samples in time order.
func TestSeriesTableChangingSnapshots(t *testing.T) {
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "team"}, {Label: "env"}}
	tg := sink.MustTagger(tags)
	ext := map[string]string{"job": "j"}
	full, e := newEncoder(tg, nil, true, nil, ext), tableEncoder(tg, ext)
	var body, recs []byte
	for i, s := range sinktest.ChangingSnapshots(t0) {
		s.Time = t0.Add(time.Duration(i) * time.Second) // the last is the first again: later
		body, _ = full.appendSnapshot(body, nil, s)
		recs = writeTable(e, recs, s, false)
	}
	var a assembler
	req := assembleAll(t, &a, nil, recs, e.ids.labels)
	nrec := len(recs) / recordSize
	n := sameSamples(t, body, req)
	if n >= nrec {
		t.Errorf("%d series in %d records: nothing merged", n, nrec)
	}
	t.Logf("%d records, %d series, %d ids: %d bytes, against %d", nrec, n, len(e.ids.labels), len(req), len(body))
	if len(e.ids.labels) != n {
		t.Errorf("%d ids for %d series", len(e.ids.labels), n)
	}
	for lo := 0; lo < nrec; lo += 97 {
		hi := min(lo+211, nrec)
		part := recs[lo*recordSize : hi*recordSize]
		req = assembleAll(t, &a, req[:0], part, e.ids.labels)
		ss, err := decodeWriteRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != hi-lo {
			t.Errorf("records [%d, %d): %d samples", lo, hi, len(ss))
		}
		timeSeriesCount(t, req)
	}
}

// TestSeriesTableSteady: five snapshots of the same 33 containers, a
// second apart, the batch of a 1 s interval and the default 5 s flush:
// one TimeSeries per series with five samples, in under a third of the
// bytes; no allocation in steady state, writing or assembling; and no
// compaction while nothing churns.
func TestSeriesTableSteady(t *testing.T) {
	tg := sink.MustTagger(sink.DefaultTags())
	full, e := newEncoder(tg, nil, true, nil, nil), tableEncoder(tg, nil)
	snaps := make([]*sink.Snapshot, 5)
	var body, recs []byte
	for i := range snaps {
		snaps[i] = sinktest.FullSnapshot(33, 2, t0.Add(time.Duration(i)*time.Second))
		body, _ = full.appendSnapshot(body, nil, snaps[i])
		recs = writeTable(e, recs, snaps[i], i == 0)
	}
	var a assembler
	req := assembleAll(t, &a, nil, recs, e.ids.labels)
	n := sameSamples(t, body, req)
	if nrec := len(recs) / recordSize; n*5 != nrec {
		t.Errorf("%d series from %d records, want a fifth", n, nrec)
	}
	if 3*len(req) > len(body) {
		t.Errorf("assembled %d bytes, against %d: want under a third", len(req), len(body))
	}
	t.Logf("%d series: %d bytes assembled, against %d (%.0f%%); records %d bytes", n, len(req), len(body), 100*float64(len(req))/float64(len(body)), len(recs))
	allocs := testing.AllocsPerRun(5, func() {
		recs = recs[:0]
		for _, s := range snaps {
			recs = writeTable(e, recs, s, true)
		}
		req, _ = a.assemble(req[:0], recs, e.ids.labels)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per five snapshots and a request, want 0", allocs)
	}
	if e.ids.compactions != 0 || len(e.ids.labels) != n {
		t.Errorf("%d compactions, %d ids for %d series", e.ids.compactions, len(e.ids.labels), n)
	}
}

// TestSeriesTableChurn: a container renamed at every snapshot (each
// rename is new series) grows the table only until the sender is idle:
// then it is compacted, and the series written after are still exact.
func TestSeriesTableChurn(t *testing.T) {
	tg := sink.MustTagger(sink.DefaultTags())
	full, e := newEncoder(tg, nil, true, nil, nil), tableEncoder(tg, nil)
	var a assembler
	perSnap := 0
	for i := range 200 {
		s := sinktest.FullSnapshot(2, 1, t0.Add(time.Duration(i)*time.Second))
		s.Containers[0].Container.Name = fmt.Sprintf("renamed-%d", i)
		body, _ := full.appendSnapshot(nil, nil, s)
		recs := writeTable(e, nil, s, true) // each snapshot sent before the next
		sameSamples(t, body, assembleAll(t, &a, nil, recs, e.ids.labels))
		perSnap = len(recs) / recordSize
	}
	if e.ids.compactions == 0 || len(e.ids.labels) > 2*perSnap+1024 {
		t.Errorf("%d compactions, %d ids for %d series a snapshot", e.ids.compactions, len(e.ids.labels), perSnap)
	}
	t.Logf("%d compactions, %d ids, %d series a snapshot", e.ids.compactions, len(e.ids.labels), perSnap)
}

// FuzzSeriesTable: three snapshots whose labels change in any way (the
// third is the first again), written through one series table: each
// record's series has, byte for byte, the labels the full encoding gives
// that sample, and the same time and value.
func FuzzSeriesTable(f *testing.F) {
	f.Add("c-0", "c-X", "blue", "bluf", "eth0", "eth9", "vda", "vdz")
	f.Add("a", "a\xff", "", "x", "lo", "lo", "", "sda")
	f.Add("same", "same", "v", "v", "eth\x80", "eth\x81", "vda", "vda")
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "team"}}
	tg := sink.MustTagger(tags)
	full, e := newEncoder(tg, nil, false, nil, nil), tableEncoder(tg, nil)
	e.cgroupID = false
	var body, recs []byte
	var ends []int
	f.Fuzz(func(t *testing.T, name1, name2, team1, team2, if1, if2, dev1, dev2 string) {
		snap := func(name, team, iface, dev string, sec int) *sink.Snapshot {
			return sinktest.LabelledSnapshot(name, team, iface, dev, t0.Add(time.Duration(sec)*time.Second))
		}
		for i, s := range []*sink.Snapshot{snap(name1, team1, if1, dev1, 0), snap(name2, team2, if2, dev2, 1), snap(name1, team1, if1, dev1, 2)} {
			body, ends = full.appendSnapshot(body[:0], ends[:0], s)
			recs = writeTable(e, recs[:0], s, i == 0)
			sameRecords(t, body, ends, recs, e.ids.labels)
		}
	})
}

// sameRecords checks that the series table's records recs are, one for
// one, the full encoding's records (body, ends): labels[id] is the
// record's label block byte for byte, and the time and value are its.
func sameRecords(t *testing.T, body []byte, ends []int, recs []byte, labels []string) {
	t.Helper()
	if len(recs) != len(ends)*recordSize {
		t.Fatalf("%d records, want %d", len(recs)/recordSize, len(ends))
	}
	start := 0
	for i, end := range ends {
		lo, hi, ok := recordAt(body[:end], start)
		if !ok || hi != end {
			t.Fatalf("record %d: not a TimeSeries", i)
		}
		r := recs[i*recordSize:]
		id := binary.LittleEndian.Uint32(r)
		ts := binary.LittleEndian.Uint64(r[4:])
		split := hi - (12 + wire.SizeVarint(ts)) // the sample, at the end
		if int(id) >= len(labels) || labels[id] != string(body[lo:split]) {
			t.Fatalf("record %d: id %d's labels are not the record's", i, id)
		}
		want := append(append([]byte{2<<3 | 2, byte(10 + wire.SizeVarint(ts)), 1<<3 | 1}, r[12:20]...), 2<<3)
		want = wire.AppendVarint(want, ts)
		if !bytes.Equal(body[split:hi], want) {
			t.Fatalf("record %d: sample %x, want %x", i, body[split:hi], want)
		}
		start = end
	}
}

// sameSamplesLoose is sameSamples without the count of TimeSeries, for
// snapshots whose series may repeat in one snapshot (two interfaces
// renamed alike): each series' samples the same. It returns the number of
// series.
func sameSamplesLoose(t testing.TB, body, req []byte) int {
	t.Helper()
	want, got := samplesByKey(t, body), samplesByKey(t, req)
	if len(got) != len(want) {
		t.Errorf("%d series, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g := got[k]; fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: samples %v, want %v", k, g, w)
		}
	}
	return len(want)
}

// TestSinkMergesSnapshots: the sink waits for the flush interval (or half
// its buffer's snapshots) rather than sending each full batch, and sends
// the snapshots waiting as one request, each series once with a sample per
// snapshot, decoded from the snappy body it posts.
func TestSinkMergesSnapshots(t *testing.T) {
	rec := newRecorder(t)
	srv, requests := rec.srv, rec.count
	s := newSink(t, srv.URL, WithFlushInterval(time.Hour), WithBatchSize(10000), WithBufferSnapshots(10))
	e := defaultEncoder(nil)
	var body []byte
	for i := range 4 {
		snap := sinktest.FullSnapshot(3, 2, t0.Add(time.Duration(i)*time.Second))
		body, _ = e.appendSnapshot(body, nil, snap)
		if err := s.Write(t.Context(), snap); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := requests(); n != 0 {
		t.Fatalf("%d requests before the flush interval with 4 of 10 snapshots waiting, want 0", n)
	}
	// The fifth snapshot is half the buffer: the sender starts.
	snap := sinktest.FullSnapshot(3, 2, t0.Add(4*time.Second))
	body, _ = e.appendSnapshot(body, nil, snap)
	if err := s.Write(t.Context(), snap); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for requests() == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all, nreq := rec.all()
	want := samplesByKey(t, body)
	got := samplesByKey(t, all)
	if len(got) != len(want) {
		t.Fatalf("%d series received, want %d", len(got), len(want))
	}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s: %v, want %v", k, got[k], w)
		}
	}
	if ts := timeSeriesCount(t, all); nreq != 1 || ts != len(want) {
		t.Errorf("%d TimeSeries in %d requests for %d series: want one request, each series once", ts, nreq, len(want))
	}
	if st := s.Stats(); st.Sent != uint64(5*len(want)) || st.Sent != st.Written {
		t.Errorf("stats %+v, want %d samples sent", st, 5*len(want))
	}
}

// BenchmarkWriteAndAssemble: what the Sink does with five snapshots of 33
// containers (two interfaces each) and a flush, through the series table
// (records, then one request of each series with five samples) and as
// full records (the public Encoder's form, the Sink's before), snappy
// included.
func BenchmarkWriteAndAssemble(b *testing.B) {
	snaps := make([]*sink.Snapshot, 5)
	for i := range snaps {
		snaps[i] = sinktest.FullSnapshot(33, 2, t0.Add(time.Duration(i)*time.Second))
	}
	tg := sink.MustTagger(sink.DefaultTags())
	b.Run("table", func(b *testing.B) {
		e := tableEncoder(tg, map[string]string{"job": "j"})
		var a assembler
		var recs, req, comp []byte
		b.ReportAllocs()
		for b.Loop() {
			recs = recs[:0]
			for _, s := range snaps {
				recs = writeTable(e, recs, s, true)
			}
			req, _ = a.assemble(req[:0], recs, e.ids.labels)
			comp = snappyEncode(comp, req)
		}
		b.ReportMetric(float64(len(comp)), "sent-bytes")
	})
	b.Run("full", func(b *testing.B) {
		e := newEncoder(tg, nil, true, nil, map[string]string{"job": "j"})
		var body, comp []byte
		b.ReportAllocs()
		for b.Loop() {
			body = body[:0]
			for _, s := range snaps {
				body, _ = e.appendSnapshot(body, nil, s)
			}
			comp = snappyEncode(comp, body)
		}
		b.ReportMetric(float64(len(comp)), "sent-bytes")
	})
}

// TestSinkChurnConcurrent: a sink written while it sends (a 1 ms flush
// interval), its containers renamed at every snapshot so that its series
// table is compacted again and again between batches, delivers exactly
// the samples of the full encoding: no series sent under another's labels
// (run it with -race: the table is shared by Write and the sender).
func TestSinkChurnConcurrent(t *testing.T) {
	rec := newRecorder(t)
	srv := rec.srv
	// A buffer that holds every snapshot: none is dropped however far the
	// sender falls behind, so every sample must arrive.
	s := newSink(t, srv.URL, WithFlushInterval(time.Millisecond), WithBatchSize(500), WithBufferSnapshots(1000))
	full := defaultEncoder(nil)
	var body []byte
	for i := range 150 {
		snap := sinktest.FullSnapshot(2, 1, t0.Add(time.Duration(i)*time.Second))
		snap.Containers[i%2].Container.Name = fmt.Sprintf("renamed-%d", i)
		body, _ = full.appendSnapshot(body, nil, snap)
		if err := s.Write(t.Context(), snap); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			time.Sleep(time.Millisecond) // let the sender catch up: idle moments
		}
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	all, n := rec.all()
	sameSamplesLoose(t, body, all)
	if st := s.Stats(); st.Dropped != 0 || st.Sent != st.Written {
		t.Errorf("stats %+v", st)
	}
	s.mu.Lock()
	compactions := s.enc.ids.compactions
	s.mu.Unlock()
	if compactions == 0 {
		t.Error("the series table was never compacted")
	}
	t.Logf("%d requests, %d compactions", n, compactions)
}

// recordAt returns the fields of the TimeSeries record at body[off:],
// body[lo:hi]; ok is false if there is none.
func recordAt(body []byte, off int) (lo, hi int, ok bool) {
	if off >= len(body) || body[off] != 1<<3|wire.Bytes {
		return 0, 0, false
	}
	n, k := binary.Uvarint(body[off+1:])
	if k <= 0 || n > uint64(len(body)-off-1-k) {
		return 0, 0, false
	}
	lo = off + 1 + k
	return lo, lo + int(n), true
}

// recorder is a receiver that keeps every request's WriteRequest (snappy
// decoded) and answers 204.
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		b, err := snappy.Decode(nil, raw)
		if err != nil {
			t.Error(err)
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// count is the number of requests so far.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// all returns the requests' WriteRequests concatenated (one WriteRequest)
// and their number.
func (r *recorder) all() ([]byte, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Join(r.bodies, nil), len(r.bodies)
}
