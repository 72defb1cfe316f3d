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
