package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/remotewrite"
	"github.com/metricsd/metricsd/sink/stdout"
)

// The daemon's sink path for the cost testbed's snapshot (33 containers,
// two interfaces, the cheap network tier; issue 13): sink/stdout's line
// protocol to io.Discard, and sink/remotewrite's Write then Flush
// (encoding, the buffer, snappy and the HTTP requests, in batches of the
// daemon's 2,000 samples) to a receiver in this process that reads each
// body and answers 204, whose share a CPU profile separates:
//
//	cd bench && go test -run '^$' -bench SinkPath -benchmem -count 5 [-cpuprofile cpu.out]
func BenchmarkSinkPath(b *testing.B) {
	snap := sinktest.FullSnapshot(33, 2, benchT)
	for i := range snap.Containers {
		snap.Containers[i].Net.Parts = netns.TierCheap
	}
	ctx := context.Background()
	b.Run("stdout", func(b *testing.B) {
		s, err := stdout.New(io.Discard, stdout.WithFormat(stdout.LineProtocol))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.Write(ctx, snap); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remotewrite", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		s, err := remotewrite.New(srv.URL, remotewrite.WithBatchSize(2000), remotewrite.WithTags(sink.DefaultTags()))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close(ctx)
		for b.Loop() {
			if err := s.Write(ctx, snap); err != nil {
				b.Fatal(err)
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		st := s.Stats()
		b.ReportMetric(float64(st.Sent)/float64(b.N), "samples/op")
	})
}
