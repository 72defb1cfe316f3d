package metricsd

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// failureLogEvery is how often at most one cause of failure is logged at
// Warn: a host with a thousand containers and too few descriptors gives one
// line a minute, not a thousand per interval.
const failureLogEvery = time.Minute

// failed logs a failure at Debug, and at Warn once per cause (what failed
// and why: "open netns" and "operation not permitted") per
// failureLogEvery, the next line saying how many were held back.
func (c *Collector) failed(stage Stage, err error, msg string, args ...any) {
	args = append(args, "stage", stage.String(), "err", err)
	c.o.log.Debug("metricsd: "+msg, args...)
	why := reason(err)
	c.fails.Warn(msg+"\x00"+why, "metricsd: "+msg+" failed", append(args, "cause", why)...)
}

// reason is what makes failures the same cause: the errno when there is
// one ("too many open files", "operation not permitted"), else the type of
// the innermost error (a fixed string: error texts carry paths and IDs).
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
		return fmt.Sprintf("%T", err)
	}
}
