package netns

import "log/slog"

// Option configures a Pool.
type Option func(*config)

type config struct {
	root string
	size int
	log  *slog.Logger

	// skipRestore is a test hook: when it returns true the hop leaves the
	// thread in the target namespace instead of returning home, so the
	// check after the hop fails for real. Nil outside tests.
	skipRestore func() bool
	// startFault is a test hook: an error it returns fails the start of a
	// replacement hop thread, a failure left for no test to cause for
	// real. Nil outside tests.
	startFault func() error
}

func defaultConfig() config {
	return config{size: 1, log: slog.New(slog.DiscardHandler)}
}

// WithRoot sets the host root under which TargetPID finds /proc, for a
// program that runs in a container with the host's /proc mounted elsewhere
// (e.g. "/host"). The default is "" (this system's /proc).
func WithRoot(root string) Option { return func(c *config) { c.root = root } }

// WithSize sets the number of hop threads (default 1). Hops happen when a
// container appears, not per scrape, so one or two are plenty.
func WithSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.size = n
		}
	}
}

// WithLogger sets the logger (default: discard). The pool logs a hop thread
// it had to dispose of, and a replacement that failed to start, at Error
// (from another goroutine: the thread may be in a container's namespace,
// where a handler that dials out would dial from), and each hop at Debug.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}
