package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/metricsd/metricsd/internal/proc"
)

// ProcStart returns when process pid started, from <root>/proc/<pid>/stat
// and the boot time in <root>/proc/stat. A process that is gone (or a
// zombie) gives an error matching os.ErrNotExist.
func ProcStart(ctx context.Context, root string, pid int) (time.Time, error) {
	boot, err := BootTime(ctx, root)
	if err != nil {
		return time.Time{}, err
	}
	return ProcStartAt(ctx, root, pid, boot)
}

// ProcStartAt is ProcStart with the boot time already read (BootTime), for
// callers that look up many processes.
func ProcStartAt(ctx context.Context, root string, pid int, boot time.Time) (time.Time, error) {
	ticks, err := ProcStartTicks(ctx, root, pid)
	if err != nil {
		return time.Time{}, err
	}
	return TicksTime(boot, ticks), nil
}

// ProcStartTicks is when process pid started, in clock ticks (USER_HZ)
// since boot: field 22 of <root>/proc/<pid>/stat. With the PID it names one
// process for as long as the host runs (a PID reused later has a later
// start), which is how the adapters tell that a container still runs the
// task they inspected. A process that is gone (or a zombie) gives an error
// matching os.ErrNotExist.
func ProcStartTicks(ctx context.Context, root string, pid int) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if pid <= 0 {
		return 0, fmt.Errorf("runtime: invalid pid %d", pid)
	}
	b, err := os.ReadFile(filepath.Join(root, "proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	ticks, err := proc.ParseStatStart(b)
	if err != nil {
		return 0, fmt.Errorf("runtime: /proc/%d/stat: %w", pid, err)
	}
	return ticks, nil
}

// BootTime is when the host booted: btime in <root>/proc/stat.
func BootTime(ctx context.Context, root string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	b, err := os.ReadFile(filepath.Join(root, "proc", "stat"))
	if err != nil {
		return time.Time{}, err
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			s, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("runtime: /proc/stat btime: %w", err)
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("runtime: no btime in /proc/stat")
}
