package runtime

import "time"

// userHZ is the kernel's USER_HZ, the unit of /proc/<pid>/stat times: 100 on
// every Linux architecture Go supports.
const userHZ = 100

// TicksTime is the wall time of a process start time in clock ticks since
// boot (ProcStartTicks, Container.PIDStart), given the boot time (BootTime).
func TicksTime(boot time.Time, ticks uint64) time.Time {
	sec, rem := ticks/userHZ, ticks%userHZ
	return boot.Add(time.Duration(sec)*time.Second + time.Duration(rem)*(time.Second/userHZ))
}
