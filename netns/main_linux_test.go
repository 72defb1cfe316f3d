package netns

import (
	"context"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary keeps its main goroutine on the main thread (a
// LockOSThread in init does that) and serves onMainThread with it, so a test
// can run code on the process's main thread on purpose.
func init() { runtime.LockOSThread() }

var mainThread = make(chan func())

// onMainThread runs f on the process's main thread and waits for it.
func onMainThread(f func()) {
	done := make(chan struct{})
	mainThread <- func() { defer close(done); f() }
	<-done
}

func TestMain(m *testing.M) {
	code := make(chan int)
	go func() { code <- m.Run() }()
	for {
		select {
		case f := <-mainThread:
			f()
		case c := <-code:
			os.Exit(c)
		}
	}
}

// A hop worker that starts on the main thread hands over to a successor on
// another thread: Go would park the main thread for good instead of ending
// it after a failed restore, and /proc/self would follow it.
func TestWorkerLeavesMainThread(t *testing.T) {
	var hopTID atomic.Int64
	p := newTestPool(t, withSkipRestore(func() bool {
		hopTID.Store(int64(unix.Gettid()))
		return false
	}))
	ready := make(chan error, 1)
	var ranOnMain bool
	onMainThread(func() {
		ranOnMain = unix.Gettid() == unix.Getpid()
		p.wg.Add(1)
		p.worker(ready, nil, -1) // returns once its successor is locked elsewhere
	})
	if !ranOnMain {
		t.Fatal("onMainThread did not run on the main thread")
	}
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return p.alive.Load() == 2 }) {
		t.Fatalf("%d workers alive, want 2", p.alive.Load())
	}
	// Hop until the new worker has served a job (they take jobs in turn);
	// no hop ever runs on the main thread.
	requireRoot(t)
	ns := TargetPath(nsPath(newNS(t)))
	seen := map[int64]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		h, err := p.Open(context.Background(), ns, TierCheap)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		if tid := hopTID.Load(); tid != 0 {
			if tid == int64(unix.Getpid()) {
				t.Fatal("a hop ran on the main thread")
			}
			seen[tid] = true
		}
	}
	if len(seen) < 2 {
		t.Fatalf("hops ran on %d threads, want both workers'", len(seen))
	}
}
