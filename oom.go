package metricsd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/sink"
)

// OOM kills as they happen. The Collector runs one cgroup.OOMWatcher for
// every container it tracks (one goroutine, one epoll and one inotify
// descriptor in all; a v1 container costs one eventfd). At each of the
// kernel's notifications the watcher reads the container's count of OOM
// kills, so a kill that ends the container (its init killed, its group
// removed before the next snapshot) is counted with the container's
// identity. The Collector then
//   - keeps the container's latest count (entry.oomTotal), the greater of
//     what the watcher read and what the snapshots read;
//   - hands an sink.Event to the sinks that implement sink.EventWriter,
//     while Run runs (where the kernel refuses a watch, a v1 host with a
//     read-only cgroup.event_control, the snapshots make the events: one
//     per snapshot that read a greater count, for the difference);
//   - when the container leaves with at least one kill counted, puts it in
//     Snapshot.Departed: once in Run's snapshots and once in Collect's, so
//     that every sink writes container_oom_events_total after it has gone.

// eventQueue is how many events wait for Run at most; an event that finds
// it full is dropped and counted (the snapshots still count the kill).
const eventQueue = 1024

// departedMaxAge bounds how long a departure waits for a snapshot buffer
// that is used but no longer read (Collect called once, then never).
const departedMaxAge = 10 * time.Minute

// departure is a container that left with OOM kills counted.
type departure struct {
	seq uint64 // Collector.depSeq when it left
	d   sink.Departed
}

// startOOMWatch starts the Collector's OOM watcher, unless the memory
// controller is not read or cgroups can not be watched here (not Linux):
// then the kills are counted at snapshots only, and that is said once.
func (c *Collector) startOOMWatch() {
	if c.o.controllers&cgroup.Memory == 0 {
		return
	}
	w, err := cgroup.NewOOMWatcher(c.onOOM, c.o.log)
	if err != nil {
		c.o.log.Warn("metricsd: OOM kills are read at each snapshot only: a container removed in between loses its last kills", "err", err)
		return
	}
	c.oom = w
	for _, s := range c.o.sinks {
		if _, ok := s.(sink.EventWriter); ok {
			c.events = make(chan sink.Event, eventQueue)
			break
		}
	}
}

// watchOOM starts watching e's OOM kills (e is not tracked yet: nothing
// releases it meanwhile).
func (c *Collector) watchOOM(e *entry) {
	if c.oom == nil || e.group == nil {
		return
	}
	c.mu.Lock()
	c.oomBy[e.group] = e
	c.mu.Unlock()
	err := c.oom.Watch(e.group)
	if err == nil {
		return
	}
	c.mu.Lock()
	delete(c.oomBy, e.group)
	c.mu.Unlock()
	switch {
	case errors.Is(err, cgroup.ErrNoOOMCount) || errors.Is(err, cgroup.ErrClosed) || errors.Is(err, cgroup.ErrNotExist):
		// No memory group, or a kernel before 4.13 (counted at snapshots
		// where there is a count); or the group went already.
		c.o.log.Debug("metricsd: OOM kills not watched", "container", e.id, "name", e.c.Name, "err", err)
		return
	case errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		// cgroup v1 registers through cgroup.event_control, which a
		// read-only /sys/fs/cgroup (systemd's ProtectControlGroups, a
		// read-only hostPath mount) or a process that is not root can
		// not write: the same for every container, so said once.
		if c.oomRefused.CompareAndSwap(false, true) {
			c.o.log.Warn("metricsd: cgroup v1 OOM kills are read at each snapshot only (cgroup.event_control is not writable here): a container removed in between loses its last kills", "err", err)
		}
		return
	}
	c.countErr(StageOpen, err, "watch OOM kills", "container", e.id, "name", e.c.Name)
}

// unwatchOOMLocked stops watching e's OOM kills, and reports those the
// watcher had not reported yet (c.mu is held).
func (c *Collector) unwatchOOMLocked(e *entry) {
	if c.oom == nil || e.group == nil || c.oomBy[e.group] != e {
		return
	}
	delete(c.oomBy, e.group)
	if k, ok := c.oom.Unwatch(e.group); ok {
		c.oomKillLocked(e, k)
	}
}

// onOOM is the OOM watcher's handler: it runs on the watcher's goroutine.
func (c *Collector) onOOM(k cgroup.OOMKill) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.oomBy[k.Group]
	if e == nil {
		return // unwatched meanwhile: Unwatch reported what was left
	}
	if k.Err != nil {
		// The kernel notified a memory event (v2) or an OOM (v1) of a
		// group removed before its count could be read: a kill may have
		// gone uncounted. Said and counted, never silent.
		c.countErr(StageCgroup, k.Err, "read OOM kills", "container", e.id, "name", e.c.Name)
		return
	}
	c.oomKillLocked(e, k)
}

// snapshotOOMLocked notes e's count of OOM kills as a snapshot read it, at
// now (c.mu is held). For a container the watcher does not watch (a v1
// host whose cgroup.event_control is read-only: the warned fallback), the
// snapshots make the events: a count greater than the previous snapshot's
// is an event for the difference. The first read is the baseline, as
// Watch's is: kills before it are in the total, not in an event.
func (c *Collector) snapshotOOMLocked(e *entry, v uint64, now time.Time) {
	old := e.oomTotal.Load()
	e.noteOOMKills(v)
	if c.oom == nil || c.oomBy[e.group] == e {
		return // no watcher (no events either), or the watcher reports
	}
	first := !e.oomRead
	e.oomRead = true
	if !first && v > old {
		c.oomKillLocked(e, cgroup.OOMKill{Group: e.group, Kills: v - old, Total: v, Time: now})
	}
}

// oomKillLocked notes processes of e killed by the OOM killer and queues
// the event for Run (c.mu is held).
func (c *Collector) oomKillLocked(e *entry, k cgroup.OOMKill) {
	e.noteOOMKills(k.Total)
	c.o.log.Info("metricsd: OOM kill", "container", e.id, "name", e.c.Name, "kills", k.Kills, "total", k.Total)
	if c.events == nil || c.runCancel == nil {
		return // no sink takes events, or Run does not run
	}
	select {
	case c.events <- sink.Event{Kind: sink.EventOOMKill, Time: k.Time, Container: e.c, Count: k.Kills, Total: k.Total}:
	default:
		c.countErr(StageSink, errEventQueueFull, "queue OOM kill event", "container", e.id, "name", e.c.Name)
	}
}

var errEventQueueFull = fmt.Errorf("metricsd: %d events wait already; the snapshots still count the kill", eventQueue)

// noteOOMKills keeps n as e's count of OOM kills if it is greater.
func (e *entry) noteOOMKills(n uint64) {
	for {
		old := e.oomTotal.Load()
		if n <= old || e.oomTotal.CompareAndSwap(old, n) {
			return
		}
	}
}

// departLocked releases a container that left, and keeps it for the next
// snapshots' Departed when it counted an OOM kill (c.mu is held). A second
// call does nothing.
func (c *Collector) departLocked(e *entry, now time.Time) {
	if e.departed {
		return
	}
	e.departed = true
	c.unwatchOOMLocked(e)
	if n := e.oomTotal.Load(); n > 0 {
		c.depSeq++
		c.departures = append(c.departures, departure{seq: c.depSeq, d: sink.Departed{Container: e.c, OOMKills: cgroup.Value{V: n, State: cgroup.Known}, Time: now}})
	}
}

// takeDepartedLocked puts in b's snapshot the departures it has not had,
// and forgets those every snapshot buffer in use has had (or that waited
// too long) (c.mu is held).
func (c *Collector) takeDepartedLocked(b *buffer, now time.Time) {
	snap := &b.snap
	snap.Departed = snap.Departed[:0]
	for _, d := range c.departures {
		if d.seq > b.depTaken {
			snap.Departed = append(snap.Departed, d.d)
		}
	}
	b.depTaken, b.used = c.depSeq, true
	low := b.depTaken
	for _, o := range [...]*buffer{&c.pub, &c.own} {
		if o.used {
			low = min(low, o.depTaken)
		}
	}
	n := 0
	for _, d := range c.departures {
		if d.seq > low && now.Sub(d.d.Time) < departedMaxAge {
			c.departures[n] = d
			n++
		}
	}
	clear(c.departures[n:])
	c.departures = c.departures[:n]
}

// writeEvent hands an event to every sink that takes events.
func (c *Collector) writeEvent(ctx context.Context, ev *sink.Event) {
	for _, s := range c.o.sinks {
		w, ok := s.(sink.EventWriter)
		if !ok {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, c.o.timeout)
		if err := w.WriteEvent(wctx, ev); err != nil {
			c.countErr(StageSink, err, "sink event", "sink", fmt.Sprintf("%T", s))
		}
		cancel()
	}
}

// drainEvents writes the events waiting, without waiting for more.
func (c *Collector) drainEvents(ctx context.Context) {
	for {
		select {
		case ev := <-c.events:
			c.writeEvent(ctx, &ev)
		default:
			return
		}
	}
}
