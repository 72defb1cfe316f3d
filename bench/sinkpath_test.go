package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// BenchmarkSinkPathFlush is BenchmarkSinkPath's remote_write path as the
// daemon runs it at a 1 s interval with the sink's default 5 s flush:
// five snapshots a second apart written, then one flush (the sink merges
// each series' five samples into one TimeSeries). ns/snapshot is the
// figure to set beside BenchmarkSinkPath/remotewrite's ns/op.
func BenchmarkSinkPathFlush(b *testing.B) {
	ctx := context.Background()
	for _, batch := range []int{2000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			s, err := remotewrite.New(srv.URL, remotewrite.WithBatchSize(batch), remotewrite.WithTags(sink.DefaultTags()), remotewrite.WithFlushInterval(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(ctx)
			snaps := make([]*sink.Snapshot, 5)
			for i := range snaps {
				snaps[i] = sinktest.FullSnapshot(33, 2, benchT.Add(time.Duration(i)*time.Second))
				for j := range snaps[i].Containers {
					snaps[i].Containers[j].Net.Parts = netns.TierCheap
				}
			}
			k := 0
			for b.Loop() {
				for _, snap := range snaps {
					snap.Time = benchT.Add(time.Duration(k) * time.Second)
					k++
					if err := s.Write(ctx, snap); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(5*b.N), "ns/snapshot")
		})
	}
}
