package influx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
)

// countField is a field every point of its measurement has in
// sinktest.FullSnapshot: counting it counts the points.
var countField = map[string]string{
	"container_cpu": "usage_ns", "container_memory": "usage_bytes", "container_pids": "current",
	"container_blkio": "read_ops", "container_hugetlb": "usage_bytes", "container_pressure": "some_total_us",
	"container_net": "rx_bytes", "container_sockets": "used", "container_ip": "in_receives",
	"container_tcp": "active_opens", "container_udp": "in_datagrams", "container_tcp_states": "established",
	"metricsd": "containers",
}

// storedPoints counts the points of db at time at, measurement by
// measurement, reading them back.
func storedPoints(t *testing.T, d *sinktest.Influxd, db string, at time.Time) (total int, by map[string]int) {
	t.Helper()
	by = map[string]int{}
	for m, f := range countField {
		ss, err := d.Query(context.Background(), db, fmt.Sprintf("SELECT count(%q) FROM %q WHERE time = %d", f, m, at.UnixNano()))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			for _, row := range s.Values {
				var n int
				fmt.Sscan(fmt.Sprint(row[1]), &n)
				by[m] += n
				total += n
			}
		}
	}
	return total, by
}

// TestThousandContainers writes snapshots of 1,000 containers (four
// interfaces each, every network part: 18 points a container) to a real
// InfluxDB with the sink's defaults, and reads every point back. The
// buffer used to be 10,000 points, less than one such snapshot: every write
// dropped the same points, alphabetically first, from a server answering
// 204. The buffer is sized in snapshots now, and the batches of 5,000
// points are each a request.
func TestThousandContainers(t *testing.T) {
	needInfluxd(t)
	d, err := sinktest.StartInfluxd(influxdBin, t.TempDir(), sinktest.InfluxdConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	createDB(t, d, "thousand")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s := newSink(t, d.URL, influx.WithV1("thousand", ""))
	const n, snaps = 1000, 3
	perSnap := 0
	for i := range snaps {
		snap := sinktest.FullSnapshot(n, 4, t0.Add(time.Duration(i)*10*time.Second))
		snap.Self = &sink.Self{Containers: n, Errors: []sink.StageErrors{{Stage: "discover"}}}
		if err := s.Write(ctx, snap); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			perSnap = int(s.Stats().Written)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	want := uint64(snaps * perSnap)
	if perSnap != 18*n+1 || st.Written != want || st.Sent != want || st.Dropped != 0 || st.Rejected != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v, want %d points (%d a snapshot) written and sent, none dropped", st, want, 18*n+1)
	}
	// InfluxDB's own counts: every point written once, in requests of at
	// most 5,000 points.
	written, err := d.Stat(ctx, "httpd", "pointsWrittenOK")
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := d.Stat(ctx, "httpd", "writeReq")
	if err != nil {
		t.Fatal(err)
	}
	if uint64(written) != want || reqs < int64(want+4999)/5000 {
		t.Errorf("InfluxDB counted %d points in %d requests, want %d points in at least %d", written, reqs, want, (want+4999)/5000)
	}
	// Read back, snapshot by snapshot.
	for i := range snaps {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		total, by := storedPoints(t, d, "thousand", at)
		if total != perSnap || by["container_cpu"] != n || by["container_net"] != 4*n || by["metricsd"] != 1 {
			t.Errorf("snapshot %d: %d points read back, want %d: %v", i, total, perSnap, by)
		}
		if i == 0 {
			t.Logf("read back %d of %d points of snapshot 0 (%d containers); %d in all, in %d requests", total, perSnap, n, written, reqs)
		}
	}
	// The first container by name, whose points used to be dropped.
	ss, err := d.Query(ctx, "thousand", `SELECT count("usage_ns") FROM "container_cpu" WHERE "name" = 'c-0'`)
	if err != nil || len(ss) != 1 || fmt.Sprint(ss[0].Values[0][1]) != fmt.Sprint(snaps) {
		t.Errorf("c-0's container_cpu points: %v %v, want %d", ss, err, snaps)
	}
}

// TestHostileValuesStored: a container named with a newline, an image
// ending in a backslash, a 64 KiB label and an interface named x\ are
// written to a real InfluxDB: every point is stored (they used to be left
// out, every point of the container), under the sanitised values, and
// counted as changed. With no bound on values, the 64 KiB label makes
// InfluxDB refuse the container's points (its series key is over 64 KiB)
// but store the others: a partial write, counted as such.
func TestHostileValuesStored(t *testing.T) {
	d := needInfluxd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap := sinktest.FullSnapshot(2, 2, t0)
	c := &snap.Containers[0].Container
	c.Name, c.Image = "two\nlines", `registry\`
	c.Labels["com.example.team"] = strings.Repeat("t", 64<<10)
	snap.Containers[0].Net.Interfaces[1].Name = `x\`
	perContainer := len(encode(t, testTags, sinktest.FullSnapshot(1, 2, t0)))

	createDB(t, d, "hostile")
	s := newSink(t, d.URL, influx.WithV1("hostile", ""), influx.WithTags(testTags))
	if err := s.Write(ctx, snap); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if st := s.Stats(); st.Sent != uint64(2*perContainer) || st.Rejected != 0 || st.Skipped != 0 {
		t.Fatalf("stats %+v, want all %d points sent", st, 2*perContainer)
	}
	if got, want := s.Sanitized(), (sink.Sanitized{Replaced: 3, Truncated: 1}); got != want {
		t.Errorf("Sanitized = %+v, want %+v", got, want)
	}
	ss, err := d.Query(ctx, "hostile", `SELECT count("rx_bytes") FROM "container_net" WHERE "name" = 'two`+"\uFFFD"+`lines' AND "image" = 'registry`+"\uFFFD"+`' AND "interface" = 'x`+"\uFFFD"+`'`)
	if err != nil || len(ss) != 1 || fmt.Sprint(ss[0].Values[0][1]) != "1" {
		t.Errorf("the sanitised interface's point: %v %v", ss, err)
	}
	ss, err = d.Query(ctx, "hostile", `SHOW TAG VALUES FROM "container_cpu" WITH KEY = "team"`)
	if err != nil {
		t.Fatal(err)
	}
	lens := map[int]int{}
	for _, s := range ss {
		for _, row := range s.Values {
			lens[len(fmt.Sprint(row[1]))]++
		}
	}
	if lens[sink.DefaultMaxValueLen] != 1 || lens[len("core")] != 1 {
		t.Errorf("team tag value lengths %v, want one of %d bytes and core", lens, sink.DefaultMaxValueLen)
	}

	// Unbounded: InfluxDB stores c-1's points, refuses c-0's.
	createDB(t, d, "unbounded")
	s = newSink(t, d.URL, influx.WithV1("unbounded", ""), influx.WithTags(testTags), influx.WithLimits(sink.Limits{MaxValueLen: -1}))
	if err := s.Write(ctx, snap); err != nil {
		t.Fatalf("Write = %v", err)
	}
	err = s.Close(ctx)
	var we *influx.WriteError
	if !errors.As(err, &we) || !we.Partial() || we.Refused != perContainer || !strings.HasPrefix(we.Reason, "partial write") {
		t.Fatalf("Close = %v, want a partial write refusing %d points", err, perContainer)
	}
	if st := s.Stats(); st.Sent != uint64(perContainer) || st.Rejected != uint64(perContainer) || st.Partial != 1 {
		t.Errorf("stats %+v, want %d sent, %d rejected, 1 partial", st, perContainer, perContainer)
	}
	total, _ := storedPoints(t, d, "unbounded", t0)
	if total != perContainer {
		t.Errorf("%d points stored, want c-1's %d", total, perContainer)
	}
}
