package sink

import (
	"context"
	"strconv"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
)

// Departed is a container that left since the previous snapshot (its
// group removed, or its runtime reported it stopped), with the counters
// that outlive it: a sink writes them after the container has gone, so
// that a kill that ended the container (its init killed by the OOM killer,
// its group removed before the next snapshot) is counted. A metricsd
// Collector puts a container here when it counted at least one OOM kill:
// in the next of Run's snapshots and in the next of Collect's.
type Departed struct {
	// Container is the container as it was last known. Its Labels map is
	// shared, not copied, by CopyTo: treat it as read-only.
	Container runtime.Container
	// OOMKills is the container's count of OOM kills when it left: the
	// latest the Collector read, at a snapshot, at the kernel's OOM
	// notification or when it let the group go (see cgroup.OOMWatcher).
	// The same counter as the live container's Memory.Events.OOMKill.
	OOMKills cgroup.Value
	// Time is when the container was seen leaving.
	Time time.Time
}

// EventKind says what an Event is.
type EventKind uint8

const (
	// EventOOMKill: the OOM killer killed processes of the container.
	EventOOMKill EventKind = iota + 1
)

func (k EventKind) String() string {
	if k == EventOOMKill {
		return "oom_kill"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is something that happened to a container, reported as it happens
// to the sinks that implement EventWriter (a metricsd Collector's Run
// delivers them): for an OOM kill, when the kernel notified it. The
// snapshots report the same thing as a counter (Memory.Events.OOMKill,
// Departed.OOMKills), so a sink that only writes snapshots loses nothing
// but the moment.
type Event struct {
	Kind EventKind
	// Time is when it was seen: for an OOM kill, when the kernel's count
	// was read after its notification.
	Time time.Time
	// Container is the container it happened to.
	Container runtime.Container
	// Count is how many times it happened (processes killed), at least 1.
	Count uint64
	// Total is the container's counter after it (its count of OOM
	// kills, Memory.Events.OOMKill).
	Total uint64
}

// EventWriter is implemented by the sinks that write events as they come
// (sink/influx and sink/stdout write an OOM kill as a point). WriteEvent
// must not keep e after it returns, and is safe to call concurrently with
// Write.
type EventWriter interface {
	WriteEvent(ctx context.Context, e *Event) error
}
