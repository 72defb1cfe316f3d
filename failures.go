package metricsd

import (
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// failureLogEvery is how often at most one cause of failure is logged at
// Warn: a host with a thousand containers and too few descriptors gives one
// line a minute, not a thousand per interval.
const failureLogEvery = time.Minute

// failureLog logs failures at Warn, one line per cause (what failed and
// why: "open netns" and "operation not permitted") at most once per
// failureLogEvery, saying how many more there were since the line before.
// Every failure is also logged at Debug.
type failureLog struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	seen  map[string]*cause
}

type cause struct {
	logged     time.Time
	suppressed int
}

func newFailureLog(l *slog.Logger, every time.Duration) *failureLog {
	return &failureLog{log: l, every: every, seen: make(map[string]*cause)}
}

func (f *failureLog) failed(stage Stage, err error, msg string, args ...any) {
	args = append(args, "stage", stage.String(), "err", err)
	f.log.Debug("metricsd: "+msg, args...)
	why := reason(err)
	key := msg + "\x00" + why
	now := time.Now()
	f.mu.Lock()
	c, ok := f.seen[key]
	if !ok {
		c = &cause{}
		f.seen[key] = c
	}
	if ok && now.Sub(c.logged) < f.every {
		c.suppressed++
		f.mu.Unlock()
		return
	}
	more := c.suppressed
	c.logged, c.suppressed = now, 0
	f.mu.Unlock()
	args = append(args, "cause", why)
	if more > 0 {
		args = append(args, "more_since_last_line", more)
	}
	f.log.Warn("metricsd: "+msg+" failed", args...)
}

// reason is what makes failures the same cause: the errno when there is
// one ("too many open files", "operation not permitted"), else the text of
// the innermost error.
func reason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				err = next
				continue
			}
		case interface{ Unwrap() []error }:
			if next := u.Unwrap(); len(next) > 0 && next[0] != nil {
				err = next[0]
				continue
			}
		}
		return err.Error()
	}
}
