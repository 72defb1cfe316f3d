package otlp

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

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
	mk := func(opts ...Option) func() *encoder {
		return func() *encoder {
			_, e, errs := configure(opts)
			if len(errs) > 0 {
				panic(fmt.Sprint(errs))
			}
			e.selfFrom = uint64(t0.Add(-time.Hour).UnixNano()) // not the clock
			return e
		}
	}
	res := WithResourceAttributes(map[string]string{"host.name": "node-1", "deployment.environment": "prod"})
	labelTags := sink.DefaultTags()
	labelTags.Labels = []sink.LabelTag{{Label: "team"}, {Label: "env", Tag: "environment"}, {Label: "com.example.team"}}
	labelTags.RuntimeNamespace = true
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
	changing := func() []*sink.Snapshot { return sinktest.ChangingSnapshots(t0) }
	return []goldenCase{
		{"default", mk(res), mixed},
		{"info-version", mk(res, WithScopeVersion("v1.2.3"), WithTags(sink.Tags{ID: true, Name: true, Image: true, Runtime: true, Pod: true, Info: true})), mixed},
		{"changing", mk(res, WithTags(labelTags)), changing},
		{"changing-limits", mk(WithTags(labelTags), WithLimits(sink.Limits{MaxValueLen: 5, MaxInterfaces: 2}),
			WithInterfaceFilter(func(name string) bool { return name != "eth1" })), changing},
	}
}

// encodeCases encodes every case, each snapshot after the ones before it
// with one encoder (what Sink.Write does), into name -> request.
func encodeCases(t *testing.T) (names []string, reqs map[string][]byte) {
	reqs = map[string][]byte{}
	for _, c := range goldenCases() {
		e := c.enc()
		var buf []byte
		var ends, pts []int
		for i, snap := range c.snaps() {
			buf, ends, pts = e.appendSnapshot(buf[:0], ends[:0], pts[:0], snap)
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
// the first field that differs.
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

// firstDifference decodes two requests field by field (protowire, every
// length-delimited field that parses as a message taken as one) and
// describes the first field that differs.
func firstDifference(t *testing.T, got, want []byte) string {
	g, w := dumpProto("", got), dumpProto("", want)
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("field %d: %s, golden %s", i, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d fields, golden %d", len(g), len(w))
}

// dumpProto lists b's fields as path=value lines.
func dumpProto(path string, b []byte) []string {
	var out []string
	for i := 0; len(b) > 0; i++ {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return append(out, path+": bad tag")
		}
		b = b[n:]
		p := fmt.Sprintf("%s/%d[%d]", path, num, i)
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return append(out, p+": bad value")
		}
		v := b[:n]
		b = b[n:]
		if typ == protowire.BytesType {
			inner, _ := protowire.ConsumeBytes(v)
			if sub := dumpProto(p, inner); len(inner) > 0 && !strings.HasSuffix(sub[len(sub)-1], ": bad tag") && !strings.HasSuffix(sub[len(sub)-1], ": bad value") {
				out = append(out, sub...)
				continue
			}
			out = append(out, fmt.Sprintf("%s=%q", p, inner))
			continue
		}
		out = append(out, fmt.Sprintf("%s=%x", p, v))
	}
	return out
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
			var ends, pts []int
			for i, snap := range c.snaps() {
				before := e.z.Sanitized()
				buf, ends, pts = e.appendSnapshot(buf[:0], ends[:0], pts[:0], snap)
				after := e.z.Sanitized()
				f := c.enc()
				fresh, _, _ := f.appendSnapshot(nil, nil, nil, snap)
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
			_, e, errs := configure([]Option{WithTags(tags)})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			e.selfFrom = 1
			return e
		}
		e := mk()
		buf, ends, pts := e.appendSnapshot(nil, nil, nil, snap(name1, team1, if1, dev1))
		second := snap(name2, team2, if2, dev2)
		buf, _, _ = e.appendSnapshot(buf[:0], ends[:0], pts[:0], second)
		fresh, _, _ := mk().appendSnapshot(nil, nil, nil, second)
		if !bytes.Equal(buf, fresh) {
			t.Fatalf("after a snapshot with other labels: %s", firstDifference(t, buf, fresh))
		}
	})
}
