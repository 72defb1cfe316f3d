package sink

import (
	"context"
	"strconv"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
)

// Snapshot is one reading of every container at one time.
//
// The collector owns a Snapshot and reuses it from one interval to the next
// (its slices and the cgroup and netns Stats in it keep their capacity), so
// a Sink must not keep a Snapshot, or anything it points to, after Write
// returns: it encodes what it needs, or copies it with CopyTo.
type Snapshot struct {
	// Time is when the snapshot was taken.
	Time time.Time
	// Containers holds one Sample per container.
	Containers []Sample
	// Departed holds the containers that left since the previous snapshot
	// with counters that outlive them (see Departed); they are not in
	// Containers.
	Departed []Departed
	// Self is the collector's own figures for this snapshot; nil when the
	// snapshot does not come from a metricsd.Collector.
	Self *Self
}

// Self is what a collector reports of itself with every snapshot.
type Self struct {
	// ScrapeSeconds is how long taking this snapshot took.
	ScrapeSeconds float64
	// Containers is the number of containers tracked, Namespaces the
	// number of network namespaces open (shared ones count once).
	Containers, Namespaces int
	// Errors counts errors since the collector started, by stage
	// ("discover", "open", "cgroup", "net", "sink"), in that order.
	Errors []StageErrors
	// SinkDropped is the number of points the sinks dropped so far (their
	// buffers full), summed over the sinks that count them (SinkDropper).
	SinkDropped uint64
	// SinkWriteSeconds is how long writing the previous snapshot to every
	// sink took; 0 before the first write.
	SinkWriteSeconds float64
	// Sanitized is what the sinks changed or left out of what containers
	// gave them so far (see Limits), summed over the sinks that count it
	// (SanitizeReporter): a value two sinks change counts twice.
	Sanitized Sanitized
}

// StageErrors is the error count of one collection stage.
type StageErrors struct {
	Stage string
	Count uint64
}

// SinkDropper is implemented by sinks that may drop points (a full buffer):
// Dropped returns how many so far. The collector reports the sum in Self.
type SinkDropper interface {
	Dropped() uint64
}

// DeliveryReporter is implemented by sinks that deliver in the background
// (sink/influx), whose Write only buffers and so can not say whether
// anything arrives: DeliveryError returns the error of the last delivery
// attempt when it failed, and nil once one succeeds (and before any was
// made). A daemon's readiness check (examples/metricsd's /readyz) asks it.
type DeliveryReporter interface {
	DeliveryError() error
}

// Sample is one container's reading in a Snapshot.
type Sample struct {
	// Container is the container as its runtime reports it. Its Labels map
	// is shared, not copied, by CopyTo: treat it as read-only.
	Container runtime.Container
	// Cgroup is the container's cgroup reading. Fields the kernel did not
	// provide are Unavailable and sinks leave them out.
	Cgroup cgroup.Stats
	// Net is the reading of the container's network namespace; nil unless
	// Network is NetOwn. Net.Parts says which parts were filled.
	Net *netns.Stats
	// Network says what Net is, or why it is nil.
	Network NetState
	// NetCarrier is, when Network is NetShared, the ID of the container
	// whose Sample carries the shared namespace's figures.
	NetCarrier string
}

// NetState says what a Sample's network figures are. A network namespace
// shared by several containers (a Kubernetes pod, docker run
// --net=container:) is reported once, on one of them, so that a sum over
// containers counts its traffic once: the pod's sandbox when it is among
// them (as cAdvisor does), else the container that has been in it longest.
type NetState uint8

const (
	// NetNotRead: no network part is read (metricsd.WithNetParts(0)), or
	// the snapshot does not come from a metricsd.Collector.
	NetNotRead NetState = iota
	// NetOwn: Net holds the figures of the container's namespace.
	NetOwn
	// NetHost: the container shares the host's namespace, whose figures
	// are not a container's.
	NetHost
	// NetShared: the namespace is shared, and the figures are on the
	// Sample of the container NetCarrier names.
	NetShared
	// NetUnavailable: the namespace could not be opened or read; the
	// figures are missing (and counted as errors in Self). The cgroup
	// figures are not affected.
	NetUnavailable
)

var netStateNames = [...]string{"not_read", "own", "host", "shared", "unavailable"}

func (s NetState) String() string {
	if int(s) < len(netStateNames) {
		return netStateNames[s]
	}
	return "NetState(" + strconv.Itoa(int(s)) + ")"
}

// Sink receives snapshots.
//
// Write and Close may do I/O and take a context. Write must not keep the
// Snapshot after it returns (see Snapshot). Implementations document whether
// they deliver synchronously (sink/stdout) or buffer and send in the
// background (sink/influx), and are safe for use by several goroutines.
type Sink interface {
	// Write hands the sink one snapshot.
	Write(ctx context.Context, s *Snapshot) error
	// Close flushes what the sink has buffered, within ctx, and releases
	// it. Write must not be called after Close.
	Close(ctx context.Context) error
}

// CopyTo copies s into dst, deeply, reusing dst's slices and netns.Stats: a
// Sink that must keep a snapshot past Write (sink/prometheus keeps the last
// one for scrapes) keeps a dst of its own and copies into it, which in
// steady state allocates nothing. Container label maps are shared.
func (s *Snapshot) CopyTo(dst *Snapshot) {
	dst.Time = s.Time
	if s.Self == nil {
		dst.Self = nil
	} else {
		if dst.Self == nil {
			dst.Self = new(Self)
		}
		errs := append(dst.Self.Errors[:0], s.Self.Errors...)
		*dst.Self = *s.Self
		dst.Self.Errors = errs
	}
	n := len(s.Containers)
	if cap(dst.Containers) < n {
		c := make([]Sample, n, n+n/4)
		copy(c, dst.Containers[:cap(dst.Containers)])
		dst.Containers = c
	}
	dst.Containers = dst.Containers[:n]
	for i := range s.Containers {
		src, d := &s.Containers[i], &dst.Containers[i]
		pod := d.Container.Pod // owned by dst: reuse it
		d.Container = src.Container
		if src.Container.Pod != nil {
			if pod == nil {
				pod = new(runtime.Pod)
			}
			*pod = *src.Container.Pod
			d.Container.Pod = pod
		}
		copyCgroup(&d.Cgroup, &src.Cgroup)
		d.Network, d.NetCarrier = src.Network, src.NetCarrier
		if src.Net == nil {
			d.Net = nil
			continue
		}
		if d.Net == nil {
			d.Net = new(netns.Stats)
		}
		ifs := append(d.Net.Interfaces[:0], src.Net.Interfaces...)
		*d.Net = *src.Net
		d.Net.Interfaces = ifs
	}
	dst.Departed = dst.Departed[:0]
	for i := range s.Departed {
		dst.Departed = append(dst.Departed, s.Departed[i])
		if p := s.Departed[i].Container.Pod; p != nil {
			c := *p
			dst.Departed[i].Container.Pod = &c
		}
	}
}

func copyCgroup(d, s *cgroup.Stats) {
	perCPU := append(d.CPU.PerCPU[:0], s.CPU.PerCPU...)
	devs := append(d.IO.Devices[:0], s.IO.Devices...)
	huge := append(d.Hugetlb.Sizes[:0], s.Hugetlb.Sizes...)
	*d = *s
	d.CPU.PerCPU, d.IO.Devices, d.Hugetlb.Sizes = perCPU, devs, huge
}
