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
	points.NewWalker(sink.MustTagger(sink.DefaultTags())).Walk(sinktest.FullSnapshot(2, 3, t0), k)
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
	points.NewWalker(sink.MustTagger(sink.DefaultTags())).Walk(snap, k)
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

// TestEncoderSkipsBadPoints: a tag value line protocol can not carry (a
// newline) leaves out the points that need it (every point of a container
// for a container tag, one point for an interface name) and the rest is
// encoded, decodable line by line.
func TestEncoderSkipsBadPoints(t *testing.T) {
	snap := sinktest.FullSnapshot(3, 2, t0)
	snap.Containers[0].Container.Image = "bad\nimage"
	snap.Containers[1].Net.Interfaces[1].Name = "eth\x000"
	enc := points.NewEncoder(sink.MustTagger(sink.DefaultTags()), lineprotocol.Second)
	good := sinktest.FullSnapshot(1, 2, t0)
	_, perContainer, _, err := enc.Append(nil, nil, good)
	if err != nil {
		t.Fatal(err)
	}
	b, ends, skipped, err := enc.Append([]byte("keep\n"), []int{5}, snap)
	if err == nil || !strings.Contains(err.Error(), "invalid tag value") {
		t.Fatalf("err = %v", err)
	}
	if skipped != len(perContainer)+1 {
		t.Errorf("skipped %d, want %d (container 0's points and one interface)", skipped, len(perContainer)+1)
	}
	if want := 1 + 2*len(perContainer) - 1; len(ends) != want {
		t.Fatalf("%d lines, want %d", len(ends), want)
	}
	if !strings.HasPrefix(string(b), "keep\n") {
		t.Fatal("Append did not append")
	}
	dec := lineprotocol.NewDecoderWithBytes(b[5:])
	n := 0
	for dec.Next() {
		if _, err := dec.Measurement(); err != nil {
			t.Fatal(err)
		}
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatal(err)
			}
			if k == nil {
				break
			}
			if string(k) == "name" && string(v) == "c-0" {
				t.Error("a point of container 0 was written")
			}
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
		n++
	}
	if n != len(ends)-1 {
		t.Errorf("decoded %d lines, want %d", n, len(ends)-1)
	}
}

// TestSelfPoint: a snapshot's Self becomes one "metricsd" point with no
// container tags, decodable as line protocol.
func TestSelfPoint(t *testing.T) {
	snap := sinktest.FullSnapshot(1, 1, t0)
	snap.Self = &sink.Self{ScrapeSeconds: 0.025, Containers: 1, Namespaces: 1, SinkDropped: 7, SinkWriteSeconds: 0.5,
		Errors: []sink.StageErrors{{Stage: "discover"}, {Stage: "open", Count: 2}, {Stage: "cgroup"}, {Stage: "net"}, {Stage: "sink", Count: 3}}}
	enc := points.NewEncoder(sink.MustTagger(sink.DefaultTags()), lineprotocol.Nanosecond)
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
	want := "metricsd scrape_seconds=0.025,containers=1i,namespaces=1i,errors_discover=0i,errors_open=2i,errors_cgroup=0i,errors_net=0i,errors_sink=3i,sink_dropped=7i,sink_write_seconds=0.5 "
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
	points.NewWalker(sink.MustTagger(sink.DefaultTags())).Walk(snap, f)
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
