// Package ratelog writes at most one log line per cause per interval, so
// that a failure repeated at every request or scrape is visible at the
// default level without flooding the log. The next line written for a
// cause says how many were held back since the last one.
//
//	rl := ratelog.New(log, time.Minute)
//	rl.Warn("read-only", "refused a request that would change something", "method", r.Method, "path", r.URL.Path)
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxCauses bounds the causes remembered; causes are fixed strings chosen
// by the program, so the bound is only a guard.
const maxCauses = 1024

// Logger rate-limits an *slog.Logger per cause. It is safe for concurrent
// use. A nil *Logger logs nothing.
type Logger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time // time.Now; tests set it

	mu     sync.Mutex
	causes map[string]*tally
}

type tally struct {
	last time.Time // when a line was last written
	held int       // lines held back since
}

// New returns a Logger that writes to log at most one line per cause every
// interval (at least a millisecond). A nil log discards everything.
func New(log *slog.Logger, every time.Duration) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Logger{log: log, every: max(every, time.Millisecond), now: time.Now, causes: make(map[string]*tally)}
}

// Warn logs at slog.LevelWarn; see Log.
func (l *Logger) Warn(cause, msg string, args ...any) bool {
	return l.Log(context.Background(), slog.LevelWarn, cause, msg, args...)
}

// Error logs at slog.LevelError; see Log.
func (l *Logger) Error(cause, msg string, args ...any) bool {
	return l.Log(context.Background(), slog.LevelError, cause, msg, args...)
}

// Log writes msg with args unless a line for the same cause was written
// less than the interval ago; then it only counts it, and the next line
// written for the cause carries "held_back"=<count>. cause is a fixed
// string chosen by the program, never input. It reports whether it wrote.
func (l *Logger) Log(ctx context.Context, level slog.Level, cause, msg string, args ...any) bool {
	if l == nil || !l.log.Enabled(ctx, level) {
		return false
	}
	now := l.now()
	l.mu.Lock()
	c := l.causes[cause]
	if c == nil {
		if len(l.causes) >= maxCauses {
			for k, v := range l.causes {
				if now.Sub(v.last) >= l.every {
					delete(l.causes, k)
				}
			}
		}
		c = &tally{}
		if len(l.causes) < maxCauses {
			l.causes[cause] = c
		}
	} else if now.Sub(c.last) < l.every {
		c.held++
		l.mu.Unlock()
		return false
	}
	held := c.held
	c.last, c.held = now, 0
	l.mu.Unlock()
	if held > 0 {
		args = append(args[:len(args):len(args)], slog.Int("held_back", held))
	}
	l.log.Log(ctx, level, msg, args...)
	return true
}
