//go:build !linux

package runtime

import (
	"context"
	"errors"
	"time"
)

// ProcStart returns when process pid started; only Linux has it.
func ProcStart(ctx context.Context, root string, pid int) (time.Time, error) {
	return time.Time{}, errors.ErrUnsupported
}

// ProcStartAt is ProcStart with the boot time already read; only Linux has it.
func ProcStartAt(ctx context.Context, root string, pid int, boot time.Time) (time.Time, error) {
	return time.Time{}, errors.ErrUnsupported
}

// BootTime is when the host booted; only Linux has it.
func BootTime(ctx context.Context, root string) (time.Time, error) {
	return time.Time{}, errors.ErrUnsupported
}

// ProcStartTicks is when process pid started, in clock ticks since boot;
// only Linux has it.
func ProcStartTicks(ctx context.Context, root string, pid int) (uint64, error) {
	return 0, errors.ErrUnsupported
}
