package influx_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
	"github.com/metricsd/metricsd/sink/points"
)

var t0 = time.Date(2026, 11, 28, 7, 0, 0, 123456789, time.UTC)

// testTags is the allow-list the tests use: the defaults and one label.
var testTags = func() sink.Tags {
	t := sink.DefaultTags()
	t.Labels = []sink.LabelTag{{Label: "com.example.team", Tag: "team"}}
	return t
}()

// mixedSnapshot has three containers: c-0 with everything, c-1 in a pod
// with some values unavailable and no limits, c-2 on the host network (no
// netns stats) and on cgroup v1 (no PSI).
func mixedSnapshot(t time.Time) *sink.Snapshot {
	s := sinktest.FullSnapshot(3, 2, t)
	c1 := &s.Containers[1]
	c1.Container.Pod = &runtime.Pod{Name: "web-7d9", Namespace: "shop", UID: "u1", Container: "nginx"}
	c1.Cgroup.Memory.Kernel = cgroup.Value{}
	c1.Cgroup.Memory.Limit = sinktest.Unlimited
	c1.Cgroup.CPU.Quota = sinktest.Unlimited
	c1.Cgroup.Pids.Limit = sinktest.Unlimited
	c1.Net.Parts = netns.PartDev | netns.PartSockstat
	c2 := &s.Containers[2]
	c2.Net = nil
	c2.Container.NetNS.Host = true
	c2.Cgroup.Pressure = cgroup.PressureStats{}
	return s
}

// encode returns the lines the sink's encoder makes of s.
func encode(t *testing.T, tags sink.Tags, s *sink.Snapshot) []string {
	t.Helper()
	enc := points.NewEncoder(sink.MustTagger(tags), lineprotocol.Nanosecond, nil)
	b, ends, skipped, err := enc.Append(nil, nil, s)
	if err != nil || skipped != 0 {
		t.Fatalf("encode: %d skipped: %v", skipped, err)
	}
	lines := make([]string, len(ends))
	for i := range ends {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		lines[i] = string(b[start:ends[i]])
	}
	return lines
}

// point is one decoded line protocol point.
type point struct {
	measurement string
	tags        map[string]string
	fields      map[string]any // int64 or float64
	time        int64
}

func decodeLine(t *testing.T, line string) point {
	t.Helper()
	dec := lineprotocol.NewDecoderWithBytes([]byte(line))
	if !dec.Next() {
		t.Fatalf("no line in %q", line)
	}
	m, err := dec.Measurement()
	if err != nil {
		t.Fatal(err)
	}
	p := point{measurement: string(m), tags: map[string]string{}, fields: map[string]any{}}
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			t.Fatal(err)
		}
		if k == nil {
			break
		}
		p.tags[string(k)] = string(v)
	}
	for {
		k, v, err := dec.NextField()
		if err != nil {
			t.Fatal(err)
		}
		if k == nil {
			break
		}
		p.fields[string(k)] = v.Interface()
	}
	ts, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	p.time = ts.UnixNano()
	return p
}

func newSink(t *testing.T, url string, opts ...influx.Option) *influx.Sink {
	t.Helper()
	s, err := influx.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func createDB(t *testing.T, d *sinktest.Influxd, db string) {
	t.Helper()
	if err := d.Exec(context.Background(), "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
}

// storedPoint reads back the point of measurement m with exactly tags at
// time ns, as InfluxDB returns it: the non-null fields of the row.
func storedPoint(t *testing.T, d *sinktest.Influxd, db, m string, tags map[string]string, ns int64) (map[string]any, bool) {
	t.Helper()
	var where []string
	for k, v := range tags {
		where = append(where, fmt.Sprintf(`"%s" = '%s'`, k, strings.ReplaceAll(v, `'`, `\'`)))
	}
	where = append(where, fmt.Sprintf("time = %d", ns))
	q := fmt.Sprintf(`SELECT * FROM "%s" WHERE %s GROUP BY *`, m, strings.Join(where, " AND "))
	ss, err := d.Query(context.Background(), db, q)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, s := range ss {
		// GROUP BY * puts tags in s.Tags; a series whose tag set is a
		// superset of tags would also match: require equality.
		st := map[string]string{}
		for k, v := range s.Tags {
			if v != "" {
				st[k] = v
			}
		}
		if !mapsEqual(st, tags) {
			continue
		}
		for _, row := range s.Values {
			f := map[string]any{}
			for i, c := range s.Columns {
				if c == "time" || row[i] == nil {
					continue
				}
				f[c] = row[i]
			}
			got = append(got, f)
		}
	}
	if len(got) > 1 {
		t.Fatalf("%s %v at %d: %d rows", m, tags, ns, len(got))
	}
	if len(got) == 0 {
		return nil, false
	}
	return got[0], true
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// sameFields compares fields as written (int64, float64) with fields as
// InfluxDB returns them (json.Number).
func sameFields(want map[string]any, got map[string]any) error {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, k+": missing")
			continue
		}
		n, _ := g.(json.Number)
		switch w := w.(type) {
		case int64:
			if v, err := n.Int64(); err != nil || v != w {
				diffs = append(diffs, fmt.Sprintf("%s: got %v want %d", k, g, w))
			}
		case float64:
			if v, err := n.Float64(); err != nil || v != w {
				diffs = append(diffs, fmt.Sprintf("%s: got %v want %v", k, g, w))
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: stored (%v) but not written", k, got[k]))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

// TestWriteReadBack writes a snapshot to a real InfluxDB 1.x, closes the
// sink (which must flush: the interval is an hour), and reads every point
// back through /query: same measurement, exactly the same tags, the same
// fields with the same values, and nothing else; then checks by name what
// must be absent (unavailable values, unlimited limits, unlisted labels,
// netns measurements of a host-network container).
func TestWriteReadBack(t *testing.T) {
	d := needInfluxd(t)
	createDB(t, d, "readback")
	s := newSink(t, d.URL, influx.WithV1("readback", ""), influx.WithTags(testTags), influx.WithFlushInterval(time.Hour))
	snap := mixedSnapshot(t0)
	if err := s.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	lines := encode(t, testTags, snap)
	st := s.Stats()
	if st.Written != uint64(len(lines)) || st.Sent != uint64(len(lines)) || st.Dropped != 0 || st.Rejected != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v, want %d written and sent", st, len(lines))
	}
	for _, l := range lines {
		p := decodeLine(t, l)
		got, ok := storedPoint(t, d, "readback", p.measurement, p.tags, p.time)
		if !ok {
			t.Errorf("not stored: %s", l)
			continue
		}
		if err := sameFields(p.fields, got); err != nil {
			t.Errorf("%s %v: %v", p.measurement, p.tags, err)
		}
	}

	// Values by name, from the fixture, so that a schema change that the
	// round trip above would accept still fails here.
	c0 := map[string]string{"id": fmt.Sprintf("%064x", 1), "name": "c-0", "image": "registry.example/app:1.2", "runtime": "docker", "team": "core"}
	cpu, ok := storedPoint(t, d, "readback", "container_cpu", c0, t0.UnixNano())
	if !ok {
		t.Fatal("container_cpu of c-0 not found with exactly the tags", c0)
	}
	want := map[string]any{"usage_ns": int64(3e9), "user_ns": int64(2e9), "system_ns": int64(1e9), "periods": int64(100),
		"throttled_periods": int64(7), "throttled_ns": int64(70e6), "bursts": int64(1), "burst_ns": int64(2000),
		"quota_us": int64(50000), "period_us": int64(100000), "shares": int64(1024), "weight": int64(100), "limit_cores": 0.5}
	if err := sameFields(want, cpu); err != nil {
		t.Error("container_cpu c-0:", err)
	}
	c1 := map[string]string{"id": fmt.Sprintf("%064x", 2), "name": "c-1", "image": "registry.example/app:1.2", "runtime": "docker", "team": "core",
		"pod": "web-7d9", "namespace": "shop", "container": "nginx"}
	mem, ok := storedPoint(t, d, "readback", "container_memory", c1, t0.UnixNano())
	if !ok {
		t.Fatal("container_memory of c-1 not found with exactly the tags", c1)
	}
	for _, absent := range []string{"kernel_bytes", "limit_bytes", "swap_limit_bytes", "memsw_limit_bytes"} {
		if v, ok := mem[absent]; ok {
			t.Errorf("c-1 container_memory %s = %v, want absent (unavailable or unlimited)", absent, v)
		}
	}
	if v := mem["usage_bytes"]; fmt.Sprint(v) != strconv.Itoa(1000+200<<20) {
		t.Errorf("c-1 usage_bytes = %v", v)
	}
	// Tag keys: the allow-list only, never the "noise" and "env" labels.
	keys, err := d.Query(ctx, "readback", "SHOW TAG KEYS")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		for _, v := range k.Values {
			switch v[0] {
			case "id", "name", "image", "runtime", "team", "pod", "namespace", "container", "interface", "device", "page_size", "resource":
			default:
				t.Errorf("%s has tag key %v, not in the allow-list", k.Name, v[0])
			}
		}
	}
	// c-2 shares the host network: no container_net, sockets, ... for it.
	ss, err := d.Query(ctx, "readback", `SELECT count(rx_bytes) FROM container_net WHERE "name" = 'c-2'`)
	if err != nil || len(ss) != 0 {
		t.Errorf("container_net for the host-network c-2: %v %v", ss, err)
	}
	// c-1 has only dev and sockstat: no container_tcp.
	ss, err = d.Query(ctx, "readback", `SELECT count(*) FROM container_tcp WHERE "name" = 'c-1'`)
	if err != nil || len(ss) != 0 {
		t.Errorf("container_tcp for c-1 without snmp: %v %v", ss, err)
	}
	// net per interface, exact values.
	eth0, ok := storedPoint(t, d, "readback", "container_net", map[string]string{"id": fmt.Sprintf("%064x", 1), "name": "c-0", "image": "registry.example/app:1.2", "runtime": "docker", "team": "core", "interface": "eth0"}, t0.UnixNano())
	if !ok || fmt.Sprint(eth0["rx_bytes"]) != "1000100" || fmt.Sprint(eth0["tx_bytes"]) != "2000100" {
		t.Errorf("container_net c-0 eth0: %v", eth0)
	}
}

// TestRejectedBatchNamesReason makes a real InfluxDB 1.x refuse writes: to
// a database that does not exist (404: the batch is dropped, counted as
// Rejected), and with a field whose type conflicts with what the database
// holds (400 "partial write": InfluxDB stores every other point of the
// batch, which is counted as Sent, the refused one as Rejected, the request
// as Partial; the series read back). The error carries InfluxDB's reason.
func TestRejectedBatchNamesReason(t *testing.T) {
	d := needInfluxd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s := newSink(t, d.URL, influx.WithV1("no_such_db", ""), influx.WithFlushInterval(time.Hour))
	snap := sinktest.FullSnapshot(1, 1, t0)
	if err := s.Write(ctx, snap); err != nil {
		t.Fatal(err)
	}
	err := s.Flush(ctx)
	var we *influx.WriteError
	if !errors.As(err, &we) || we.Status != http.StatusNotFound || !strings.Contains(we.Reason, "database not found") || we.Retry {
		t.Fatalf("Flush = %v, want a 404 WriteError naming database not found", err)
	}
	n := uint64(len(encode(t, sink.DefaultTags(), snap)))
	if st := s.Stats(); st.Rejected != n || st.Sent != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v, want %d rejected", st, n)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close after the rejected batch: %v", err)
	}

	// A float where the sink writes an integer (field types are per shard:
	// the same time as the snapshot's).
	createDB(t, d, "conflict")
	pre, err := http.Post(d.URL+"/write?db=conflict", "text/plain", strings.NewReader(fmt.Sprintf("container_pids current=1.5 %d\n", t0.UnixNano())))
	if err != nil || pre.StatusCode != http.StatusNoContent {
		t.Fatalf("pre-write: %v %v", pre, err)
	}
	pre.Body.Close()
	s = newSink(t, d.URL, influx.WithV1("conflict", ""), influx.WithFlushInterval(time.Hour))
	if err := s.Write(ctx, snap); err != nil {
		t.Fatal(err)
	}
	err = s.Close(ctx)
	if !errors.As(err, &we) || we.Status != http.StatusBadRequest || !strings.Contains(we.Reason, "field type conflict") || we.Refused != 1 {
		t.Fatalf("Close = %v, want a 400 WriteError naming the field type conflict, 1 point refused", err)
	}
	if st := s.Stats(); st.Rejected != 1 || st.Sent != n-1 || st.Partial != 1 {
		t.Fatalf("stats %+v, want 1 rejected, %d sent, 1 partial", st, n-1)
	}
	// Every point but the conflicting one was stored: the pre-written
	// container_pids and the snapshot's other n-1, all at t0.
	ss, err := d.Query(ctx, "conflict", fmt.Sprintf("SELECT * FROM /.*/ WHERE time = %d", t0.UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, s := range ss {
		rows += len(s.Values)
	}
	if uint64(rows) != n {
		t.Fatalf("%d points stored, want %d: %v", rows, n, ss)
	}
}

// TestSplitOn413 runs an InfluxDB whose max-body-size is 4 KiB: a batch of
// 300 points is refused with 413 and split until the halves fit; every
// point arrives exactly once (InfluxDB's own pointsWrittenOK counter), and
// a point larger than the limit on its own is dropped as Rejected.
func TestSplitOn413(t *testing.T) {
	needInfluxd(t)
	d, err := sinktest.StartInfluxd(influxdBin, t.TempDir(), sinktest.InfluxdConfig{MaxBodySize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	createDB(t, d, "split")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			before, err := d.Stat(ctx, "httpd", "pointsWrittenOK")
			if err != nil {
				t.Fatal(err)
			}
			s := newSink(t, d.URL, influx.WithV1("split", ""), influx.WithGzip(gz), influx.WithBatchSize(300), influx.WithFlushInterval(time.Hour),
				influx.WithLimits(sink.Limits{MaxValueLen: -1})) // the big point's image is not cut
			snap := &sink.Snapshot{Time: t0.Add(time.Duration(btoi(gz)) * time.Hour)}
			for i := range 300 {
				c := sinktest.Container("split", i)
				// Incompressible enough that gzip does not make 300 points
				// fit in 4 KiB.
				c.Image = randomHex(100)
				var st cgroup.Stats
				st.Pids.Current = sinktest.K(uint64(i))
				snap.Containers = append(snap.Containers, sink.Sample{Container: c, Cgroup: st})
			}
			// One point alone is larger than the server takes.
			big := sinktest.Container("big", 0)
			big.Image = randomHex(12000)
			var st cgroup.Stats
			st.Pids.Current = sinktest.K(1)
			snap.Containers = append(snap.Containers, sink.Sample{Container: big, Cgroup: st})

			if err := s.Write(ctx, snap); err != nil {
				t.Fatal(err)
			}
			err = s.Close(ctx)
			var we *influx.WriteError
			if !errors.As(err, &we) || we.Status != http.StatusRequestEntityTooLarge || we.Points != 1 {
				t.Fatalf("Close = %v, want the one oversized point refused with 413", err)
			}
			stats := s.Stats()
			if stats.Sent != 300 || stats.Rejected != 1 || stats.Buffered != 0 {
				t.Fatalf("stats %+v, want 300 sent, 1 rejected", stats)
			}
			after, err := d.Stat(ctx, "httpd", "pointsWrittenOK")
			if err != nil {
				t.Fatal(err)
			}
			if after-before != 300 {
				t.Fatalf("InfluxDB counted %d points written, want 300 (each exactly once)", after-before)
			}
			ss, err := d.Query(ctx, "split", fmt.Sprintf("SELECT count(current), sum(current) FROM container_pids WHERE time = %d", snap.Time.UnixNano()))
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != 1 || fmt.Sprint(ss[0].Values[0][1:]) != "[300 44850]" {
				t.Fatalf("stored count, sum = %v, want 300, 44850", ss)
			}
		})
	}
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// onePoint is a snapshot with one container and one field (pids current =
// i) at t0 + i seconds: exactly one point, identified by its time.
func onePoint(i int) *sink.Snapshot {
	var st cgroup.Stats
	st.Pids.Current = sinktest.K(uint64(i))
	return &sink.Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Containers: []sink.Sample{{Container: sinktest.Container("outage", 0), Cgroup: st}}}
}

// storedSeconds returns the values of pids current stored in db, sorted.
func storedValues(t *testing.T, d *sinktest.Influxd, db string) []int {
	t.Helper()
	ss, err := d.Query(context.Background(), db, "SELECT current FROM container_pids")
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, s := range ss {
		for _, row := range s.Values {
			n, err := strconv.Atoi(fmt.Sprint(row[1]))
			if err != nil {
				t.Fatal(err)
			}
			vs = append(vs, n)
		}
	}
	slices.Sort(vs)
	return vs
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// TestOutageRestart stops a real influxd while the sink keeps writing and
// starts it again. Within the buffer bound every point arrives, none twice;
// past it, exactly the oldest are dropped and the drop count is exact.
// "None twice" is InfluxDB's own count of points written after the restart
// (SHOW STATS httpd pointsWrittenOK starts at 0 with the process), since a
// point written twice would not show as two rows.
func TestOutageRestart(t *testing.T) {
	needInfluxd(t)
	d, err := sinktest.StartInfluxd(influxdBin, t.TempDir(), sinktest.InfluxdConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	createDB(t, d, "outage")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const limit, batch = 50, 8
	s := newSink(t, d.URL, influx.WithV1("outage", ""), influx.WithBufferSnapshots(limit), influx.WithBatchSize(batch),
		influx.WithFlushInterval(20*time.Millisecond), influx.WithBackoff(20*time.Millisecond, 100*time.Millisecond))
	next := 0
	write := func(n int) {
		for range n {
			if err := s.Write(ctx, onePoint(next)); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	waitStats := func(what string, ok func(influx.Stats) bool) {
		t.Helper()
		if !sinktest.Poll(30*time.Second, func() bool { return ok(s.Stats()) }) {
			t.Fatalf("%s: stats %+v", what, s.Stats())
		}
	}

	// Up: 20 points arrive.
	write(20)
	waitStats("20 sent", func(st influx.Stats) bool { return st.Sent == 20 && st.Buffered == 0 })
	if err := s.DeliveryError(); err != nil {
		t.Fatalf("DeliveryError with InfluxDB up = %v", err)
	}

	// Down, within the bound: 40 more (50 snapshots of a point each) while writes fail.
	d.Stop()
	write(40)
	waitStats("a failed attempt", func(st influx.Stats) bool { return st.Failures > 0 })
	// The outage shows in DeliveryError (what the daemon's /readyz asks)
	// while Write itself still succeeds, and clears once delivery resumes.
	// The first attempt may meet the connection the server closed as it
	// stopped (EOF); the retries are refused.
	if !sinktest.Poll(10*time.Second, func() bool {
		err := s.DeliveryError()
		return err != nil && strings.Contains(err.Error(), "connection refused")
	}) {
		t.Fatalf("DeliveryError during the outage = %v, want connection refused", s.DeliveryError())
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	waitStats("60 sent", func(st influx.Stats) bool { return st.Sent == 60 && st.Buffered == 0 })
	if !sinktest.Poll(10*time.Second, func() bool { return s.DeliveryError() == nil }) {
		t.Fatalf("DeliveryError after the restart = %v", s.DeliveryError())
	}
	if st := s.Stats(); st.Dropped != 0 {
		t.Fatalf("dropped %d within the bound", st.Dropped)
	}
	if n, err := d.Stat(ctx, "httpd", "pointsWrittenOK"); err != nil || n != 40 {
		t.Fatalf("after the restart InfluxDB counted %d points written (%v), want 40", n, err)
	}
	if got := storedValues(t, d, "outage"); !slices.Equal(got, seq(0, 60)) {
		t.Fatalf("stored %v, want 0..59", got)
	}

	// Down, past the bound: 130 more into a buffer of 50.
	d.Stop()
	write(130)
	// Every failed batch comes back into the buffer before the count is
	// final: wait until the buffer holds exactly its bound.
	waitStats("buffer at its bound", func(st influx.Stats) bool { return st.Dropped == 80 && st.Buffered == limit })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	waitStats("the newest 50 sent", func(st influx.Stats) bool { return st.Sent == 110 && st.Buffered == 0 })
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Written != 190 || st.Sent != 110 || st.Dropped != 80 || st.Rejected != 0 {
		t.Fatalf("stats %+v, want 190 written, 110 sent, 80 dropped", st)
	}
	if n, err := d.Stat(ctx, "httpd", "pointsWrittenOK"); err != nil || n != 50 {
		t.Fatalf("after the second restart InfluxDB counted %d points written (%v), want 50", n, err)
	}
	// The oldest 80 of the outage (60..139) are gone, the newest 50 arrived.
	if got, want := storedValues(t, d, "outage"), append(seq(0, 60), seq(140, 190)...); !slices.Equal(got, want) {
		t.Fatalf("stored %v,\nwant %v", got, want)
	}
}

// TestBufferBoundWithoutServer checks the drop count when nothing answers
// at all, and that Close gives up when its context ends, counting what it
// could not send.
func TestBufferBoundWithoutServer(t *testing.T) {
	port, err := sinktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port: every request is refused at once.
	s := newSink(t, fmt.Sprintf("http://127.0.0.1:%d", port), influx.WithV1("db", ""), influx.WithBufferSnapshots(10),
		influx.WithBatchSize(4), influx.WithFlushInterval(time.Hour), influx.WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	ctx := context.Background()
	for i := range 25 {
		if err := s.Write(ctx, onePoint(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The background sender takes batches out and puts them back after
	// each refused connection; a batch out does not count against the bound
	// until it is back.
	if !sinktest.Poll(10*time.Second, func() bool { st := s.Stats(); return st.Dropped == 15 && st.Buffered == 10 && st.Failures > 0 }) {
		t.Fatalf("stats %+v, want 15 dropped, 10 buffered", s.Stats())
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = s.Close(cctx)
	if err == nil || !strings.Contains(err.Error(), "10 points not delivered") {
		t.Fatalf("Close = %v, want 10 points not delivered", err)
	}
	if st := s.Stats(); st.Dropped != 25 || st.Buffered != 0 || st.Sent != 0 {
		t.Fatalf("stats %+v, want 25 dropped", st)
	}
	if err := s.Write(ctx, onePoint(0)); !errors.Is(err, influx.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, opts := range map[string][]influx.Option{
		"no API":          nil,
		"both APIs":       {influx.WithV1("db", ""), influx.WithV2("o", "b", "t")},
		"empty db":        {influx.WithV1("", "")},
		"zero batch":      {influx.WithV1("db", ""), influx.WithBatchSize(0)},
		"zero snapshots":  {influx.WithV1("db", ""), influx.WithBufferSnapshots(0)},
		"bad backoff":     {influx.WithV1("db", ""), influx.WithBackoff(time.Second, time.Millisecond)},
		"reserved tag":    {influx.WithV1("db", ""), influx.WithTags(sink.Tags{Labels: []sink.LabelTag{{Label: "x", Tag: "interface"}}})},
		"invalid tag key": {influx.WithV1("db", ""), influx.WithTags(sink.Tags{Labels: []sink.LabelTag{{Label: "x", Tag: "a-b"}}})},
	} {
		if s, err := influx.New("http://127.0.0.1:1", opts...); err == nil {
			s.Close(context.Background())
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := influx.New("127.0.0.1:8086", influx.WithV1("db", "")); err == nil {
		t.Error("a base URL without scheme was accepted")
	}
}
