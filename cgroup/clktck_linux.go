package cgroup

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// atClkTck is AT_CLKTCK of <linux/auxvec.h> (the same on every
// architecture): the auxiliary vector entry holding USER_HZ.
const atClkTck = 17

// clockTicks returns the frequency of the clock ticks cpuacct.stat counts in
// (USER_HZ, which the kernel hands every program in its ELF auxiliary vector
// as AT_CLKTCK: 100 on most architectures); 0, announced, when the vector
// has none. The kernel is the one the FS reads, whatever its root prefix,
// so the program's own vector is the right one.
func clockTicks(log *slog.Logger) uint64 {
	hz, err := auxvClockTicks()
	if err != nil || hz == 0 || hz > 1e9 {
		log.Warn("cgroup: no USER_HZ in the auxiliary vector; cgroup v1 user and system CPU times are unavailable", "hz", hz, "err", err)
		return 0
	}
	return hz
}

func auxvClockTicks() (uint64, error) {
	auxv, err := unix.Auxv()
	if err != nil {
		return 0, err
	}
	for _, kv := range auxv {
		if kv[0] == atClkTck {
			return uint64(kv[1]), nil
		}
	}
	return 0, nil
}
