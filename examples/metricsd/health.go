package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/metricsd/metricsd/sink"
)

// readiness is what /readyz reports: the daemon is ready once a snapshot
// has been taken and written to every sink, and stays ready while
// snapshots keep coming (the last one at most two intervals and the write
// timeout old), the last one's writes all succeeded, and every sink that
// delivers in the background (sink.DeliveryReporter) reports its last
// delivery delivered.
//
// It is itself a sink, given to the collector after the real ones: the
// collector writes to its sinks in order, so when its Write runs the
// snapshot has been handed to all the others and the collector's count of
// sink errors (sinkErrors) already includes any of theirs.
type readiness struct {
	maxAge     time.Duration
	sinks      []sink.Sink
	names      []string
	sinkErrors func() uint64 // the collector's sink error count
	now        func() time.Time

	mu        sync.Mutex
	last      time.Time // when the last snapshot reached this sink
	errsAt    uint64    // sinkErrors at the snapshot before it
	failed    uint64    // sink errors the last snapshot's writes added
	snapshots uint64
}

func newReadiness(interval time.Duration, sinks []sink.Sink, names []string) *readiness {
	return &readiness{maxAge: 2*interval + writeTimeout, sinks: sinks, names: names, now: time.Now}
}

// writeTimeout is the collector's bound on each sink write (the default of
// metricsd.WithTimeout, which the daemon does not change).
const writeTimeout = 5 * time.Second

func (r *readiness) Write(ctx context.Context, s *sink.Snapshot) error {
	var n uint64
	if r.sinkErrors != nil {
		n = r.sinkErrors()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = r.now()
	r.failed = n - r.errsAt
	r.errsAt = n
	r.snapshots++
	return nil
}

func (r *readiness) Close(ctx context.Context) error { return nil }

// ready returns nil when the daemon is ready, else why it is not.
func (r *readiness) ready() error {
	r.mu.Lock()
	last, failed, n := r.last, r.failed, r.snapshots
	r.mu.Unlock()
	switch {
	case n == 0:
		return fmt.Errorf("no snapshot taken yet")
	case r.now().Sub(last) > r.maxAge:
		return fmt.Errorf("the last snapshot is %v old (at most %v expected)", r.now().Sub(last).Round(time.Millisecond), r.maxAge)
	case failed > 0:
		return fmt.Errorf("%d sink write(s) of the last snapshot failed (see the log)", failed)
	}
	for i, s := range r.sinks {
		if d, ok := s.(sink.DeliveryReporter); ok {
			if err := d.DeliveryError(); err != nil {
				return fmt.Errorf("-sink %s is not delivering: %v", r.names[i], err)
			}
		}
	}
	return nil
}

// healthHandlers registers /healthz (the process runs and serves HTTP) and
// /readyz (r.ready) on mux. Both answer 200 with "ok", or /readyz 503 with
// the reason, as plain text.
func healthHandlers(mux *http.ServeMux, r *readiness) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := r.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}
