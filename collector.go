package metricsd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
	"github.com/metricsd/metricsd/sink"
)

// Collector turns discovered containers into snapshots: it opens a cgroup
// Group and (shared per namespace) a network Handle for each container when
// it appears, closes them as soon as it goes, reads them all at every
// interval, and hands the snapshot to every sink.
//
// A Collector is safe for concurrent use, but snapshots are taken one at a
// time: Collect waits for a Collect already running.
type Collector struct {
	o    options
	fs   *cgroup.FS
	pool *netns.Pool // nil when no network part is read
	disc runtime.Discoverer

	collectMu sync.Mutex // one snapshot at a time; guards what follows
	snap      sink.Snapshot
	entries   []*entry    // reused by Collect
	netList   []*netEntry // reused by Collect

	mu            sync.Mutex // guards what follows
	tracked       map[string]*entry
	nets          map[netns.ID]*netEntry
	scrapes       int
	lastReconcile time.Time
	watching      atomic.Bool // Run is applying the runtime's events
	closed        bool

	// Self-metrics, atomically updated.
	errs       [numStages]atomic.Uint64
	writeNanos atomic.Uint64 // float64 bits: seconds the last write to every sink took
}

// entry is one tracked container.
type entry struct {
	id    string // the container's ID, fixed at add (e.c may be updated)
	c     runtime.Container
	group *cgroup.Group // nil when its cgroup could not be opened
	net   *netEntry     // nil: host namespace, or none could be opened
	// gone: its group disappeared (or was closed) during a scrape; it is
	// left out of snapshots and dropped at the next reconcile.
	gone atomic.Bool
	// released: its handles were closed (guarded by Collector.mu). group
	// and net are never reset, so that a Collect running meanwhile (Run
	// applies events concurrently) reads a closed handle, not a nil one.
	released bool
}

// netEntry is a network namespace shared by the containers in it.
type netEntry struct {
	id    netns.ID
	h     *netns.Handle
	refs  int
	stats netns.Stats
	ok    bool // stats read in this snapshot
}

// Stage names where a collection error happened, for the self-metrics.
type Stage int

const (
	StageDiscover Stage = iota // listing or watching the runtime
	StageOpen                  // opening a container's cgroup or namespace
	StageCgroup                // reading a cgroup
	StageNet                   // reading a network namespace
	StageSink                  // writing to a sink
	numStages
)

var stageNames = [numStages]string{"discover", "open", "cgroup", "net", "sink"}

func (s Stage) String() string {
	if s >= 0 && s < numStages {
		return stageNames[s]
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// New makes a Collector. With no WithDiscoverer option it walks the cgroup
// tree beneath the host root (runtime/cgroupfs); runtime/detect picks Docker
// and containerd where they answer.
func New(ctx context.Context, opts ...Option) (*Collector, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if o.interval <= 0 {
		return nil, errors.New("metricsd: interval must be positive")
	}
	fs, err := cgroup.NewFS(ctx, cgroup.WithRoot(o.root), cgroup.WithLogger(o.log), cgroup.WithLimitMaxAge(o.limitMaxAge))
	if err != nil {
		return nil, err
	}
	c := &Collector{o: o, fs: fs, tracked: make(map[string]*entry), nets: make(map[netns.ID]*netEntry)}
	if o.netParts != 0 {
		root := o.root
		if root == "/" {
			root = ""
		}
		if c.pool, err = netns.NewPool(netns.WithRoot(root), netns.WithLogger(o.log)); err != nil {
			return nil, err
		}
	}
	c.disc = o.discoverer
	if c.disc == nil {
		if c.disc, err = cgroupfs.New(ctx, cgroupfs.WithRoot(o.root), cgroupfs.WithLogger(o.log)); err != nil {
			c.closePool()
			return nil, err
		}
	}
	return c, nil
}

func (c *Collector) closePool() {
	if c.pool != nil {
		c.pool.Close()
	}
}

// Discoverer returns the discoverer the Collector uses.
func (c *Collector) Discoverer() runtime.Discoverer { return c.disc }

// Tracked returns how many containers the Collector tracks.
func (c *Collector) Tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tracked)
}

// Errors returns the number of errors counted at a stage so far.
func (c *Collector) Errors(s Stage) uint64 { return c.errs[s].Load() }

func (c *Collector) countErr(s Stage, err error, msg string, args ...any) {
	if errors.Is(err, context.Canceled) {
		return // the caller is shutting down, nothing failed
	}
	c.errs[s].Add(1)
	c.o.log.Debug("metricsd: "+msg, append(args, "stage", s.String(), "err", err)...)
}

// Reconcile lists the running containers and brings the tracked set in line
// with them: handles for new containers are opened, those of containers that
// are gone are closed. Collect calls it before every snapshot when nothing
// applies the runtime's events (Collect used alone); under Run, which applies
// them as they come, at the first snapshot and then at most once a minute
// (WithReconcileInterval, WithReconcileEvery), to catch missed events.
func (c *Collector) Reconcile(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	list, err := c.disc.List(lctx)
	if err != nil {
		c.countErr(StageDiscover, err, "list failed")
		return err
	}
	running := make(map[string]runtime.Container, len(list))
	for _, ct := range list {
		if ct.State == runtime.StateRunning {
			running[key(ct)] = ct
		}
	}
	c.mu.Lock()
	var gone []*entry
	for k, e := range c.tracked {
		if _, ok := running[k]; !ok || e.gone.Load() {
			gone = append(gone, e)
			delete(c.tracked, k)
		}
	}
	var fresh []runtime.Container
	var known []*cgroup.Group
	for k, ct := range running {
		if e, ok := c.tracked[k]; ok {
			e.c = c.trim(ct)
			if e.group != nil {
				known = append(known, e.group)
			}
			continue
		}
		fresh = append(fresh, ct)
	}
	c.mu.Unlock()
	for _, g := range known {
		g.RefreshLimits() // a listing is also when limits are re-read
	}
	for _, e := range gone {
		c.release(e)
	}
	for _, ct := range fresh {
		c.add(ctx, ct)
	}
	return nil
}

func key(ct runtime.Container) string { return ct.Runtime + "/" + runtime.Key(ct) }

// trim keeps only the allowed labels, so that no sink can export others.
func (c *Collector) trim(ct runtime.Container) runtime.Container {
	if c.o.allLabels || len(ct.Labels) == 0 {
		return ct
	}
	var kept map[string]string
	for _, l := range c.o.labels {
		if v, ok := ct.Labels[l]; ok {
			if kept == nil {
				kept = make(map[string]string, len(c.o.labels))
			}
			kept[l] = v
		}
	}
	ct.Labels = kept
	return ct
}

// add opens a container's handles and starts tracking it. When a handle can
// not be opened (the container is exiting, or the process is out of
// descriptors: each Group keeps ~18 open on v1) the container is not
// tracked, so the next reconciling listing tries again. A container that
// names neither a PID nor a cgroup is tracked without cgroup figures.
//
// The group is the one at the path the listing gave, in every hierarchy: a
// controller whose hierarchy has no group there is Unavailable, never the
// figures of the group the process happens to be in (the root, on a host
// where the runtime made no group for that controller). Its PID must still
// be the container's process (runtime.CheckProcess): a PID reused since the
// listing attaches no other process's figures.
func (c *Collector) add(ctx context.Context, ct runtime.Container) {
	e := &entry{id: ct.ID, c: c.trim(ct)}
	err := runtime.CheckProcess(ctx, c.fs, ct)
	switch {
	case err != nil:
	case ct.CgroupPath != "":
		e.group, err = c.fs.Open(ctx, ct.CgroupPath, c.o.controllers)
	case ct.PID > 0:
		e.group, err = c.fs.OpenProcess(ctx, ct.PID, ct.PIDStart, c.o.controllers)
	}
	if err != nil {
		c.countErr(StageOpen, err, "open cgroup", "container", ct.ID)
		return
	}
	if c.pool != nil && !ct.NetNS.Host {
		var ok bool
		if e.net, ok = c.openNet(ctx, ct); !ok {
			c.release(e)
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.releaseLocked(e)
		return
	}
	if old, ok := c.tracked[key(ct)]; ok { // raced with another add
		c.releaseLocked(old)
	}
	c.tracked[key(ct)] = e
}

// start handles a started event. A container tracked already, with the
// same PID (or the event names none), keeps its handles: a watcher's first
// listing reports every running container, which the first snapshot has
// opened, and reopening them all would cost as much as the listing. A new
// PID is a new task (a restart): its handles are opened afresh.
func (c *Collector) start(ctx context.Context, ct runtime.Container) {
	c.mu.Lock()
	e, ok := c.tracked[key(ct)]
	dup := ok && !e.gone.Load() && (ct.PID == 0 || ct.PID == e.c.PID)
	c.mu.Unlock()
	if !dup {
		c.add(ctx, ct)
	}
}

// openNet finds or opens the handle of a container's network namespace; nil
// when the container has none of its own. ok is false when it could not be
// opened.
func (c *Collector) openNet(ctx context.Context, ct runtime.Container) (n *netEntry, ok bool) {
	var t netns.Target
	switch {
	case ct.NetNS.PID > 0:
		t = netns.TargetPID(ct.NetNS.PID)
	case ct.NetNS.Path != "":
		t = netns.TargetPath(ct.NetNS.Path)
	case ct.PID > 0:
		t = netns.TargetPID(ct.PID)
	default:
		return nil, true
	}
	id, err := c.pool.Identify(ctx, t)
	if err != nil {
		c.countErr(StageOpen, err, "identify netns", "container", ct.ID)
		return nil, false
	}
	if id == c.pool.Home() {
		return nil, true // the host's namespace: not the container's own
	}
	c.mu.Lock()
	if n, ok := c.nets[id]; ok {
		n.refs++
		c.mu.Unlock()
		return n, true
	}
	c.mu.Unlock()
	h, err := c.pool.Open(ctx, t, c.o.netParts)
	if err != nil {
		c.countErr(StageOpen, err, "open netns", "container", ct.ID)
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nets[id]; ok { // opened meanwhile by another container
		n.refs++
		h.Close()
		return n, true
	}
	n = &netEntry{id: id, h: h, refs: 1}
	c.nets[id] = n
	return n, true
}

func (c *Collector) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked(e)
}

// releaseLocked closes a container's handles; its namespace handle is
// closed when its last container goes, since it keeps the namespace alive.
func (c *Collector) releaseLocked(e *entry) {
	if e.released {
		return
	}
	e.released = true
	if e.group != nil {
		e.group.Close() // a Stat running meanwhile returns os.ErrClosed
	}
	if n := e.net; n != nil {
		n.refs--
		if n.refs == 0 {
			n.h.Close()
			delete(c.nets, n.id)
		}
	}
}

// remove stops tracking a container.
func (c *Collector) remove(ct runtime.Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(ct)
	if e, ok := c.tracked[k]; ok {
		delete(c.tracked, k)
		c.releaseLocked(e)
	}
}

// Collect takes one snapshot of every tracked container (reconciling with
// the runtime first when due) and returns it. The snapshot is the
// Collector's and is reused by the next Collect: use it before then, or copy
// it (sink.Snapshot.CopyTo). A container that vanished mid-scrape is left
// out of the snapshot, not an error.
func (c *Collector) Collect(ctx context.Context) (*sink.Snapshot, error) {
	c.collectMu.Lock()
	defer c.collectMu.Unlock()
	start := time.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("metricsd: collector closed")
	}
	due := c.scrapes == 0
	switch {
	case c.o.reconcileEvery > 0:
		due = due || c.scrapes%c.o.reconcileEvery == 0
	case !c.watching.Load():
		due = true // no events come in: only a listing sees new containers
	default:
		due = due || start.Sub(c.lastReconcile) >= c.o.reconcileAfter
	}
	if due {
		c.lastReconcile = start
	}
	c.scrapes++
	c.mu.Unlock()
	if due {
		if err := c.Reconcile(ctx); err != nil && c.Tracked() == 0 {
			return nil, err
		}
	}

	// The snapshot has a slot per entry, read into in place: a slot's
	// Stats keep their slices' capacity from one Collect to the next,
	// whichever container lands there, so nothing is allocated per
	// container and no Stats is kept twice. The entries and their
	// container descriptions are taken under the lock: Run's events and
	// Reconcile change them concurrently.
	snap := &c.snap
	snap.Time = start
	c.mu.Lock()
	entries := c.entries[:0]
	for _, e := range c.tracked {
		entries = append(entries, e)
	}
	nets := c.netList[:0]
	for _, n := range c.nets {
		nets = append(nets, n)
	}
	slices.SortFunc(entries, func(a, b *entry) int { return compareContainers(&a.c, &b.c) })
	if cap(snap.Containers) < len(entries) {
		snap.Containers = slices.Grow(snap.Containers[:cap(snap.Containers)], len(entries)-cap(snap.Containers))
	}
	snap.Containers = snap.Containers[:len(entries)]
	for i, e := range entries {
		snap.Containers[i].Container = e.c
		snap.Containers[i].Net = nil
	}
	c.mu.Unlock()
	c.entries, c.netList = entries, nets

	// Read every cgroup and every namespace once, concurrently: each
	// worker takes the next index; no allocation per container.
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			switch {
			case i < len(entries):
				c.statGroup(ctx, entries[i], &snap.Containers[i].Cgroup)
			case i < len(entries)+len(nets):
				c.statNet(ctx, nets[i-len(entries)])
			default:
				return
			}
		}
	}
	var wg sync.WaitGroup
	for range workers(c.o.concurrency, len(entries)+len(nets)) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()

	// Leave out the containers that vanished; swap, not copy, so that
	// every slot keeps slices of its own.
	n := 0
	for i, e := range entries {
		if e.gone.Load() {
			continue
		}
		if e.net != nil && e.net.ok {
			snap.Containers[i].Net = &e.net.stats
		}
		snap.Containers[n], snap.Containers[i] = snap.Containers[i], snap.Containers[n]
		n++
	}
	snap.Containers = snap.Containers[:n]
	c.fillSelf(snap, len(entries), len(nets), time.Since(start))
	c.o.log.Debug("metricsd: collected", "containers", len(snap.Containers), "took", time.Since(start))
	return snap, ctx.Err()
}

// itemsPerWorker is how many cgroups and namespaces one goroutine reads
// before Collect starts another. Waking a goroutine on another thread costs
// tens of microseconds of CPU (the wakeups, spinning threads), about what
// reading one container costs: below a hundred or so items one goroutine
// takes less CPU, and only a little more wall time.
const itemsPerWorker = 128

// workers is how many goroutines Collect uses to read items, at most limit.
func workers(limit, items int) int { return min(limit, 1+items/itemsPerWorker) }

// fillSelf sets the snapshot's self-metrics.
func (c *Collector) fillSelf(snap *sink.Snapshot, containers, namespaces int, took time.Duration) {
	if snap.Self == nil {
		snap.Self = &sink.Self{Errors: make([]sink.StageErrors, numStages)}
	}
	s := snap.Self
	s.ScrapeSeconds = took.Seconds()
	s.Containers, s.Namespaces = containers, namespaces
	for i := range numStages {
		s.Errors[i] = sink.StageErrors{Stage: stageNames[i], Count: c.errs[i].Load()}
	}
	s.SinkDropped = 0
	for _, k := range c.o.sinks {
		if d, ok := k.(sink.SinkDropper); ok {
			s.SinkDropped += d.Dropped()
		}
	}
	s.SinkWriteSeconds = math.Float64frombits(c.writeNanos.Load())
}

func (c *Collector) statGroup(ctx context.Context, e *entry, s *cgroup.Stats) {
	if e.group == nil {
		*s = cgroup.Stats{CPU: cgroup.CPUStats{PerCPU: s.CPU.PerCPU[:0]}, IO: cgroup.IOStats{Devices: s.IO.Devices[:0]}, Hugetlb: cgroup.HugetlbStats{Sizes: s.Hugetlb.Sizes[:0]}}
		return
	}
	if err := e.group.Stat(ctx, s); err != nil {
		// Removed mid-scrape, or released by an event meanwhile: no error.
		if !errors.Is(err, cgroup.ErrNotExist) && !errors.Is(err, os.ErrClosed) {
			c.countErr(StageCgroup, err, "stat cgroup", "container", e.id)
		}
		e.gone.Store(true) // left out of the snapshot, dropped at the next reconcile
	}
}

func (c *Collector) statNet(ctx context.Context, n *netEntry) {
	n.ok = false
	if err := n.h.Stat(ctx, &n.stats); err != nil {
		if !errors.Is(err, netns.ErrHandleClosed) { // released by an event meanwhile
			c.countErr(StageNet, err, "stat netns", "netns", n.id.String())
		}
		return
	}
	n.ok = true
}

func compareContainers(a, b *runtime.Container) int {
	if a.Runtime != b.Runtime {
		if a.Runtime < b.Runtime {
			return -1
		}
		return 1
	}
	if a.Name != b.Name {
		if a.Name < b.Name {
			return -1
		}
		return 1
	}
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// Run collects at every interval, aligned to the interval's multiples of
// wall time, and writes each snapshot to every sink, until ctx ends; it also
// applies the runtime's events as they come. Then it flushes and closes the
// sinks (within WithTimeout) and returns nil; it returns an error only when
// it could not start.
func (c *Collector) Run(ctx context.Context) error {
	events, err := c.disc.Watch(ctx)
	if err != nil {
		c.countErr(StageDiscover, err, "watch failed")
		events = nil // collect anyway; reconciling lists catch changes
	}
	var wg sync.WaitGroup
	if events != nil {
		c.watching.Store(true)
		defer c.watching.Store(false)
		wg.Go(func() {
			for ev := range events {
				switch ev.Type {
				case runtime.EventStarted:
					if ev.Container.State == "" || ev.Container.State == runtime.StateRunning {
						c.start(ctx, ev.Container)
					}
				case runtime.EventStopped, runtime.EventRemoved:
					c.remove(ev.Container)
				}
			}
		})
	}
	defer wg.Wait()
	defer c.closeSinks()

	for {
		next := time.Now().Truncate(c.o.interval).Add(c.o.interval)
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		snap, err := c.Collect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.o.log.Warn("metricsd: collect failed", "err", err)
			continue
		}
		w0 := time.Now()
		for _, s := range c.o.sinks {
			wctx, cancel := context.WithTimeout(ctx, c.o.timeout)
			if err := s.Write(wctx, snap); err != nil {
				c.countErr(StageSink, err, "sink write")
			}
			cancel()
		}
		c.writeNanos.Store(math.Float64bits(time.Since(w0).Seconds()))
	}
}

func (c *Collector) closeSinks() {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.timeout)
	defer cancel()
	for _, s := range c.o.sinks {
		if err := s.Close(ctx); err != nil {
			c.countErr(StageSink, err, "sink close")
		}
	}
}

// Close releases every handle, the namespace threads and the discoverer.
// It does not close the sinks (Run does when it ends).
func (c *Collector) Close() error {
	c.collectMu.Lock()
	defer c.collectMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for k, e := range c.tracked {
		c.releaseLocked(e)
		delete(c.tracked, k)
	}
	c.mu.Unlock()
	c.closePool()
	return c.disc.Close()
}
