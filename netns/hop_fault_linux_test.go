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

// withStartFault fails the start of replacement hop threads with f's error.
func withStartFault(f func() error) Option { return func(c *config) { c.startFault = f } }

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
	if !waitFor(5*time.Second, func() bool { return bytes.Contains([]byte(logs.String()), []byte("disposing")) }) {
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

// A process out of file descriptors (RLIMIT_NOFILE reached, EMFILE) still
// gets its hop thread back after one was disposed of: the replacement takes
// over its predecessor's home-namespace descriptor instead of opening one.
// The EMFILE is real: the test lowers the process's descriptor limit below
// the descriptors already open, from inside the failing hop, and raises it
// again once the pool has settled.
func TestReplacementWithoutDescriptors(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	ns := TargetPath(nsPath(newNS(t)))
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var fault, lowered atomic.Bool
	fault.Store(true)
	restore := func() {
		if lowered.CompareAndSwap(true, false) {
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	var logs lockedBuffer
	p := newTestPool(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), withSkipRestore(func() bool {
		if !fault.CompareAndSwap(true, false) {
			return false
		}
		low := lim
		low.Cur = 3 // stdin, stdout and stderr are open: every open fails
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err == nil {
			lowered.Store(true)
		}
		return true
	}))
	if _, err := p.Open(ctx, ns, TierCheap); !errors.Is(err, ErrRestore) {
		t.Fatalf("Open with a failed restore: %v; want ErrRestore", err)
	}
	if !lowered.Load() {
		t.Fatal("could not lower RLIMIT_NOFILE")
	}
	if _, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != unix.EMFILE {
		restore()
		t.Fatalf("open with the limit lowered: %v, want EMFILE", err)
	}
	replaced := waitFor(5*time.Second, func() bool { return p.alive.Load() == 1 })
	restore()
	if !replaced {
		t.Fatalf("%d hop threads after a disposal with no descriptor to spare, want 1; log: %s", p.alive.Load(), logs.String())
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := p.Open(octx, ns, TierCheap)
	if err != nil {
		t.Fatalf("Open after the replacement: %v", err)
	}
	h.Close()
}

// A pool whose last hop thread is gone for good (disposed of, and its
// replacement failed to start) fails OpenAll with ErrPoolClosed, both a
// call already waiting for a thread and later ones, instead of blocking
// forever. The replacement's failure is injected: with the descriptor
// handed over (TestReplacementWithoutDescriptors) no failure is left that a
// test can cause for real.
func TestOpenAllNoThreadLeft(t *testing.T) {
	requireRoot(t)
	ns := TargetPath(nsPath(newNS(t)))
	inHop, goOn := make(chan struct{}), make(chan struct{})
	var fault atomic.Bool
	fault.Store(true)
	p := newTestPool(t, withStartFault(func() error { return unix.EMFILE }), withSkipRestore(func() bool {
		if !fault.CompareAndSwap(true, false) {
			return false
		}
		close(inHop)
		<-goOn
		return true
	}))
	first := make(chan error, 1)
	go func() { _, err := p.Open(context.Background(), ns, TierCheap); first <- err }()
	<-inHop
	// The only thread is busy: this one waits for it.
	waiting := make(chan error, 1)
	go func() { _, err := p.Open(context.Background(), ns, TierCheap); waiting <- err }()
	time.Sleep(50 * time.Millisecond) // let it reach the wait (ErrPoolClosed either way)
	close(goOn)
	for _, c := range []struct {
		name string
		err  <-chan error
		want error
	}{{"the failed hop", first, ErrRestore}, {"a waiting Open", waiting, ErrPoolClosed}} {
		select {
		case err := <-c.err:
			if !errors.Is(err, c.want) {
				t.Fatalf("%s: %v, want %v", c.name, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still blocked 10 s after the pool lost its last thread", c.name)
		}
	}
	later := make(chan error, 1)
	go func() { _, err := p.OpenAll(context.Background(), []Target{ns}, TierCheap); later <- err }()
	select {
	case err := <-later:
		if !errors.Is(err, ErrPoolClosed) {
			t.Fatalf("OpenAll on a pool with no thread: %v, want ErrPoolClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OpenAll on a pool with no thread blocked")
	}
	if p.alive.Load() != 0 {
		t.Fatalf("%d threads alive", p.alive.Load())
	}
}

// nsHandler is a slog handler that records, for each record, the network
// namespace of the thread it runs on: a handler that dials out or opens a
// file does so from there.
type nsHandler struct {
	mu  sync.Mutex
	got map[string]ID // message -> namespace
}

func (h *nsHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *nsHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *nsHandler) WithGroup(string) slog.Handler            { return h }
func (h *nsHandler) Handle(_ context.Context, r slog.Record) error {
	id, err := statID(threadNetNS)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got[r.Message] = id
	return nil
}

func (h *nsHandler) of(msg string) (ID, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.got[msg]
	return id, ok
}

// The pool logs a hop thread it disposes of (and a replacement that fails
// to start) from a thread in its home namespace, never from the thread left
// in the container's.
func TestDisposalLogsFromHome(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	target := pathID(t, nsPath(ns))
	var fault atomic.Bool
	fault.Store(true)
	logs := &nsHandler{got: map[string]ID{}}
	p := newTestPool(t, WithLogger(slog.New(logs)), withStartFault(func() error { return errors.New("injected") }),
		withSkipRestore(func() bool { return fault.CompareAndSwap(true, false) }))
	if _, err := p.Open(context.Background(), TargetPath(nsPath(ns)), TierCheap); !errors.Is(err, ErrRestore) {
		t.Fatalf("Open with a failed restore: %v; want ErrRestore", err)
	}
	for _, msg := range []string{"netns: hop thread could not return home; disposing of it", "netns: replacement hop thread failed to start"} {
		var id ID
		var ok bool
		if !waitFor(5*time.Second, func() bool { id, ok = logs.of(msg); return ok }) {
			t.Fatalf("%q not logged", msg)
		}
		if id != p.Home() {
			where := "elsewhere"
			if id == target {
				where = "the target namespace"
			}
			t.Errorf("%q logged from %v (%s), want the home namespace %v", msg, id, where, p.Home())
		}
	}
}
