package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// userHZ is the kernel's USER_HZ, the unit of /proc/<pid>/stat times: 100 on
// every Linux architecture Go supports.
const userHZ = 100

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
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	if pid <= 0 {
		return time.Time{}, fmt.Errorf("runtime: invalid pid %d", pid)
	}
	b, err := os.ReadFile(filepath.Join(root, "proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return time.Time{}, err
	}
	// Fields after the command, which may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return time.Time{}, fmt.Errorf("runtime: malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return time.Time{}, fmt.Errorf("runtime: malformed /proc/%d/stat", pid)
	}
	if string(f[0]) == "Z" || string(f[0]) == "X" {
		return time.Time{}, fmt.Errorf("runtime: process %d exited: %w", pid, os.ErrNotExist)
	}
	ticks, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("runtime: /proc/%d/stat starttime: %w", pid, err)
	}
	sec, rem := ticks/userHZ, ticks%userHZ
	return boot.Add(time.Duration(sec)*time.Second + time.Duration(rem)*(time.Second/userHZ)), nil
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
