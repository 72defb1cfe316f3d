package netns

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// withSkipRestore injects the one fault the test cannot cause for real: a
// setns back home that does not happen. The hop then really stays in the
// target namespace, and the pool's own check (fstat of
// /proc/thread-self/ns/net) has to catch it.
func withSkipRestore(f func() bool) Option { return func(c *config) { c.skipRestore = f } }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestFailedRestoreDisposesThread(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	ns := newNS(t)
	want := pathID(t, nsPath(ns))

	var fault atomic.Bool
	var tid atomic.Int64
	fault.Store(true)
	var logs lockedBuffer
	p := newTestPool(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), withSkipRestore(func() bool {
		if fault.CompareAndSwap(true, false) {
			tid.Store(int64(unix.Gettid()))
			return true
		}
		return false
	}))
	fds0 := countFDs(t)

	h, err := p.Open(ctx, TargetPath(nsPath(ns)), TierAll)
	if !errors.Is(err, ErrRestore) || h != nil {
		t.Fatalf("Open with a failed restore: %v, %v; want ErrRestore", h, err)
	}
	task := "/proc/self/task/" + strconv.FormatInt(tid.Load(), 10)
	if tid.Load() == 0 {
		t.Fatal("the fault hook never ran")
	}
	// The thread left in the target namespace is terminated by Go...
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(task); return os.IsNotExist(err) }) {
		t.Fatalf("hop thread %s still alive after a failed restore", task)
	}
	// ...a replacement takes its place...
	if !waitFor(10*time.Second, func() bool { return p.alive.Load() == 1 }) {
		t.Fatalf("%d hop threads alive, want 1", p.alive.Load())
	}
	// ...and no thread of this process is left in the target namespace.
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if id, err := statID(tk); err == nil && id == want {
			t.Fatalf("%s is in the target namespace", tk)
		}
	}
	// The job's descriptors were closed (the replacement holds one home
	// descriptor, as its predecessor did).
	if got := countFDs(t); got != fds0 {
		t.Errorf("%d descriptors after the failed hop, %d before", got, fds0)
	}
	if !bytes.Contains([]byte(logs.String()), []byte("disposing")) {
		t.Errorf("no log of the disposed thread: %q", logs.String())
	}

	// The pool recovered: the next hop works and reads the right namespace.
	h, err = p.Open(ctx, TargetPath(nsPath(ns)), TierCheap)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var s Stats
	if err := h.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if h.ID() != want || len(s.Interfaces) != 1 || s.Interfaces[0].Name != "lo" {
		t.Fatalf("after recovery: ID %v interfaces %+v", h.ID(), s.Interfaces)
	}
}
