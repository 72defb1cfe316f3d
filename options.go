package metricsd

import (
	"io"
	"log/slog"
	goruntime "runtime"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

type options struct {
	discoverer     runtime.Discoverer
	root           string
	interval       time.Duration
	timeout        time.Duration
	sinks          []sink.Sink
	controllers    cgroup.Controllers
	netParts       netns.Parts
	labels         []string
	allLabels      bool
	concurrency    int
	limitMaxAge    time.Duration
	reconcileEvery int           // > 0: every n snapshots
	reconcileAfter time.Duration // else: when this much time has passed
	log            *slog.Logger
}

func defaults() options {
	return options{
		root:           "/",
		interval:       10 * time.Second,
		timeout:        5 * time.Second,
		controllers:    cgroup.All,
		netParts:       netns.TierCheap,
		concurrency:    max(1, min(goruntime.NumCPU(), 8)),
		limitMaxAge:    10 * time.Second,
		reconcileAfter: time.Minute,
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Option configures New.
type Option func(*options)

// WithDiscoverer sets where containers come from. The default walks the
// cgroup tree beneath the host root (runtime/cgroupfs), which needs no
// daemon and links no runtime client; detect.New (runtime/detect) picks
// Docker and containerd where they answer, and links both clients. The
// Collector closes it on Close.
func WithDiscoverer(d runtime.Discoverer) Option { return func(o *options) { o.discoverer = d } }

// WithHostRoot sets the host root prefix ("/host" for an agent in a
// container with the host's /, /proc and /sys mounted there).
func WithHostRoot(root string) Option { return func(o *options) { o.root = root } }

// WithInterval sets how often Run collects (default 10 s).
func WithInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithTimeout bounds each runtime listing, sink write and the final flush
// (default 5 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithSinks adds sinks that Run writes every snapshot to.
func WithSinks(s ...sink.Sink) Option { return func(o *options) { o.sinks = append(o.sinks, s...) } }

// WithControllers chooses the cgroup controllers to read (default all).
func WithControllers(c cgroup.Controllers) Option { return func(o *options) { o.controllers = c } }

// WithNetParts chooses the network statistics to read (default the cheap
// tier: net/dev and sockstat); 0 reads none and starts no namespace threads.
func WithNetParts(p netns.Parts) Option { return func(o *options) { o.netParts = p } }

// WithLabels is the allow-list of container labels kept in snapshots; all
// others are dropped before any sink sees them (default: none). Which of the
// kept ones become tags is each sink's choice (sink.Tags).
func WithLabels(keys ...string) Option {
	return func(o *options) { o.labels = append(o.labels, keys...); o.allLabels = false }
}

// WithAllLabels keeps every container label in snapshots. Sinks still
// export only those their sink.Tags list.
func WithAllLabels() Option { return func(o *options) { o.allLabels = true } }

// WithConcurrency sets how many goroutines at most read cgroups and
// namespaces in one Collect (default the number of CPUs, at most 8). Collect
// starts one per 128 containers and namespaces up to that number: for fewer
// the handoff to other threads costs more CPU than it saves wall time.
func WithConcurrency(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.concurrency = n
		}
	}
}

// WithLimitMaxAge sets how old the limits in a snapshot may be (default
// 10 s): each container's limit files (CPU quota, period and weight, memory,
// swap, pids and hugetlb limits) are re-read when the values read before are
// older than d, and at every listing of the runtime; in between their last
// values are reported. Limits change only when written (docker update, a pod
// resize), yet they are about a third of the files a v1 container's cgroup
// has, so at a 1 s interval this saves that share of the reads. 0 reads
// every file at every snapshot. See cgroup.WithLimitMaxAge.
func WithLimitMaxAge(d time.Duration) Option {
	return func(o *options) { o.limitMaxAge = max(d, 0) }
}

// WithReconcileEvery makes every n-th snapshot start with a full listing of
// the runtime, which catches events that were missed. By default, Collect
// used alone lists before every snapshot (nothing else would see new
// containers), and under Run, whose events keep the set current, a listing
// comes at the first snapshot and then at most once a minute
// (WithReconcileInterval): a listing costs the runtime and the collector far
// more than a scrape (Docker: one inspect per container).
func WithReconcileEvery(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.reconcileEvery = n
		}
	}
}

// WithReconcileInterval sets how much time passes at least between two full
// listings under Run (default one minute); it replaces WithReconcileEvery.
func WithReconcileInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.reconcileAfter, o.reconcileEvery = d, 0
		}
	}
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}
