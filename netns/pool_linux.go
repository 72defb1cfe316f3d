package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"

	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/proc"
)

// Pool is a small set of goroutines, each locked to its own OS thread for
// life, that hop into network namespaces to open the descriptors a Handle
// reads. It is safe for concurrent use.
type Pool struct {
	cfg       config
	home      ID
	jobs      chan *job
	quit      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	alive     atomic.Int32
	bufs      sync.Pool // *[]byte read buffers lent to Handle.Stat

	// threads counts the hop threads running or starting. When the last
	// one is gone for good (disposed of and its replacement failed), none
	// is closed and OpenAll fails with ErrPoolClosed.
	threads  atomic.Int32
	none     chan struct{}
	noneOnce sync.Once
}

const (
	jobPending int32 = iota
	jobRunning
	jobAbandoned
)

type job struct {
	state   atomic.Int32
	targets []Target
	parts   Parts
	handles []*Handle
	errs    []error
	done    chan struct{}
}

const threadNetNS = "/proc/thread-self/ns/net"

// NewPool starts the hop threads. Each records the namespace it starts in
// as its home and refuses to run if that is not the namespace of the
// thread that called NewPool.
func NewPool(opts ...Option) (*Pool, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	home, err := statID(threadNetNS)
	if err != nil {
		return nil, fmt.Errorf("netns: home namespace: %w", err)
	}
	p := &Pool{cfg: cfg, home: home, jobs: make(chan *job), quit: make(chan struct{}), none: make(chan struct{})}
	p.bufs.New = func() any { b := make([]byte, 8<<10); return &b }
	ready := make(chan error, cfg.size)
	p.threads.Store(int32(cfg.size))
	for range cfg.size {
		p.wg.Add(1)
		go p.worker(ready, nil, -1)
	}
	var errs []error
	for range cfg.size {
		if err := <-ready; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		p.Close()
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Home is the namespace the hop threads live in: the host's, when the
// program runs in the host's network namespace. A Handle whose ID equals
// Home reads that namespace (see Handle.IsHome).
func (p *Pool) Home() ID { return p.home }

// Close stops the hop threads and waits for them. Handles already opened
// stay valid and must still be closed.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() { close(p.quit) })
	p.wg.Wait()
	return nil
}

// Identify opens t's namespace without hopping and returns a Ref that holds
// it open: Ref.ID tells whether two targets share a namespace before opening
// it twice, and Open(ctx, ref.Target(), parts) then hops into exactly the
// namespace identified. A target is opened once: a process that exits (and
// whose PID is reused) between Identify and Open changes nothing. Close the
// Ref when done; a Handle opened from it does not need it.
func (p *Pool) Identify(ctx context.Context, t Target) (*Ref, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, owned, err := p.openTarget(t)
	if err == nil && !owned {
		// A handle the caller owns: the Ref keeps its own descriptor.
		if fd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			err = fmt.Errorf("dup: %w", err)
		}
	}
	if err != nil {
		return nil, &TargetError{Target: t, Err: err}
	}
	id, err := fdID(fd)
	if err != nil {
		unix.Close(fd)
		return nil, &TargetError{Target: t, Err: err}
	}
	return &Ref{ID: id, fd: fd, of: t}, nil
}

// Ref is a network namespace held open by Identify. It is not safe for
// concurrent use with its Close.
type Ref struct {
	// ID identifies the namespace.
	ID ID
	fd int
	of Target
}

// Target names the namespace the Ref holds, for Open and OpenAll, until
// the Ref is closed.
func (r *Ref) Target() Target {
	return Target{kind: targetHandle, h: vns.NsHandle(r.fd), of: r.of.String()}
}

// Close releases the namespace. A second Close does nothing.
func (r *Ref) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// Open hops into t's namespace and returns a Handle that reads parts of it.
// A part the namespace lacks (snmp6 without IPv6) is left out of
// Handle.Parts, not an error. Errors: *TargetError wrapping ErrNotExist when
// the namespace is gone; ErrPoolClosed after Close, or when the pool has no
// hop thread left; ErrRestore; ctx.Err().
func (p *Pool) Open(ctx context.Context, t Target, parts Parts) (*Handle, error) {
	hs, err := p.OpenAll(ctx, []Target{t}, parts)
	if len(hs) == 0 {
		return nil, err
	}
	return hs[0], err
}

// OpenAll opens several namespaces in one hop job (one thread wake-up).
// handles[i] belongs to targets[i] and is nil when that target failed; err
// joins a *TargetError per failed target. Targets that share a namespace get
// separate handles; use Identify first to open a shared namespace once.
func (p *Pool) OpenAll(ctx context.Context, targets []Target, parts Parts) ([]*Handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := &job{targets: targets, parts: parts, done: make(chan struct{})}
	select {
	case p.jobs <- j:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.quit:
		return nil, ErrPoolClosed
	case <-p.none:
		return nil, ErrPoolClosed
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobPending, jobAbandoned) {
			return nil, ctx.Err()
		}
		<-j.done
	case <-p.quit:
		if j.state.CompareAndSwap(jobPending, jobAbandoned) {
			return nil, ErrPoolClosed
		}
		<-j.done
	}
	var errs []error
	for i, e := range j.errs {
		if e != nil {
			errs = append(errs, &TargetError{Target: targets[i], Err: e})
		}
	}
	return j.handles, errors.Join(errs...)
}

// worker is one hop thread. It locks its goroutine to the thread for its
// whole life. A thread that may be left in a foreign namespace (a failed
// restore, or one that started outside the pool's home) is disposed of by
// returning still locked, so that Go terminates it. A thread verified home
// is unlocked before the worker returns (Close, a start-up error) and goes
// back to Go's pool: terminating it would also fire the parent-death signal
// of any child process another goroutine once started from that thread
// (SysProcAttr.Pdeathsig), killing children that have nothing to do with
// the pool.
//
// It never hops on the process's main thread: Go does not terminate that
// thread when a locked goroutine exits on it (it parks it for good), so a
// failed restore there would leave the main thread, and with it
// /proc/self/ns/net and /proc/self/net, in the target namespace. A worker
// that finds itself there starts its successor while it keeps the main
// thread busy, so the successor necessarily runs on another thread, and
// bows out once the successor is locked. locked, when not nil, is closed
// once this worker is locked to its thread.
//
// homeFD is the descriptor of the home namespace a disposed-of worker
// hands to its replacement, or -1: a replacement needs no new descriptor,
// so a process out of them (EMFILE) still gets its hop thread back.
func (p *Pool) worker(ready chan<- error, locked chan<- struct{}, homeFD int) {
	runtime.LockOSThread()
	if locked != nil {
		close(locked)
	}
	if unix.Gettid() == unix.Getpid() {
		next := make(chan struct{})
		go p.worker(ready, next, homeFD) // inherits this worker's wg count
		<-next
		runtime.UnlockOSThread()
		return
	}
	defer p.wg.Done()
	// fail reports a worker that cannot start. At NewPool the error goes
	// to the caller; a replacement's is logged, and the pool may be left
	// without a thread.
	fail := func(err error) {
		if homeFD >= 0 {
			unix.Close(homeFD)
		}
		if ready != nil {
			ready <- err
			return
		}
		// This thread may not be home: log from elsewhere.
		p.logAway("netns: replacement hop thread failed to start", "err", err)
		p.lost()
	}
	home, err := statID(threadNetNS)
	if err == nil && home != p.home {
		err = fmt.Errorf("netns: hop thread started in namespace %v, not the pool's home %v", home, p.home)
	}
	if err == nil && p.cfg.startFault != nil && ready == nil {
		err = p.cfg.startFault()
	}
	if err != nil {
		fail(err)
		return // still locked: the thread may not be home
	}
	if homeFD < 0 {
		if homeFD, err = unix.Open(threadNetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			homeFD = -1
			fail(fmt.Errorf("netns: open %s: %w", threadNetNS, err))
			runtime.UnlockOSThread() // verified home: keep the thread
			return
		}
	}
	if id, err := fdID(homeFD); err != nil || id != home {
		fail(fmt.Errorf("netns: home namespace descriptor is %v, not %v (%v)", id, home, err))
		runtime.UnlockOSThread()
		return
	}
	p.alive.Add(1)
	defer p.alive.Add(-1)
	if ready != nil {
		ready <- nil
	}
	for {
		select {
		case <-p.quit:
			unix.Close(homeFD)
			runtime.UnlockOSThread() // verified home after every job: keep the thread
			return
		case j := <-p.jobs:
			if !j.state.CompareAndSwap(jobPending, jobRunning) {
				continue
			}
			ok := p.run(j, homeFD, home)
			close(j.done)
			if !ok {
				// Still in the target namespace: a log handler run here
				// would dial out, or open files, inside the container.
				p.logAway("netns: hop thread could not return home; disposing of it", "tid", unix.Gettid())
				p.respawn(homeFD)
				return
			}
			p.cfg.log.Debug("netns: hop done", "targets", len(j.targets), "parts", j.parts.String())
		}
	}
}

// logAway logs an error from another goroutine, and so from another
// thread: the calling hop thread may be in a foreign namespace. (A goroutine
// locked to its thread never runs another goroutine there.)
func (p *Pool) logAway(msg string, args ...any) {
	go p.cfg.log.Error(msg, args...)
}

// lost records a hop thread gone for good. With none left, OpenAll fails
// with ErrPoolClosed instead of waiting for a thread that will not come.
func (p *Pool) lost() {
	if p.threads.Add(-1) == 0 {
		p.noneOnce.Do(func() { close(p.none) })
	}
}

// respawn starts a replacement hop thread, handing it homeFD, unless the
// pool is closing.
func (p *Pool) respawn(homeFD int) {
	select {
	case <-p.quit:
		unix.Close(homeFD)
		return
	default:
	}
	p.wg.Add(1)
	go p.worker(nil, nil, homeFD)
}

// run does job j on the locked thread. It returns false when the thread is
// not verified to be home afterwards; every descriptor the job opened is
// then closed and each remaining target fails with ErrRestore.
func (p *Pool) run(j *job, homeFD int, home ID) bool {
	j.handles = make([]*Handle, len(j.targets))
	j.errs = make([]error, len(j.targets))
	for i, t := range j.targets {
		h, err, ok := p.hop(t, j.parts, homeFD, home)
		if !ok {
			for k := range i {
				if j.handles[k] != nil {
					j.handles[k].Close()
					j.handles[k] = nil
					j.errs[k] = ErrRestore
				}
			}
			for k := i; k < len(j.targets); k++ {
				j.errs[k] = ErrRestore
			}
			return false
		}
		j.handles[i], j.errs[i] = h, err
	}
	return true
}

// hop opens one target. Between the two setns calls it runs only system
// calls (open, socket, connect, setsockopt) and plain Go code: no goroutine
// is started and nothing is logged. ok is false when the thread may not be
// home.
func (p *Pool) hop(t Target, parts Parts, homeFD int, home ID) (h *Handle, err error, ok bool) {
	nsFD, owned, err := p.openTarget(t)
	if err != nil {
		return nil, err, true
	}
	if owned {
		defer unix.Close(nsFD)
	}
	id, err := fdID(nsFD)
	if err != nil {
		return nil, err, true
	}
	h = newHandle(id, id == home, &p.bufs)
	if id == home { // already there: no setns
		if err := h.open(parts); err != nil {
			h.Close()
			return nil, err, true
		}
		return h, nil, true
	}
	if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns: %w", err), true
	}
	var openErr error
	if got, err := statID(threadNetNS); err != nil || got != id {
		openErr = fmt.Errorf("setns did not move the thread to %v", id)
	} else {
		openErr = h.open(parts)
	}
	var restoreErr error
	if p.cfg.skipRestore == nil || !p.cfg.skipRestore() {
		restoreErr = unix.Setns(homeFD, unix.CLONE_NEWNET)
	}
	if got, err := statID(threadNetNS); restoreErr != nil || err != nil || got != home {
		h.Close()
		return nil, ErrRestore, false
	}
	if openErr != nil {
		h.Close()
		return nil, openErr, true
	}
	return h, nil, true
}

// openTarget opens the nsfs file of t. owned says whether the caller must
// close it (not for a TargetHandle).
func (p *Pool) openTarget(t Target) (fd int, owned bool, err error) {
	var path string
	switch t.kind {
	case targetPID:
		if t.pid <= 0 {
			return -1, false, fmt.Errorf("%w: invalid pid %d", ErrNotExist, t.pid)
		}
		if t.start != 0 {
			return p.openProcess(t)
		}
		path = fmt.Sprintf("%s/proc/%d/ns/net", p.cfg.root, t.pid)
	case targetPath:
		path = t.path
	case targetHandle:
		if t.h < 0 {
			return -1, false, fmt.Errorf("%w: handle not open", ErrNotExist)
		}
		return int(t.h), false, nil
	default:
		return -1, false, fmt.Errorf("%w: empty target", ErrNotExist)
	}
	fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT || err == unix.ESRCH {
			return -1, false, fmt.Errorf("%w: open %s: %w", ErrNotExist, path, err)
		}
		return -1, false, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, true, nil
}

// openProcess opens ns/net of a TargetProcess through its /proc/<pid>
// directory, once the start time there is the one expected.
func (p *Pool) openProcess(t Target) (int, bool, error) {
	d, err := proc.Open(p.cfg.root, t.pid, t.start)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return -1, false, fmt.Errorf("%w: %w", ErrNotExist, err)
		}
		return -1, false, err
	}
	defer d.Close()
	fd, err := d.OpenFile("ns/net")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return -1, false, fmt.Errorf("%w: %w", ErrNotExist, err)
		}
		return -1, false, err
	}
	return fd, true, nil
}

func fdID(fd int) (ID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		if err == unix.EBADF {
			return ID{}, fmt.Errorf("%w: fstat: %w", ErrNotExist, err)
		}
		return ID{}, fmt.Errorf("fstat: %w", err)
	}
	return ID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, nil
}

func statID(path string) (ID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ID{}, err
	}
	return ID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, nil
}
