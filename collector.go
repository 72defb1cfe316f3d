package metricsd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/ratelog"
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
// A Collector is safe for concurrent use. Snapshots are taken one at a
// time, but Collect and Run each fill a snapshot of their own: Collect may
// be called while Run runs.
//
// Lifecycle: New starts nothing but the namespace threads. Watch (or Run,
// which calls it) applies the runtime's events until its context ends. Run
// ends by closing the sinks; Close ends everything: the event watcher, the
// sinks (unless Run closed them), every handle and the discoverer.
type Collector struct {
	o     options
	fs    *cgroup.FS
	pool  *netns.Pool // nil when no network part is read
	disc  runtime.Discoverer
	fails *ratelog.Logger // failures at Warn, one line per cause a minute

	collectMu sync.Mutex // one collection at a time; guards pub, own and netEntry.slot
	pub, own  buffer     // Collect's snapshot, Run's

	mu            sync.Mutex // guards what follows
	tracked       map[string]*entry
	pending       map[string]pendingAdd // could not be opened: retried at every snapshot
	nets          map[netns.ID]*netEntry
	gen           uint64            // counts changes to the tracked set
	busy          int               // listings and opens in flight
	removed       map[string]uint64 // keys stopped or removed while busy, and c.gen then
	scrapes       int
	lastReconcile time.Time
	fdChecked     bool
	watchCancel   context.CancelFunc // non-nil while events are applied
	watchDone     chan struct{}
	runCancel     context.CancelFunc // non-nil while Run runs
	runDone       chan struct{}
	closed        bool
	sinksClosed   bool

	watching atomic.Bool // events are applied

	// OOM kills as they happen (oom.go); oom is nil when not watched.
	oom        *cgroup.OOMWatcher
	oomBy      map[*cgroup.Group]*entry // guarded by mu
	events     chan sink.Event          // for Run; nil when no sink takes events
	departures []departure              // guarded by mu
	depSeq     uint64                   // guarded by mu
	oomRefused atomic.Bool              // a v1 registration was refused: said once

	// Self-metrics, atomically updated.
	errs       [numStages]atomic.Uint64
	writeNanos atomic.Uint64 // float64 bits: seconds the last write to every sink took
}

// buffer is what one snapshot is read into, reused from one collection to
// the next: Collect's and Run's are separate, so that a sink reading Run's
// snapshot never sees a Collect overwrite it.
type buffer struct {
	snap     sink.Snapshot
	entries  []*entry
	nets     []*netEntry
	netStats []netns.Stats
	netOK    []bool
	// depTaken is the last departure put in snap (Collector.depSeq);
	// used, whether a snapshot was taken into it. Guarded by
	// Collector.mu.
	depTaken uint64
	used     bool
}

// pendingAdd is a container whose handles could not be opened.
type pendingAdd struct {
	c   runtime.Container
	gen uint64 // c.gen when it failed
}

// entry is one tracked container.
type entry struct {
	id  string // the container's ID, fixed at add (e.c may be updated)
	key string
	gen uint64 // c.gen when it was tracked
	c   runtime.Container
	// group is nil when the container names neither a PID nor a cgroup.
	group *cgroup.Group
	// net is the container's namespace; nil when it is the host's
	// (netHost), could not be opened (netFailed: retried at every
	// snapshot), or the container names none. Set under both locks.
	net       *netEntry
	netHost   bool
	netFailed bool
	// gone: its group disappeared (or was closed) during a scrape; it is
	// left out of snapshots and dropped at the next reconcile.
	gone atomic.Bool
	// released: its handles were closed (guarded by Collector.mu). group
	// and net are never reset, so that a Collect running meanwhile (events
	// are applied concurrently) reads a closed handle, not a nil one.
	released bool
	// departed: it left, and was kept for Snapshot.Departed if it counted
	// an OOM kill (guarded by Collector.mu).
	departed bool
	// oomTotal is its latest count of OOM kills, from the OOM watcher or
	// a snapshot.
	oomTotal atomic.Uint64
	// oomRead: a snapshot read its count of OOM kills (the baseline of
	// the events snapshots make for a container the watcher does not
	// watch). Guarded by Collector.mu.
	oomRead bool
}

func (e *entry) sandbox() bool { return e.c.Pod != nil && e.c.Pod.Sandbox }

// netEntry is a network namespace shared by the containers in it. Its
// figures are reported on one of them, the carrier: a pod's sandbox when
// it is among them, else the one that has been in it longest (of those a
// listing finds together, the one started first).
type netEntry struct {
	id      netns.ID
	h       *netns.Handle
	members []*entry // in the order they joined; guarded by Collector.mu
	carrier *entry   // guarded by Collector.mu
	slot    int      // index in the buffer being filled; guarded by collectMu
}

func (n *netEntry) join(e *entry) {
	n.members = append(n.members, e)
	if n.carrier == nil || e.sandbox() && !n.carrier.sandbox() {
		n.carrier = e
	}
}

// leave removes e and reports whether the namespace has no member left.
func (n *netEntry) leave(e *entry) bool {
	if i := slices.Index(n.members, e); i >= 0 {
		n.members = slices.Delete(n.members, i, i+1)
	}
	if n.carrier == e {
		n.carrier = nil
		for _, m := range n.members {
			if m.sandbox() {
				n.carrier = m
				break
			}
		}
		if n.carrier == nil && len(n.members) > 0 {
			n.carrier = n.members[0]
		}
	}
	return len(n.members) == 0
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

// ErrClosed is returned by Collect, Run and Watch after Close.
var ErrClosed = errors.New("metricsd: collector closed")

// New makes a Collector. With no WithDiscoverer option it walks the cgroup
// tree beneath the host root (runtime/cgroupfs); runtime/detect picks Docker
// and containerd where they answer. An invalid option makes it fail, naming
// the option. It warns (WithLogger) when the process lacks the privileges
// to enter other containers' network namespaces.
func New(ctx context.Context, opts ...Option) (*Collector, error) {
	o := defaults()
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, errors.New("nil Option"))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if o.allLabels && o.labelsSet {
		o.labels = nil // every label is kept, the listed ones among them
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("metricsd: %w", errors.Join(errs...))
	}
	fs, err := cgroup.NewFS(ctx, cgroup.WithRoot(o.root), cgroup.WithLogger(o.log), cgroup.WithLimitMaxAge(o.limitMaxAge))
	if err != nil {
		return nil, err
	}
	c := &Collector{o: o, fs: fs, fails: ratelog.New(o.log, failureLogEvery),
		tracked: make(map[string]*entry), pending: make(map[string]pendingAdd),
		nets: make(map[netns.ID]*netEntry), removed: make(map[string]uint64), oomBy: make(map[*cgroup.Group]*entry)}
	if o.netParts != 0 {
		root := o.root
		if root == "/" {
			root = ""
		}
		if c.pool, err = netns.NewPool(netns.WithRoot(root), netns.WithLogger(o.log)); err != nil {
			return nil, err
		}
		warnPrivileges(o.log)
	}
	c.disc = o.discoverer
	if c.disc == nil {
		if c.disc, err = cgroupfs.New(ctx, cgroupfs.WithRoot(o.root), cgroupfs.WithLogger(o.log)); err != nil {
			c.closePool()
			return nil, err
		}
	}
	c.startOOMWatch()
	return c, nil
}

func (c *Collector) closePool() {
	if c.pool != nil {
		c.pool.Close()
	}
	if c.oom != nil {
		c.oom.Close() // not under c.mu: it waits for the handler
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

// Pending returns how many listed containers could not be opened; each is
// tried again at every snapshot until it opens or leaves the runtime.
func (c *Collector) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Errors returns the number of errors counted at a stage so far.
func (c *Collector) Errors(s Stage) uint64 { return c.errs[s].Load() }

func (c *Collector) countErr(s Stage, err error, msg string, args ...any) {
	if errors.Is(err, context.Canceled) {
		return // the caller is shutting down, nothing failed
	}
	c.errs[s].Add(1)
	c.failed(s, err, msg, args...)
}

// begin marks a listing or an open in flight and returns c.gen: a stop
// or removal applied after it wins over what the operation saw.
func (c *Collector) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy++
	return c.gen
}

func (c *Collector) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy--; c.busy == 0 {
		clear(c.removed)
	}
}

// removedSince reports whether k was stopped or removed after gen.
func (c *Collector) removedSince(k string, gen uint64) bool {
	g, ok := c.removed[k]
	return ok && g > gen
}

// Reconcile lists the running containers and brings the tracked set in line
// with them: handles for new containers are opened, those of containers that
// are gone are closed. Collect calls it before every snapshot when no events
// are applied (Collect used alone); with events applied (Watch, Run), at the
// first snapshot and then at most once a minute (WithReconcileInterval,
// WithReconcileEvery), to catch missed events.
//
// A listing is as old as its start: a container that an event adds while
// it is in flight is kept though the listing lacks it, and one that an
// event removes meanwhile is not added back.
func (c *Collector) Reconcile(ctx context.Context) error {
	since := c.begin()
	defer c.end()
	lctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	list, err := c.disc.List(lctx)
	// A partial listing (a container that could not be inspected, a
	// runtime of several that did not answer) is counted, and applied to
	// the containers it speaks for.
	var partial *runtime.PartialError
	if err != nil {
		c.countErr(StageDiscover, err, "list", "runtime", c.disc.Name())
		if !errors.As(err, &partial) {
			return err
		}
	}
	running := make(map[string]runtime.Container, len(list))
	for _, ct := range list {
		if ct.State.Live() { // running or paused
			running[key(ct)] = ct
		}
	}
	c.mu.Lock()
	for k, e := range c.tracked {
		_, listed := running[k]
		if e.gone.Load() || !listed && e.gen <= since && partial.Covers(e.c) {
			delete(c.tracked, k)
			c.departLocked(e, time.Now())
			c.releaseLocked(e)
		}
	}
	for k, p := range c.pending {
		if _, listed := running[k]; !listed && p.gen <= since && partial.Covers(p.c) {
			delete(c.pending, k)
		}
	}
	var fresh []runtime.Container
	var known []*cgroup.Group
	for k, ct := range running {
		if e, ok := c.tracked[k]; ok {
			if e.gen <= since { // else an event told more recently
				e.c = c.trim(ct)
			}
			if e.group != nil {
				known = append(known, e.group)
			}
			continue
		}
		if c.removedSince(k, since) {
			continue
		}
		fresh = append(fresh, ct)
	}
	// Oldest first, so that of containers sharing a namespace the one
	// started first carries it (netEntry), whatever the listing's order.
	slices.SortFunc(fresh, func(a, b runtime.Container) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(key(a), key(b))
	})
	checkFDs := !c.fdChecked && len(fresh) > 1
	c.fdChecked = true
	c.mu.Unlock()
	for _, g := range known {
		g.RefreshLimits() // a listing is also when limits are re-read
	}
	if checkFDs {
		// The first listing: measure what one container costs in
		// descriptors, and warn now if the limit can not hold them all.
		before := openFDs()
		c.add(ctx, fresh[0], since)
		c.warnFDs(openFDs()-before, len(fresh))
		fresh = fresh[1:]
	}
	for _, ct := range fresh {
		c.add(ctx, ct, since)
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

// add opens a container's handles and starts tracking it; since is c.gen
// when the decision to add it was taken. When its cgroup can not be opened
// (the process is out of descriptors: each Group keeps ~18 open on v1; or
// lacks the privilege) the container is pending: tried again at every
// snapshot until it opens or leaves the runtime. When only its network
// namespace can not be opened it is tracked with its cgroup figures, its
// network unavailable, and the namespace is tried again at every snapshot.
// A container that names neither a PID nor a cgroup is tracked without
// cgroup figures.
//
// The group is the one at the path the listing gave, in every hierarchy: a
// controller whose hierarchy has no group there is Unavailable, never the
// figures of the group the process happens to be in (the root, on a host
// where the runtime made no group for that controller). The network
// namespace is that of the process named by PID and start time. Once both
// are open, the PID must still be the container's process
// (runtime.CheckProcess: its start time, and in the container's group): a
// PID reused since the listing attaches no other process's figures, and the
// container is not tracked (its process is gone: the next listing names the
// new one). The check comes last: a namespace taken from a process that then
// passes it was the container's.
func (c *Collector) add(ctx context.Context, ct runtime.Container, since uint64) {
	k := key(ct)
	e := &entry{id: ct.ID, key: k, c: c.trim(ct)}
	var err error
	switch {
	case ct.CgroupPath != "":
		e.group, err = c.fs.Open(ctx, ct.CgroupPath, c.o.controllers)
	case ct.PID > 0:
		e.group, err = c.fs.OpenProcess(ctx, ct.PID, ct.PIDStart, c.o.controllers)
	}
	if err != nil {
		c.countErr(StageOpen, err, "open cgroup", "container", ct.ID, "name", ct.Name)
		c.addFailed(ct, since, err)
		return
	}
	if c.pool != nil {
		c.openNet(ctx, e, e.c)
	}
	if err := runtime.CheckProcess(ctx, c.fs, ct); err != nil {
		c.countErr(StageOpen, err, "container process", "container", ct.ID, "name", ct.Name, "pid", ct.PID)
		c.release(e)
		if errors.Is(err, cgroup.ErrNotExist) || errors.Is(err, runtime.ErrNotContainerProcess) {
			// Its process is gone: not worth trying again; the next
			// listing names the new one.
			c.mu.Lock()
			delete(c.pending, k)
			c.mu.Unlock()
			return
		}
		c.addFailed(ct, since, err) // could not tell (out of descriptors)
		return
	}
	c.watchOOM(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.removedSince(k, since) {
		c.releaseLocked(e)
		return
	}
	if old, ok := c.tracked[k]; ok { // raced with another add, or restarted
		c.departLocked(old, time.Now())
		c.releaseLocked(old)
	}
	c.gen++
	e.gen = c.gen
	c.tracked[k] = e
	delete(c.pending, k)
}

// addFailed makes a container that could not be opened pending: tried
// again at every snapshot until it opens or leaves the runtime.
func (c *Collector) addFailed(ct runtime.Container, since uint64, err error) {
	k := key(ct)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.tracked[k]; !ok && !c.closed && !c.removedSince(k, since) && !errors.Is(err, context.Canceled) {
		c.gen++
		c.pending[k] = pendingAdd{c: ct, gen: c.gen}
	}
}

// start handles a started event. A container tracked already, with the
// same PID (or the event names none), keeps its handles: a watcher's first
// listing reports every running container, which the first snapshot has
// opened, and reopening them all would cost as much as the listing. A new
// PID is a new task (a restart): its handles are opened afresh.
func (c *Collector) start(ctx context.Context, ct runtime.Container) {
	since := c.begin()
	defer c.end()
	c.mu.Lock()
	e, ok := c.tracked[key(ct)]
	dup := ok && !e.gone.Load() && (ct.PID == 0 || ct.PID == e.c.PID)
	c.mu.Unlock()
	if !dup {
		c.add(ctx, ct, since)
	}
}

// netTarget is where a container's network namespace is; ok is false
// when the container names none. Its own process is named by PID and start
// time, so that a PID reused since the listing names no other process's
// namespace.
func netTarget(ct *runtime.Container) (t netns.Target, ok bool) {
	switch {
	case ct.NetNS.PID > 0 && ct.NetNS.PID == ct.PID:
		return netns.TargetProcess(ct.PID, ct.PIDStart), true
	case ct.NetNS.PID > 0:
		return netns.TargetPID(ct.NetNS.PID), true
	case ct.NetNS.Path != "":
		return netns.TargetPath(ct.NetNS.Path), true
	case ct.PID > 0:
		return netns.TargetProcess(ct.PID, ct.PIDStart), true
	}
	return netns.Target{}, false
}

// openNet finds or opens the handle of e's network namespace and joins e
// to it; or sets e.netHost (the host's namespace), or e.netFailed. ct is
// e's container, copied under the lock: e is not tracked yet, or
// collectMu is held (a retry) while a Reconcile may update e.c.
func (c *Collector) openNet(ctx context.Context, e *entry, ct runtime.Container) {
	if ct.NetNS.Host {
		c.setNet(e, nil, false, true)
		return
	}
	t, ok := netTarget(&ct)
	if !ok {
		return
	}
	// The namespace identified is the one opened: the Ref holds it.
	ref, err := c.pool.Identify(ctx, t)
	if err != nil {
		c.countErr(StageOpen, err, "identify netns", "container", e.id, "name", ct.Name)
		c.setNet(e, nil, true, false)
		return
	}
	defer ref.Close()
	id := ref.ID
	if id == c.pool.Home() {
		c.setNet(e, nil, false, true)
		return
	}
	c.mu.Lock()
	if n, ok := c.nets[id]; ok {
		c.joinLocked(e, n)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	h, err := c.pool.Open(ctx, ref.Target(), c.o.netParts)
	if err != nil {
		c.countErr(StageOpen, err, "open netns", "container", e.id, "name", ct.Name)
		c.setNet(e, nil, true, false)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nets[id]
	if ok { // opened meanwhile by another container
		h.Close()
	} else {
		n = &netEntry{id: id, h: h}
		c.nets[id] = n
	}
	c.joinLocked(e, n)
}

func (c *Collector) setNet(e *entry, n *netEntry, failed, host bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.net, e.netFailed, e.netHost = n, failed, host
}

// joinLocked makes e a member of n, unless e was released meanwhile (a
// retry racing an event): then n is closed if e would have been its only
// member.
func (c *Collector) joinLocked(e *entry, n *netEntry) {
	if e.released {
		if len(n.members) == 0 {
			n.h.Close()
			delete(c.nets, n.id)
		}
		return
	}
	n.join(e)
	e.net, e.netFailed = n, false
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
	c.unwatchOOMLocked(e)
	if e.group != nil {
		e.group.Close() // a Stat running meanwhile returns os.ErrClosed
	}
	if n := e.net; n != nil {
		if n.leave(e) {
			n.h.Close()
			delete(c.nets, n.id)
		}
	}
}

// remove stops tracking a container (a stopped or removed event).
func (c *Collector) remove(ct runtime.Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(ct)
	c.gen++
	if c.busy > 0 {
		c.removed[k] = c.gen
	}
	delete(c.pending, k)
	if e, ok := c.tracked[k]; ok {
		delete(c.tracked, k)
		c.departLocked(e, time.Now())
		c.releaseLocked(e)
	}
}

// Collect takes one snapshot of every tracked container (reconciling with
// the runtime first when due) and returns it. The snapshot is the
// Collector's and is reused by the next Collect (not by Run, which has its
// own): use it before then, or copy it (sink.Snapshot.CopyTo). A container
// that vanished mid-scrape is left out of the snapshot, not an error.
// Containers that could not be opened are tried again first, at every
// Collect. A ctx that has ended already gets its error and no snapshot.
func (c *Collector) Collect(ctx context.Context) (*sink.Snapshot, error) {
	return c.collect(ctx, &c.pub)
}

func (c *Collector) collect(ctx context.Context, b *buffer) (*sink.Snapshot, error) {
	c.collectMu.Lock()
	defer c.collectMu.Unlock()
	// A context that ended reads nothing, and above all lists nothing: the
	// end of Run's context also ends its event stream, after which every
	// snapshot would list the runtime.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
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
	c.retryNets(ctx) // before the listing: its own failures wait a snapshot
	if due {
		if err := c.Reconcile(ctx); err != nil && c.Tracked() == 0 {
			return nil, err
		}
	} else {
		c.retryPending(ctx)
	}

	// The snapshot has a slot per entry, read into in place: a slot's
	// Stats keep their slices' capacity from one Collect to the next,
	// whichever container lands there, so nothing is allocated per
	// container and no Stats is kept twice. The entries and their
	// container descriptions are taken under the lock: events and
	// Reconcile change them concurrently.
	snap := &b.snap
	snap.Time = start
	c.mu.Lock()
	entries := b.entries[:0]
	for _, e := range c.tracked {
		entries = append(entries, e)
	}
	nets := b.nets[:0]
	for _, n := range c.nets {
		n.slot = len(nets)
		nets = append(nets, n)
	}
	slices.SortFunc(entries, func(a, b *entry) int { return compareContainers(&a.c, &b.c) })
	snap.Containers = grow(snap.Containers, len(entries))
	b.netStats = grow(b.netStats, len(nets))
	b.netOK = grow(b.netOK, len(nets))
	for i, e := range entries {
		sm := &snap.Containers[i]
		sm.Container = e.c
		sm.Net, sm.NetCarrier = nil, ""
		switch {
		case c.pool == nil:
			sm.Network = sink.NetNotRead
		case e.net != nil && e.net.carrier == e:
			sm.Network = sink.NetOwn // if it reads, below
		case e.net != nil && e.net.carrier != nil:
			sm.Network, sm.NetCarrier = sink.NetShared, e.net.carrier.id
		case e.netHost:
			sm.Network = sink.NetHost
		default:
			sm.Network = sink.NetUnavailable
		}
	}
	c.mu.Unlock()
	b.entries, b.nets = entries, nets

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
				j := i - len(entries)
				b.netOK[j] = c.statNet(ctx, nets[j], &b.netStats[j])
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

	// Leave out the containers that vanished (they left: their OOM
	// kills go to Departed now, not at the next listing); swap, not copy,
	// so that every slot keeps slices of its own.
	n := 0
	c.mu.Lock()
	for i, e := range entries {
		if e.gone.Load() {
			if ctx.Err() == nil { // else not read, not gone
				c.departLocked(e, time.Now())
			}
			continue
		}
		if v, ok := snap.Containers[i].Cgroup.Memory.Events.OOMKill.Get(); ok {
			c.snapshotOOMLocked(e, v, start)
		}
		sm := &snap.Containers[i]
		if sm.Network == sink.NetOwn {
			if j := e.net.slot; b.netOK[j] {
				sm.Net = &b.netStats[j]
			} else {
				sm.Network = sink.NetUnavailable
			}
		}
		snap.Containers[n], snap.Containers[i] = snap.Containers[i], snap.Containers[n]
		n++
	}
	snap.Containers = snap.Containers[:n]
	c.takeDepartedLocked(b, start)
	c.mu.Unlock()
	c.fillSelf(snap, len(entries), len(nets), time.Since(start))
	c.o.log.Debug("metricsd: collected", "containers", len(snap.Containers), "took", time.Since(start))
	return snap, ctx.Err()
}

// grow returns s with length n, keeping the elements (and the slices they
// hold) of its whole capacity.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		s = slices.Grow(s[:cap(s)], n-cap(s))
	}
	return s[:n]
}

// retryPending tries again to open the containers that could not be.
func (c *Collector) retryPending(ctx context.Context) {
	since := c.begin()
	defer c.end()
	c.mu.Lock()
	var retry []runtime.Container
	for _, p := range c.pending {
		retry = append(retry, p.c)
	}
	c.mu.Unlock()
	for _, ct := range retry {
		c.add(ctx, ct, since)
	}
}

// retryNets tries again to open the network namespaces that could not be
// (collectMu is held).
func (c *Collector) retryNets(ctx context.Context) {
	if c.pool == nil {
		return
	}
	type failed struct {
		e  *entry
		ct runtime.Container
	}
	c.mu.Lock()
	var retry []failed
	for _, e := range c.tracked {
		if e.netFailed {
			retry = append(retry, failed{e, e.c})
		}
	}
	c.mu.Unlock()
	for _, r := range retry {
		c.openNet(ctx, r.e, r.ct)
	}
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
	s.SinkDropped, s.Sanitized = 0, sink.Sanitized{}
	for _, k := range c.o.sinks {
		if d, ok := k.(sink.SinkDropper); ok {
			s.SinkDropped += d.Dropped()
		}
		if z, ok := k.(sink.SanitizeReporter); ok {
			s.Sanitized = s.Sanitized.Add(z.Sanitized())
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
		// Removed mid-scrape, or released by an event meanwhile: no error;
		// left out of the snapshot, dropped at the next reconcile. Any
		// other failure (but an ended context, where Stat read nothing)
		// left only the fields of the files at fault Unavailable: the
		// container stays, and the error is counted.
		gone := errors.Is(err, cgroup.ErrNotExist) || errors.Is(err, os.ErrClosed)
		if !gone {
			c.countErr(StageCgroup, err, "stat cgroup", "container", e.id, "name", e.c.Name)
		}
		if gone || ctx.Err() != nil {
			e.gone.Store(true)
		}
	}
}

func (c *Collector) statNet(ctx context.Context, n *netEntry, s *netns.Stats) bool {
	if err := n.h.Stat(ctx, s); err != nil {
		if !errors.Is(err, netns.ErrClosed) { // released by an event meanwhile
			c.countErr(StageNet, err, "stat netns", "netns", n.id.String())
		}
		return false
	}
	return true
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

// Watch applies the runtime's events to the tracked set as they come, in
// the background, until ctx ends or Close: a container is opened when it
// starts and closed when it stops, without a listing. It is for embedders
// that pull snapshots with Collect (a Telegraf-style Gather) and do not use
// Run: while events are applied, Collect lists the runtime only at the first
// snapshot and then once per reconcile interval (WithReconcileInterval),
// not every time. It returns the discoverer's error when it can not watch,
// and an error when events are applied already. An event stream that ends
// before ctx is watched again, after 1 s doubling to 1 min, each failure
// logged (rate-limited) and counted in StageDiscover.
func (c *Collector) Watch(ctx context.Context) error {
	started, err := c.watch(ctx, false)
	if err == nil && !started {
		err = errors.New("metricsd: Watch: events are applied already")
	}
	return err
}

// Re-watching: when the runtime's event stream ends (or, under Run, can not
// be opened), it is watched again after rewatchMin, doubling to rewatchMax;
// the delay starts again from rewatchMin after a stream that lasted
// rewatchMax. Each failure is logged (rate-limited) and counted in
// StageDiscover. Meanwhile every snapshot lists the runtime.
const (
	rewatchMin = time.Second
	rewatchMax = time.Minute
)

// errWatchEnded is counted when the runtime's event stream ends by itself.
var errWatchEnded = errors.New("metricsd: the runtime's event stream ended")

// watch starts applying events; started is false when they are already.
// With retry (Run) a discoverer that can not watch is tried again in the
// background (started is true); without (Watch) its error is returned.
func (c *Collector) watch(ctx context.Context, retry bool) (started bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, ErrClosed
	}
	if c.watchCancel != nil {
		c.mu.Unlock()
		return false, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.watchCancel, c.watchDone = cancel, done
	c.mu.Unlock()
	events, err := c.disc.Watch(wctx)
	if err != nil {
		c.countErr(StageDiscover, err, "watch", "runtime", c.disc.Name())
		if !retry {
			cancel()
			close(done)
			c.mu.Lock()
			c.watchCancel, c.watchDone = nil, nil
			c.mu.Unlock()
			return false, err
		}
		events = nil
	}
	if events != nil {
		c.watching.Store(true)
	}
	go func() {
		defer close(done)
		defer c.watching.Store(false)
		bo := runtime.Backoff{Min: rewatchMin, Max: rewatchMax}
		for {
			if events != nil {
				began := time.Now()
				c.watching.Store(true)
				c.applyEvents(wctx, events)
				c.watching.Store(false)
				if wctx.Err() != nil {
					return
				}
				c.countErr(StageDiscover, errWatchEnded, "watch", "runtime", c.disc.Name())
				if time.Since(began) >= rewatchMax {
					bo.Reset()
				}
			}
			if !runtime.Sleep(wctx, bo.Next()) {
				return
			}
			if events, err = c.disc.Watch(wctx); err != nil {
				c.countErr(StageDiscover, err, "watch", "runtime", c.disc.Name())
				events = nil
			}
		}
	}()
	return true, nil
}

// applyEvents applies the events of one stream until it closes.
func (c *Collector) applyEvents(ctx context.Context, events <-chan runtime.Event) {
	for ev := range events {
		switch ev.Type {
		case runtime.EventStarted:
			if ev.Container.State == "" || ev.Container.State.Live() {
				c.start(ctx, ev.Container)
			}
		case runtime.EventStopped, runtime.EventRemoved:
			c.remove(ev.Container)
		case runtime.EventError:
			c.countErr(StageDiscover, ev.Err, "watch", "runtime", c.disc.Name(), "container", ev.Container.ID)
		}
	}
}

// stopWatch stops applying events and waits until the watcher is done.
func (c *Collector) stopWatch() {
	c.mu.Lock()
	cancel, done := c.watchCancel, c.watchDone
	c.watchCancel, c.watchDone = nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Run collects at every interval, aligned to the interval's multiples of
// wall time, and writes each snapshot to every sink, until ctx ends or
// Close; it also applies the runtime's events as they come (Watch; a
// runtime that can not be watched is tried again as a stream that ends is,
// listed at every snapshot meanwhile). Then it
// flushes and closes the sinks (within WithTimeout) and returns nil. It
// returns an error only when it could not start: after Close, or while
// another Run runs. A Collect meanwhile is safe: it fills a snapshot of its
// own. Between snapshots it hands each OOM kill, as the kernel notifies it,
// to the sinks that implement sink.EventWriter (see oom.go and
// docs/METRICS.md).
func (c *Collector) Run(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.runCancel != nil:
		c.mu.Unlock()
		return errors.New("metricsd: Run is running already")
	}
	ctx, cancel := context.WithCancel(ctx) // Close ends Run, and waits
	done := make(chan struct{})
	c.runCancel, c.runDone = cancel, done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.runCancel, c.runDone = nil, nil
		c.mu.Unlock()
		cancel()
		close(done)
	}()
	defer c.closeSinks()
	// Without events, reconciling listings catch changes (at every
	// snapshot; the failure is counted and logged) until watching again
	// works (rewatchMin, doubling).
	if started, _ := c.watch(ctx, true); started {
		defer c.stopWatch()
	}

	for {
		next := time.Now().Truncate(c.o.interval).Add(c.o.interval)
		if !c.waitUntil(ctx, next) || ctx.Err() != nil { // both may be ready at once
			// The events that came before the end go out before the
			// sinks are closed.
			c.drainEvents(context.WithoutCancel(ctx))
			return nil
		}
		snap, err := c.collect(ctx, &c.own)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return nil
			}
			c.o.log.Warn("metricsd: collect failed", "err", err)
			continue
		}
		w0 := time.Now()
		for _, s := range c.o.sinks {
			wctx, cancel := context.WithTimeout(ctx, c.o.timeout)
			if err := s.Write(wctx, snap); err != nil {
				c.countErr(StageSink, err, "sink write", "sink", fmt.Sprintf("%T", s))
			}
			cancel()
		}
		c.writeNanos.Store(math.Float64bits(time.Since(w0).Seconds()))
	}
}

// waitUntil waits until t, writing the events (OOM kills) that come
// meanwhile to the sinks that take them; it returns false when ctx ends
// first.
func (c *Collector) waitUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tm.C:
			return true
		case ev := <-c.events: // nil when no sink takes events: never ready
			c.writeEvent(ctx, &ev)
		}
	}
}

// closeSinks flushes and closes the sinks, once.
func (c *Collector) closeSinks() error {
	c.mu.Lock()
	done := c.sinksClosed
	c.sinksClosed = true
	c.mu.Unlock()
	if done {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.timeout)
	defer cancel()
	var errs []error
	for _, s := range c.o.sinks {
		if err := s.Close(ctx); err != nil {
			c.countErr(StageSink, err, "sink close", "sink", fmt.Sprintf("%T", s))
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close ends what the Collector started: it ends Run (and waits for it),
// stops applying events, closes the sinks (unless Run has), every handle, the namespace threads and the
// discoverer. A second Close does nothing.
func (c *Collector) Close() error {
	c.mu.Lock()
	cancel, done := c.runCancel, c.runDone
	c.mu.Unlock()
	if cancel != nil { // Run closes the sinks as it ends
		cancel()
		<-done
	}
	c.stopWatch()
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
	clear(c.pending)
	c.mu.Unlock()
	err := c.closeSinks()
	c.closePool()
	return errors.Join(err, c.disc.Close())
}
