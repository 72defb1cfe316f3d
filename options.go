package metricsd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
)

// options are New's settings. A zero options is not valid: defaults()
// gives the default of each, which the Option comments state.
type options struct {
	discoverer     runtime.Discoverer
	root           string
	interval       time.Duration
	timeout        time.Duration
	sinks          []sink.Sink
	controllers    cgroup.Controllers
	netParts       netns.Parts
	labels         []string
	labelsSet      bool // WithLabels was given
	allLabels      bool
	concurrency    int
	limitMaxAge    time.Duration
	reconcileEvery int           // > 0: every n snapshots
	reconcileAfter time.Duration // else: when this much time has passed
	reconcileSet   string        // the reconcile option given, if any
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
		limitMaxAge:    time.Minute,
		reconcileAfter: time.Minute,
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Option configures New. Options may come in any order; an invalid value,
// or two options that contradict each other, make New fail and name the
// option.
type Option func(*options) error

// WithDiscoverer sets where containers come from. Without it the Collector
// walks the cgroup tree beneath the host root (runtime/cgroupfs), which
// needs no daemon and links no runtime client; detect.New
// (runtime/detect) picks Docker and containerd where they answer, and links
// both clients. The Collector closes it on Close. A nil discoverer is an
// error (a failed constructor's result, not a request for the default).
func WithDiscoverer(d runtime.Discoverer) Option {
	return func(o *options) error {
		if d == nil {
			return errors.New("WithDiscoverer: nil discoverer")
		}
		o.discoverer = d
		return nil
	}
}

// WithHostRoot sets the host root prefix ("/host" for an agent in a
// container with the host's /, /proc and /sys mounted there). The default,
// "/" (or ""), is the host's own root. It must be an absolute path.
func WithHostRoot(root string) Option {
	return func(o *options) error {
		if root == "" {
			root = "/"
		}
		if !filepath.IsAbs(root) {
			return fmt.Errorf("WithHostRoot: %q is not an absolute path", root)
		}
		o.root = filepath.Clean(root)
		return nil
	}
}

// WithInterval sets how often Run collects (default 10 s); it must be
// positive.
func WithInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithInterval: %v is not positive", d)
		}
		o.interval = d
		return nil
	}
}

// WithTimeout bounds each runtime listing, sink write and the final flush
// (default 5 s); it must be positive.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithTimeout: %v is not positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithSinks adds sinks that Run writes every snapshot to. The Collector
// closes them, once: when Run ends, or at Close.
func WithSinks(s ...sink.Sink) Option {
	return func(o *options) error {
		for i, k := range s {
			if k == nil {
				return fmt.Errorf("WithSinks: sink %d is nil", i)
			}
		}
		o.sinks = append(o.sinks, s...)
		return nil
	}
}

// WithControllers chooses the cgroup controllers to read (default
// cgroup.All); at least one.
func WithControllers(c cgroup.Controllers) Option {
	return func(o *options) error {
		if c == 0 || c&^cgroup.All != 0 {
			return fmt.Errorf("WithControllers: %#x is not a non-empty set of cgroup controllers", uint32(c))
		}
		o.controllers = c
		return nil
	}
}

// WithNetParts chooses the network statistics to read (default the cheap
// tier: net/dev and sockstat); 0 reads none and starts no namespace threads.
func WithNetParts(p netns.Parts) Option {
	return func(o *options) error {
		if p&^netns.TierAll != 0 {
			return fmt.Errorf("WithNetParts: %#x names parts that do not exist", uint32(p))
		}
		o.netParts = p
		return nil
	}
}

// WithLabels is the allow-list of container labels kept in snapshots; all
// others are dropped before any sink sees them (default: none). Which of the
// kept ones become tags is each sink's choice (sink.Tags). Given with
// WithAllLabels, in either order, every label is kept.
func WithLabels(keys ...string) Option {
	return func(o *options) error {
		for _, k := range keys {
			if k == "" {
				return errors.New("WithLabels: an empty label key")
			}
		}
		o.labels = append(o.labels, keys...)
		o.labelsSet = true
		return nil
	}
}

// WithAllLabels keeps every container label in snapshots. Sinks still
// export only those their sink.Tags list.
func WithAllLabels() Option { return func(o *options) error { o.allLabels = true; return nil } }

// WithConcurrency sets how many goroutines at most read cgroups and
// namespaces in one Collect (default the number of CPUs, at most 8); at
// least 1. Collect starts one per 128 containers and namespaces up to that
// number: for fewer the handoff to other threads costs more CPU than it
// saves wall time.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("WithConcurrency: %d is not positive", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithLimitMaxAge sets how old the limits in a snapshot may be (default one
// minute, the interval of the listings with events applied): each
// container's limit files (CPU quota, period and weight, memory, swap, pids
// and hugetlb limits) are re-read when the values read before are older
// than d, and at every listing of the runtime; in between their last values
// are reported. Limits change only when written (docker update, a pod
// resize), yet they are about a third of the files a v1 container's cgroup
// has, so at a 1 s interval this saves that share of the reads; with an age
// the limit files are also held closed between those reads, 6 descriptors
// fewer per v1 container, opened again when due (which costs more than
// reading kept ones: hence an age of a minute rather than seconds). 0 reads
// every file at every snapshot, every one kept open; negative is an error.
// See cgroup.WithLimitMaxAge.
func WithLimitMaxAge(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("WithLimitMaxAge: %v is negative", d)
		}
		o.limitMaxAge = d
		return nil
	}
}

// WithReconcileEvery makes every n-th snapshot (n > 0) start with a full
// listing of the runtime, which catches events that were missed. By
// default, Collect with no events applied (neither Run nor Watch) lists
// before every snapshot (nothing else would see new containers); with
// events applied, a listing comes at the first snapshot and then at most
// once a minute (WithReconcileInterval): a listing costs the runtime and
// the collector far more than a scrape (Docker: one inspect per container).
// It and WithReconcileInterval are alternatives: giving both is an error.
func WithReconcileEvery(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("WithReconcileEvery: %d is not positive", n)
		}
		if o.reconcileSet != "" && o.reconcileSet != "WithReconcileEvery" {
			return fmt.Errorf("WithReconcileEvery: %s was given too; choose one", o.reconcileSet)
		}
		o.reconcileEvery, o.reconcileSet = n, "WithReconcileEvery"
		return nil
	}
}

// WithReconcileInterval sets how much time passes at least between two full
// listings while events are applied (default one minute); it must be
// positive. Giving it with WithReconcileEvery is an error.
func WithReconcileInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithReconcileInterval: %v is not positive", d)
		}
		if o.reconcileSet != "" && o.reconcileSet != "WithReconcileInterval" {
			return fmt.Errorf("WithReconcileInterval: %s was given too; choose one", o.reconcileSet)
		}
		o.reconcileAfter, o.reconcileEvery, o.reconcileSet = d, 0, "WithReconcileInterval"
		return nil
	}
}

// WithLogger sets the logger; the default (and nil) discards. Failures
// that lose data are logged at Warn, at most once a minute per cause, each
// at Debug.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.log = l
		}
		return nil
	}
}
