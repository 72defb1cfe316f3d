package bench

import (
	"bytes"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink/remotewrite"
)

// The remote_write body's block compression, for the daemon's cost
// (issue 13): one snapshot of 33 containers (the cost testbed's count,
// two interfaces, the cheap network tier) as one WriteRequest, compressed
// into a reused buffer by github.com/golang/snappy (what sink/remotewrite
// uses) and by klauspost/compress/s2's snappy-compatible encoders:
//
//	cd bench && go test -run RemoteWriteSnappy -bench RemoteWriteSnappy -benchmem -count 5
//
// Every output must decode, with golang/snappy, to the request.
func BenchmarkRemoteWriteSnappy(b *testing.B) {
	body := remoteWriteBody(b)
	b.Logf("%d bytes of WriteRequest", len(body))
	for _, c := range snappyEncoders {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]byte, snappy.MaxEncodedLen(len(body)))
			out := c.enc(dst, body)
			b.ReportMetric(float64(len(out)), "out-bytes")
			b.SetBytes(int64(len(body)))
			cpu := startCPU()
			for b.Loop() {
				out = c.enc(dst, body)
			}
			cpu.report(b, 0, len(out))
		})
	}
}

// TestRemoteWriteSnappy: each encoder's output is a standard snappy block
// that golang/snappy decodes to the request.
func TestRemoteWriteSnappy(t *testing.T) {
	body := remoteWriteBody(t)
	for _, c := range snappyEncoders {
		out := c.enc(make([]byte, snappy.MaxEncodedLen(len(body))), body)
		got, err := snappy.Decode(nil, out)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: does not decode to the request (%v)", c.name, err)
		}
		t.Logf("%s: %d bytes to %d", c.name, len(body), len(out))
	}
}

var snappyEncoders = []struct {
	name string
	enc  func(dst, src []byte) []byte
}{
	{"golang-snappy", snappy.Encode},
	{"s2-EncodeSnappy", s2.EncodeSnappy},
	{"s2-EncodeSnappyBetter", s2.EncodeSnappyBetter},
}

func remoteWriteBody(tb testing.TB) []byte {
	snap := sinktest.FullSnapshot(33, 2, benchT)
	for i := range snap.Containers {
		snap.Containers[i].Net.Parts = netns.TierCheap
	}
	enc, err := remotewrite.NewEncoder(remotewrite.WithExternalLabels(map[string]string{"host": "node-1"}))
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := enc.Append(nil, snap)
	return body
}
