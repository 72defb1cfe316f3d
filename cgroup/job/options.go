package job

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"strings"

	"github.com/metricsd/metricsd/cgroup"
)

// Option configures Start and Run. An option that is given a value it can
// not use returns an error, and Start fails with it before running anything.
type Option func(*config) error

type config struct {
	fs        *cgroup.FS
	parent    string
	parentSet bool
	name      string
	log       *slog.Logger
	cpu       float64 // cores; 0: no limit
	memory    uint64  // bytes; 0: no limit
	pids      uint64  // tasks; 0: no limit
	kill      bool
	// placeFault, a test hook, fails the move of the command into one
	// hierarchy (cgroup.procs is the file it would write) on v1, a fault
	// the tests can not cause for real; nil: none.
	placeFault func(procs string) error
}

// WithParent makes the job's group under the group at path, a cgroup path
// as /proc/self/cgroup shows them ("/ci/jobs"), the same in every
// hierarchy; it must exist. On cgroup v2 its cgroup.subtree_control must
// enable the controllers the job is to be metered by (cpu, memory, io,
// pids): those it does not enable give Unavailable figures and a
// *MissingError. The default is beside the calling process's own group
// (see the package documentation).
func WithParent(p string) Option {
	return func(c *config) error {
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.ContainsRune(p, 0) || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
			return fmt.Errorf("job: WithParent(%q): not a clean absolute cgroup path", p)
		}
		c.parent, c.parentSet = p, true
		return nil
	}
}

// WithName names the job's group (one path element). The default is
// "metricsd-job-" and 12 random hex digits. A group of that name must not
// exist already: Start fails rather than share one (or report another's
// figures).
func WithName(name string) Option {
	return func(c *config) error {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00\n") || len(name) > 255 {
			return fmt.Errorf("job: WithName(%q): not a single path element", name)
		}
		c.name = name
		return nil
	}
}

// WithFS reads and makes groups through fs (its host root and logger). The
// default is cgroup.NewFS with the job's logger.
func WithFS(fs *cgroup.FS) Option {
	return func(c *config) error {
		if fs == nil {
			return errors.New("job: WithFS(nil)")
		}
		c.fs = fs
		return nil
	}
}

// WithLogger logs what Start and Wait do (the group made, how the command
// was placed, a fallback) at debug level, and problems at warning level.
// The default discards it.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("job: WithLogger(nil)")
		}
		c.log = l
		return nil
	}
}

// WithCPULimit limits the job to cores CPUs' worth of time per 100 ms
// period (cgroup v2 cpu.max, v1 cpu.cfs_quota_us and cpu.cfs_period_us).
// Like every limit, if it can not be set the command is not started.
func WithCPULimit(cores float64) Option {
	return func(c *config) error {
		if !(cores > 0) || math.IsInf(cores, 0) || cores*cpuPeriodUsec < 1000 {
			return fmt.Errorf("job: WithCPULimit(%v): want at least 0.01 cores", cores)
		}
		c.cpu = cores
		return nil
	}
}

// WithMemoryLimit limits the job's memory (cgroup v2 memory.max, v1
// memory.limit_in_bytes), page cache included: past it the kernel reclaims,
// then kills (Totals.OOMKills counts the kills). Swap is left as the parent
// allows it.
func WithMemoryLimit(bytes uint64) Option {
	return func(c *config) error {
		if bytes < 1<<20 || bytes > math.MaxInt64 {
			return fmt.Errorf("job: WithMemoryLimit(%d): want 1 MiB to 2^63-1 bytes", bytes)
		}
		c.memory = bytes
		return nil
	}
}

// WithPidsLimit limits the number of tasks (processes and threads) in the
// job (pids.max): a fork past it fails with EAGAIN, and Totals.ForkFailures
// counts the failures.
func WithPidsLimit(n uint64) Option {
	return func(c *config) error {
		if n < 1 || n > math.MaxInt32 {
			return fmt.Errorf("job: WithPidsLimit(%d): want 1 to 2^31-1", n)
		}
		c.pids = n
		return nil
	}
}

// WithKillLeftovers has Wait kill what the command leaves running in its
// group (daemons, background jobs) as soon as the command itself has
// exited. Without it Wait waits for them to exit too, or until the context
// ends.
func WithKillLeftovers() Option {
	return func(c *config) error { c.kill = true; return nil }
}

// cpuPeriodUsec is the CFS period WithCPULimit sets, the kernel's default.
const cpuPeriodUsec = 100000

func newConfig(opts []Option) (config, error) {
	var c config
	var errs []error
	for _, o := range opts {
		if err := o(&c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.placeFault == nil {
		c.placeFault = func(string) error { return nil }
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, errors.Join(errs...)
}
