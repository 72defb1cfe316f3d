package remotewrite

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
)

var update = flag.Bool("update", false, "rewrite testdata/encode.golden.gz from the current encoder")

const goldenFile = "testdata/encode.golden.gz"

// goldenCase is an encoder configuration and the snapshots it encodes, in
// order, with one encoder.
type goldenCase struct {
	name  string
	enc   func() *encoder
	snaps func() []*sink.Snapshot
}

func goldenCases() []goldenCase {
	ext := map[string]string{"job": "metricsd", "instance": "node-1"}
	labelTags := sink.DefaultTags()
	labelTags.Labels = []sink.LabelTag{{Label: "team"}, {Label: "env", Tag: "environment"}}
	labelTags.Global = []sink.Tag{{Key: "host", Value: "node-7"}}
	mixed := func() []*sink.Snapshot {
		snap := sinktest.MixedSnapshot(t0)
		devs := &snap.Containers[0].Cgroup.IO.Devices
		*devs = append(*devs, cgroup.IODevice{Major: 254, Minor: 16, Name: "vdb", ReadBytes: sinktest.K(77), WriteBytes: sinktest.K(88), ReadOps: sinktest.K(7), WriteOps: sinktest.K(8)})
		full := sinktest.FullSnapshot(2, 3, t0)
		cheap := sinktest.FullSnapshot(2, 2, t0)
		for i := range cheap.Containers {
			cheap.Containers[i].Net.Parts = netns.TierCheap
		}
		return []*sink.Snapshot{snap, full, cheap, hostileSnapshot()}
	}
	return []goldenCase{
		{"default", func() *encoder { return defaultEncoder(ext) }, mixed},
		{"name-not-first", func() *encoder {
			return defaultEncoder(map[string]string{"A_first": "x", "job": "metricsd", "zone": ""})
		}, mixed},
		{"info", func() *encoder {
			return newEncoder(sink.MustTagger(sink.Tags{ID: true, Name: true, Image: true, Runtime: true, Pod: true, Info: true}), nil, true, nil, ext)
		}, mixed},
		{"info-only", func() *encoder {
			return newEncoder(sink.MustTagger(sink.Tags{ID: true, Name: true, Image: true, Runtime: true, Pod: true, InfoOnly: true, Global: []sink.Tag{{Key: "host", Value: "h1"}}}), nil, true, nil, ext)
		}, mixed},
		{"changing", func() *encoder {
			return newEncoder(sink.MustTagger(labelTags), nil, false, nil, ext)
		}, func() []*sink.Snapshot { return sinktest.ChangingSnapshots(t0) }},
		{"changing-limits", func() *encoder {
			return newEncoder(sink.MustTagger(labelTags), sink.NewSanitizer(sink.Limits{MaxValueLen: 5, MaxInterfaces: 2}), true,
				func(name string) bool { return name != "eth1" }, nil)
		}, func() []*sink.Snapshot { return sinktest.ChangingSnapshots(t0) }},
	}
}

// encodeCases encodes every case, each snapshot after the ones before it
// with one encoder (what Sink.Write does), into name -> request.
func encodeCases(t *testing.T) (names []string, reqs map[string][]byte) {
	reqs = map[string][]byte{}
	for _, c := range goldenCases() {
		e := c.enc()
		var buf []byte
		var ends []int
		for i, snap := range c.snaps() {
			buf, ends = e.appendSnapshot(buf[:0], ends[:0], snap)
			name := fmt.Sprintf("%s/%d", c.name, i)
			names = append(names, name)
			reqs[name] = bytes.Clone(buf)
		}
	}
	return names, reqs
}

// TestGoldenEncoding holds the encoder's output byte-identical to what the
// encoder before issue 13's speed-up sent (testdata/encode.golden.gz,
// written by that encoder with -update): every series, label and value,
// in the same order. On a difference it decodes both requests and names
// the first series that differs.
func TestGoldenEncoding(t *testing.T) {
	names, got := encodeCases(t)
	if *update {
		var raw bytes.Buffer
		for _, n := range names {
			raw.Write(binary.AppendUvarint(nil, uint64(len(n))))
			raw.WriteString(n)
			raw.Write(binary.AppendUvarint(nil, uint64(len(got[n]))))
			raw.Write(got[n])
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write(raw.Bytes())
		zw.Close()
		if err := os.WriteFile(goldenFile, z.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d requests, %d bytes (%d gzipped)", goldenFile, len(names), raw.Len(), z.Len())
		return
	}
	want := readGolden(t)
	if len(want) != len(got) {
		t.Errorf("%d golden requests, %d encoded", len(want), len(got))
	}
	for _, n := range names {
		w, ok := want[n]
		if !ok {
			t.Errorf("%s: no golden request", n)
			continue
		}
		if bytes.Equal(w, got[n]) {
			continue
		}
		t.Errorf("%s: %d bytes, golden %d: %s", n, len(got[n]), len(w), firstDifference(t, got[n], w))
	}
}

func readGolden(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	next := func() []byte {
		n, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < n {
			t.Fatalf("%s: corrupt", goldenFile)
		}
		b := raw[k : k+int(n)]
		raw = raw[k+int(n):]
		return b
	}
	for len(raw) > 0 {
		name := string(next())
		out[name] = next()
	}
	return out
}

// firstDifference decodes two requests and describes the first series
// that differs.
func firstDifference(t *testing.T, got, want []byte) string {
	g, err := decodeWriteRequest(got)
	if err != nil {
		return "encoded request does not decode: " + err.Error()
	}
	w, err := decodeWriteRequest(want)
	if err != nil {
		t.Fatalf("golden request does not decode: %v", err)
	}
	for i := range min(len(g), len(w)) {
		if g[i].key() != w[i].key() || g[i].value != w[i].value || g[i].ts != w[i].ts ||
			fmt.Sprint(g[i].labels) != fmt.Sprint(w[i].labels) {
			return fmt.Sprintf("series %d: %s %v @%d (labels %v), golden %s %v @%d (labels %v)",
				i, g[i].key(), g[i].value, g[i].ts, g[i].labels, w[i].key(), w[i].value, w[i].ts, w[i].labels)
		}
	}
	if len(g) != len(w) {
		return fmt.Sprintf("%d series, golden %d", len(g), len(w))
	}
	return "same series, different bytes (field order or encoding)"
}

// TestChangingLabelsNotStale: an encoder that has encoded earlier
// snapshots (whatever it remembers of them) writes for each snapshot of
// sinktest.ChangingSnapshots exactly the bytes a new encoder writes for
// that snapshot alone, and counts the same sanitised values: labels that
// changed between snapshots never come from a stale block.
func TestChangingLabelsNotStale(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			e := c.enc()
			var buf []byte
			var ends []int
			for i, snap := range c.snaps() {
				before := e.z.Sanitized()
				buf, ends = e.appendSnapshot(buf[:0], ends[:0], snap)
				after := e.z.Sanitized()
				f := c.enc()
				fresh, _ := f.appendSnapshot(nil, nil, snap)
				if !bytes.Equal(buf, fresh) {
					t.Errorf("snapshot %d: %s", i, firstDifference(t, buf, fresh))
				}
				delta := sink.Sanitized{Replaced: after.Replaced - before.Replaced, Truncated: after.Truncated - before.Truncated, Interfaces: after.Interfaces - before.Interfaces}
				if delta != f.z.Sanitized() {
					t.Errorf("snapshot %d: counted %+v, a new encoder %+v", i, delta, f.z.Sanitized())
				}
			}
		})
	}
}

// FuzzChangingLabels: whatever a container's name, label, image,
// interface and device become between two snapshots, the second encodes,
// after the first, to the bytes a new encoder writes for it alone.
func FuzzChangingLabels(f *testing.F) {
	f.Add("c-0", "c-X", "blue", "bluf", "eth0", "eth9", "vda", "vdz")
	f.Add("a", "a\xff", "", "x", "lo", "lo", "", "sda")
	f.Add("same", "same", "v", "v", "eth\x80", "eth\x81", "vda", "vda")
	f.Fuzz(func(t *testing.T, name1, name2, team1, team2, if1, if2, dev1, dev2 string) {
		snap := func(name, team, iface, dev string) *sink.Snapshot {
			return sinktest.LabelledSnapshot(name, team, iface, dev, t0)
		}
		tags := sink.DefaultTags()
		tags.Labels = []sink.LabelTag{{Label: "team"}}
		mk := func() *encoder {
			return newEncoder(sink.MustTagger(tags), nil, false, nil, map[string]string{"job": "j"})
		}
		e := mk()
		buf, ends := e.appendSnapshot(nil, nil, snap(name1, team1, if1, dev1))
		second := snap(name2, team2, if2, dev2)
		buf, _ = e.appendSnapshot(buf[:0], ends[:0], second)
		fresh, _ := mk().appendSnapshot(nil, nil, second)
		if !bytes.Equal(buf, fresh) {
			t.Fatalf("after a snapshot with other labels: %s", firstDifference(t, buf, fresh))
		}
	})
}
