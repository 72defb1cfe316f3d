package points_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/points"
)

var t0 = time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC)

// keys records every measurement and field key.
type keys struct {
	names map[string]bool
	cur   string
}

func (k *keys) Container([]sink.Tag)        {}
func (k *keys) Begin(m string, _ sink.Tag)  { k.cur = m; k.names[m] = true }
func (k *keys) Int(key string, _ int64)     { k.names[k.cur+"."+key] = true }
func (k *keys) Float(key string, v float64) { k.names[k.cur+"."+key] = true }
func (k *keys) End(time.Time)               {}

// TestSchemaNamesNeedNoEscaping: the encoders copy measurement names and
// field keys as they are, which is right only if they are [a-z0-9_]: no
// line protocol or JSON escaping needed.
func TestSchemaNamesNeedNoEscaping(t *testing.T) {
	k := &keys{names: map[string]bool{}}
	points.NewWalker(sink.MustTagger(sink.DefaultTags()), nil).Walk(sinktest.FullSnapshot(2, 3, t0), k)
	ok := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	n := 0
	for name := range k.names {
		for _, part := range strings.Split(name, ".") {
			if !ok.MatchString(part) {
				t.Errorf("%q needs escaping", part)
			}
		}
		n++
	}
	if n < 140 {
		t.Errorf("only %d names: the full snapshot should give every measurement and field", n)
	}
}

// TestHostWideSocketsLeftOut: sockstat's host-wide figures (netns
// Sockets.Host: TCP orphan, alloc, mem, UDP mem) read the same in every
// container, so they are no container's series; the namespace's own ones
// are.
func TestHostWideSocketsLeftOut(t *testing.T) {
	snap := sinktest.FullSnapshot(1, 1, t0)
	if h := snap.Containers[0].Net.Sockets.Host; !h.TCPAlloc.Available() || !h.UDPMem.Available() {
		t.Fatal("the full snapshot has no host-wide socket figures")
	}
	k := &keys{names: map[string]bool{}}
	points.NewWalker(sink.MustTagger(sink.DefaultTags()), nil).Walk(snap, k)
	for _, f := range []string{"tcp_orphan", "tcp_alloc", "tcp_mem_pages", "udp_mem_pages"} {
		if k.names["container_sockets."+f] {
			t.Errorf("container_sockets.%s written per container", f)
		}
	}
	for _, f := range []string{"used", "tcp_inuse", "tcp_tw", "udp_inuse", "frag_memory"} {
		if !k.names["container_sockets."+f] {
			t.Errorf("container_sockets.%s missing", f)
		}
	}
}

// decodeAll decodes line protocol line by line with the reference decoder
// and returns, per line, its measurement and tags.
func decodeAll(t *testing.T, b []byte) []map[string]string {
	t.Helper()
	var out []map[string]string
	dec := lineprotocol.NewDecoderWithBytes(b)
	for dec.Next() {
		m, err := dec.Measurement()
		if err != nil {
			t.Fatal(err)
		}
		tags := map[string]string{"": string(m)}
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatal(err)
			}
			if k == nil {
				break
			}
			tags[string(k)] = string(v)
		}
		for {
			k, _, err := dec.NextField()
			if err != nil {
				t.Fatal(err)
			}
			if k == nil {
				break
			}
		}
		if ts, err := dec.Time(lineprotocol.Second, time.Time{}); err != nil || !ts.Equal(t0) {
			t.Fatalf("time %v %v", ts, err)
		}
		out = append(out, tags)
	}
	return out
}

// TestEncoderSanitizesTagValues: tag values line protocol can not carry (a
// newline, a NUL, invalid UTF-8, a trailing backslash: they made the
// line-protocol encoder leave out every point of a container, or of an
// interface) are replaced with U+FFFD and every point is written, decodable
// line by line; what changed is counted. Two interfaces whose names become
// the same are written once, the second counted as left out.
func TestEncoderSanitizesTagValues(t *testing.T) {
	snap := sinktest.FullSnapshot(3, 4, t0)
	snap.Containers[0].Container.Image = "bad\nimage"
	snap.Containers[0].Container.Name = "trailing\\"
	ifs := snap.Containers[1].Net.Interfaces
	ifs[1].Name, ifs[2].Name, ifs[3].Name = "eth\x000", "u\xff\xfe", "u\xfe"
	snap.Containers[2].Net.Interfaces[1].Name = "x\\"
	enc := points.NewEncoder(sink.MustTagger(sink.DefaultTags()), lineprotocol.Second, nil)
	_, perContainer, _, err := enc.Append(nil, nil, sinktest.FullSnapshot(1, 4, t0))
	if err != nil {
		t.Fatal(err)
	}
	b, ends, skipped, err := enc.Append([]byte("keep\n"), []int{5}, snap)
	if err != nil || skipped != 0 {
		t.Fatalf("skipped %d: %v", skipped, err)
	}
	if want := 1 + 3*len(perContainer) - 1; len(ends) != want {
		t.Fatalf("%d lines, want %d (every point but the duplicate interface's)", len(ends), want)
	}
	if !strings.HasPrefix(string(b), "keep\n") {
		t.Fatal("Append did not append")
	}
	lines := decodeAll(t, b[5:])
	if len(lines) != len(ends)-1 {
		t.Fatalf("decoded %d lines, want %d", len(lines), len(ends)-1)
	}
	seen := map[string]int{}
	for _, l := range lines {
		switch {
		case l["name"] == "c-0":
			t.Errorf("container 0 under its old name: %v", l)
		case l["name"] == "trailing\uFFFD" && l["image"] == "bad\uFFFDimage":
			seen["c-0"]++
		}
		if i, ok := l["interface"]; ok {
			seen[l["name"]+" "+i]++
		}
	}
	for _, k := range []string{"c-1 eth\uFFFD0", "c-1 u\uFFFD", "c-2 x\uFFFD"} {
		if seen[k] != 1 {
			t.Errorf("%q written %d times, want once (seen %v)", k, seen[k], seen)
		}
	}
	if seen["c-0"] != len(perContainer) {
		t.Errorf("container 0: %d points under its sanitised name and image, want %d", seen["c-0"], len(perContainer))
	}
	// Two snapshots were encoded; the second changed the name and image
	// of c-0, three of c-1's interfaces (the last then left out) and c-2's.
	if got, want := enc.Sanitized(), (sink.Sanitized{Replaced: 6, Interfaces: 1}); got != want {
		t.Errorf("Sanitized = %+v, want %+v", got, want)
	}
}

// TestEncoderBoundsValuesAndInterfaces: a 64 KiB label value is cut to
// MaxValueLen and a namespace's interfaces past MaxInterfaces are left out,
// both counted; Limits with no bound keep them.
func TestEncoderBoundsValuesAndInterfaces(t *testing.T) {
	snap := sinktest.FullSnapshot(1, 10, t0)
	snap.Containers[0].Container.Image = strings.Repeat("i", 64<<10)
	count := func(z *sink.Sanitizer) (ifaces, longest int) {
		enc := points.NewEncoder(sink.MustTagger(sink.DefaultTags()), lineprotocol.Second, z)
		b, _, _, err := enc.Append(nil, nil, snap)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range decodeAll(t, b) {
			if l[""] == "container_net" {
				ifaces++
			}
			longest = max(longest, len(l["image"]))
		}
		return ifaces, longest
	}
	z := sink.NewLineProtocolSanitizer(sink.Limits{MaxValueLen: 100, MaxInterfaces: 3})
	if n, l := count(z); n != 3 || l != 100 {
		t.Errorf("bounded: %d interfaces, image %d bytes; want 3 and 100", n, l)
	}
	if got, want := z.Sanitized(), (sink.Sanitized{Truncated: 1, Interfaces: 7}); got != want {
		t.Errorf("Sanitized = %+v, want %+v", got, want)
	}
	z = sink.NewLineProtocolSanitizer(sink.Limits{MaxValueLen: -1, MaxInterfaces: -1})
	if n, l := count(z); n != 10 || l != 64<<10 {
		t.Errorf("unbounded: %d interfaces, image %d bytes; want 10 and 65536", n, l)
	}
	if n, l := count(nil); n != 10 || l != sink.DefaultMaxValueLen {
		t.Errorf("defaults: %d interfaces, image %d bytes; want 10 and %d", n, l, sink.DefaultMaxValueLen)
	}
}

// TestSelfPoint: a snapshot's Self becomes one "metricsd" point with no
// container tags, decodable as line protocol.
func TestSelfPoint(t *testing.T) {
	snap := sinktest.FullSnapshot(1, 1, t0)
	snap.Self = &sink.Self{ScrapeSeconds: 0.025, Containers: 1, Namespaces: 1, SinkDropped: 7, SinkWriteSeconds: 0.5,
		Sanitized: sink.Sanitized{Replaced: 4, Truncated: 5, Interfaces: 6},
		Errors:    []sink.StageErrors{{Stage: "discover"}, {Stage: "open", Count: 2}, {Stage: "cgroup"}, {Stage: "net"}, {Stage: "sink", Count: 3}}}
	enc := points.NewEncoder(sink.MustTagger(sink.DefaultTags()), lineprotocol.Nanosecond, nil)
	var b []byte
	var ends []int
	b, _, _, err := enc.Append(b, ends, snap)
	if err != nil {
		t.Fatal(err)
	}
	var self string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "metricsd ") {
			self = l
		}
	}
	want := "metricsd scrape_seconds=0.025,containers=1i,namespaces=1i,errors_discover=0i,errors_open=2i,errors_cgroup=0i,errors_net=0i,errors_sink=3i,sink_dropped=7i,sink_write_seconds=0.5,sink_values_replaced=4i,sink_values_truncated=5i,sink_interfaces_left_out=6i "
	if !strings.HasPrefix(self, want) {
		t.Errorf("self point\n got %q\nwant %q...", self, want)
	}
	dec := lineprotocol.NewDecoderWithBytes([]byte(self + "\n"))
	for dec.Next() {
		if m, err := dec.Measurement(); err != nil || string(m) != "metricsd" {
			t.Errorf("decoded %q, %v", m, err)
		}
	}
}

// fields records each point's field keys, by "measurement,own tag value".
type fields struct {
	cur    string
	points map[string]map[string]bool
}

func (f *fields) Container([]sink.Tag) {}
func (f *fields) Begin(m string, extra sink.Tag) {
	f.cur = m + "," + extra.Value
	f.points[f.cur] = map[string]bool{}
}
func (f *fields) Int(key string, _ int64)     { f.points[f.cur][key] = true }
func (f *fields) Float(key string, _ float64) { f.points[f.cur][key] = true }
func (f *fields) End(time.Time)               {}

// TestUnavailableCountersLeftOut: a block I/O or net/dev counter the
// kernel did not print (Unavailable) is left out of its point, never
// written as 0; the point's other fields, zeros included, stay.
func TestUnavailableCountersLeftOut(t *testing.T) {
	snap := sinktest.FullSnapshot(1, 2, t0)
	dev := &snap.Containers[0].Cgroup.IO.Devices[0]
	dev.WriteOps = sinktest.K(0)
	dev.DiscardOps = cgroup.Value{V: 9} // Unavailable: V means nothing
	eth := &snap.Containers[0].Net.Interfaces[1]
	eth.TxCarrier = sinktest.N(0)
	eth.RxFIFO = netns.Value{}
	f := &fields{points: map[string]map[string]bool{}}
	points.NewWalker(sink.MustTagger(sink.DefaultTags()), nil).Walk(snap, f)
	blk, net := f.points["container_blkio,vda"], f.points["container_net,eth0"]
	if blk == nil || net == nil {
		t.Fatalf("points missing: %v", f.points)
	}
	if blk["discard_ops"] || !blk["write_ops"] || !blk["discard_bytes"] || !blk["read_bytes"] {
		t.Errorf("blkio fields %v: want discard_ops left out, write_ops (0), discard_bytes and read_bytes in", blk)
	}
	if net["rx_fifo"] || !net["tx_carrier"] || !net["rx_bytes"] {
		t.Errorf("net fields %v: want rx_fifo left out, tx_carrier (0) and rx_bytes in", net)
	}
}
