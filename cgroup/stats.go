package cgroup

// Stats is one reading of a cgroup, the same model for cgroup v1 and v2.
// The caller owns it and passes it to Group.Stat, which fills it in place:
// its slices keep their capacity from one Stat to the next, so a reused Stats
// costs no allocation.
//
// Every scalar is a Value whose zero State is Unavailable: a field whose file
// or key the kernel did not provide, or whose controller was not requested,
// stays Unavailable and never reads as a silent zero. The comment on each field
// gives its unit and where it comes from: "v1:" the cgroup v1 file (and key),
// "v2:" the cgroup v2 file (and key).
type Stats struct {
	CPU      CPUStats
	Memory   MemoryStats
	IO       IOStats
	Pids     PidsStats
	Hugetlb  HugetlbStats
	Pressure PressureStats
}

// CPUStats holds the cpu and cpuacct controllers' figures.
type CPUStats struct {
	// Usage is the CPU time used by the group's tasks, in nanoseconds.
	// v1: the sum of cpuacct.usage_percpu, which is how the kernel computes
	// cpuacct.usage (read where usage_percpu is absent). v2: cpu.stat
	// usage_usec × 1000.
	Usage Value
	// User is the CPU time spent in user mode, in nanoseconds.
	// v1: cpuacct.stat user, in ticks of USER_HZ (read from the ELF
	// auxiliary vector, AT_CLKTCK), × 10^9 / USER_HZ. v2: cpu.stat
	// user_usec × 1000.
	//
	// On v1 the kernel splits the exact Usage in the proportion of its
	// tick-sampled user and system times, so User+System is Usage less
	// at most one tick each (10 ms at USER_HZ 100), the same figures Docker
	// and cAdvisor report; cpuacct.usage_all's per-CPU columns, the samples
	// themselves, stray from Usage by 10% and more.
	User Value
	// System is the CPU time spent in kernel mode, in nanoseconds.
	// v1: cpuacct.stat system × 10^9 / USER_HZ. v2: cpu.stat system_usec
	// × 1000.
	System Value
	// PerCPU is the CPU time used on each CPU, in nanoseconds, indexed by CPU
	// number. v1: cpuacct.usage_percpu. Empty when unavailable (there is at
	// least one CPU): always on v2, whose kernel does not provide it.
	PerCPU []uint64

	// Periods is the number of CFS enforcement periods that have elapsed
	// while the group had runnable tasks. v1: cpu.stat nr_periods. v2: cpu.stat
	// nr_periods (present only with the cpu controller enabled).
	Periods Value
	// ThrottledPeriods is the number of periods in which the group was
	// throttled. v1/v2: cpu.stat nr_throttled.
	ThrottledPeriods Value
	// ThrottledTime is the total time the group was throttled, in
	// nanoseconds. v1: cpu.stat throttled_time. v2: cpu.stat
	// throttled_usec × 1000.
	ThrottledTime Value
	// Bursts is the number of periods in which a burst above quota occurred.
	// v1/v2: cpu.stat nr_bursts (Linux 5.14+).
	Bursts Value
	// BurstTime is the time spent above quota in bursts, in nanoseconds.
	// v1: cpu.stat burst_time. v2: cpu.stat burst_usec × 1000.
	BurstTime Value

	// Quota is the CPU time the group may use per Period, in nanoseconds;
	// Unlimited when no quota is set. v1: cpu.cfs_quota_us × 1000 (-1 is
	// Unlimited). v2: cpu.max first field × 1000 ("max" is Unlimited).
	Quota Value
	// Period is the enforcement period, in nanoseconds.
	// v1: cpu.cfs_period_us × 1000. v2: cpu.max second field × 1000.
	Period Value
	// Shares is the relative CPU weight on cgroup v1 (2..262144, default
	// 1024). v1: cpu.shares. v2: Unavailable (see Weight).
	Shares Value
	// Weight is the relative CPU weight on cgroup v2 (1..10000, default 100).
	// v2: cpu.weight. v1: Unavailable (see Shares).
	Weight Value
}

// LimitCores returns the CPU limit as a number of cores (quota / period):
// Known with the figure, Unlimited when no quota is set, Unavailable when
// quota or period was not read.
func (c *CPUStats) LimitCores() (float64, State) {
	switch {
	case c.Quota.State == Unlimited:
		return 0, Unlimited
	case c.Quota.State == Known && c.Period.State == Known && c.Period.V > 0:
		return float64(c.Quota.V) / float64(c.Period.V), Known
	}
	return 0, Unavailable
}

// MemoryStats holds the memory controller's figures. Sizes are in bytes.
type MemoryStats struct {
	// Usage is the memory charged to the group (including page cache).
	// v1: memory.usage_in_bytes. v2: memory.current.
	Usage Value
	// Limit is the hard limit. v1: memory.limit_in_bytes (the page-rounded
	// 2^63-1 is Unlimited). v2: memory.max ("max" is Unlimited).
	Limit Value
	// WorkingSet is Usage minus InactiveFile (0 if that is negative), the
	// figure cAdvisor and the kubelet call the working set.
	WorkingSet Value
	// Anon is anonymous memory (the RSS of the processes).
	// v1: memory.stat total_rss. v2: memory.stat anon.
	Anon Value
	// File is page cache. v1: memory.stat total_cache. v2: memory.stat file.
	File Value
	// Shmem is shared memory and tmpfs pages (also counted in File).
	// v1: memory.stat total_shmem. v2: memory.stat shmem.
	Shmem Value
	// MappedFile is page cache mapped into processes.
	// v1: memory.stat total_mapped_file. v2: memory.stat file_mapped.
	MappedFile Value
	// InactiveFile is page cache on the inactive LRU list.
	// v1: memory.stat total_inactive_file. v2: memory.stat inactive_file.
	InactiveFile Value
	// ActiveFile is page cache on the active LRU list.
	// v1: memory.stat total_active_file. v2: memory.stat active_file.
	ActiveFile Value
	// Kernel is kernel memory charged to the group (slab, stacks, page
	// tables, ...). v1: memory.kmem.usage_in_bytes. v2: memory.stat kernel
	// (Linux 5.18+).
	Kernel Value
	// SwapUsage is swap used by the group. v1: memory.stat total_swap
	// (present only with swap accounting). v2: memory.swap.current.
	SwapUsage Value
	// SwapLimit is the limit on swap alone. v2: memory.swap.max. v1: the
	// kernel limits memory+swap together (MemSwapLimit); SwapLimit is
	// MemSwapLimit minus Limit when both are set, Unlimited when MemSwapLimit
	// is, and Unavailable otherwise.
	SwapLimit Value
	// MemSwapLimit is the memory+swap limit. v1:
	// memory.memsw.limit_in_bytes. v2: Unavailable.
	MemSwapLimit Value
	// Pgfault is the number of page faults (a count, not bytes).
	// v1: memory.stat total_pgfault. v2: memory.stat pgfault.
	Pgfault Value
	// Pgmajfault is the number of major page faults.
	// v1: memory.stat total_pgmajfault. v2: memory.stat pgmajfault.
	Pgmajfault Value
	// Peak is the highest Usage recorded. v1: memory.max_usage_in_bytes.
	// v2: memory.peak (Linux 5.19+).
	Peak Value
	// Failcnt is how often Usage hit Limit. v1: memory.failcnt. v2:
	// Unavailable (see Events.Max).
	Failcnt Value
	// SwapPeak is the highest SwapUsage recorded. v2: memory.swap.peak
	// (Linux 6.5+). v1: Unavailable (the kernel records only the peak of
	// memory and swap together, memory.memsw.max_usage_in_bytes).
	SwapPeak Value
	// Events counts memory events of the group and its descendants
	// (v2: memory.events; v1: memory.oom_control).
	Events MemoryEvents
	// EventsLocal counts the memory events of the group alone, not of its
	// descendants. v2: memory.events.local (Linux 5.2+). v1: Unavailable
	// (every v1 count is local: see Events).
	EventsLocal MemoryEvents
	// SwapEvents counts swap events. v2: memory.swap.events. v1:
	// Unavailable.
	SwapEvents SwapEvents
}

// MemoryEvents counts memory events (counts, not bytes).
type MemoryEvents struct {
	// Low: times the group was reclaimed below memory.low. v2: memory.events
	// low. v1: Unavailable.
	Low Value
	// High: times the group was throttled over memory.high. v2:
	// memory.events high. v1: Unavailable.
	High Value
	// Max: times usage was about to go over memory.max. v2: memory.events
	// max. v1: Unavailable (see Memory.Failcnt).
	Max Value
	// OOM: times the group hit its limit and the OOM killer was invoked or
	// allocation failed. v2: memory.events oom. v1: Unavailable.
	OOM Value
	// OOMKill: processes killed by the OOM killer. v2: memory.events
	// oom_kill. v1: memory.oom_control oom_kill (Linux 4.13+), of the
	// group alone.
	OOMKill Value
	// OOMGroupKill: times the OOM killer killed the whole group at once
	// (memory.oom.group set: one event, however many processes died). v2:
	// memory.events oom_group_kill (Linux 5.17+). v1: Unavailable.
	OOMGroupKill Value
	// UnderOOM is 1 while the group is under OOM (tasks stopped, only with
	// the OOM killer disabled), else 0. v1: memory.oom_control under_oom.
	// v2: Unavailable.
	UnderOOM Value
}

// SwapEvents counts swap events (counts, not bytes). v2: memory.swap.events;
// v1: Unavailable.
type SwapEvents struct {
	// High: times the group's swap use went over memory.swap.high (Linux
	// 5.8+).
	High Value
	// Max: times the group's swap use was about to go over memory.swap.max
	// and the swap allocation failed.
	Max Value
	// Fail: times a swap allocation failed, because the system ran out of
	// swap or because of memory.swap.max (Linux 5.10+).
	Fail Value
}

// IOStats holds block I/O: totals over the devices and the devices
// themselves. Counters are bytes or operations since the group was created.
type IOStats struct {
	// ReadBytes, WriteBytes, ReadOps, WriteOps, DiscardBytes and DiscardOps
	// are the sums of the same counters over Devices. A total is Known
	// when the file that has the counter was read (v1: the bytes file for
	// the *Bytes totals, the serviced file for the *Ops totals; v2: io.stat)
	// and some device reported the counter, or no device had I/O (then it
	// is Known 0); it is Unavailable when the file was not read (the io or
	// blkio controller was not requested or is not there) or when devices
	// had I/O but none reported this counter (an older kernel's io.stat
	// without discards).
	ReadBytes, WriteBytes, ReadOps, WriteOps, DiscardBytes, DiscardOps Value
	// Devices lists one entry per block device with I/O, in the order the
	// kernel printed them; empty when there was none or the files were not
	// read (the totals tell which).
	Devices []IODevice
}

// IODevice is the block I/O of a group on one device. Counters are bytes or
// operations since the group was created; a counter whose row (v1) or key
// (v2) the kernel did not print for the device is Unavailable, never 0.
type IODevice struct {
	Major, Minor uint32
	// Name is the device name ("vda", "sda1") from <root>/proc/partitions,
	// else <root>/sys/dev/block/M:m/uevent; empty when neither knows it.
	Name string
	// ReadBytes, WriteBytes: v1: blkio.throttle.io_service_bytes_recursive
	// "Read"/"Write" (blkio.throttle.io_service_bytes where the recursive
	// file is absent). v2: io.stat rbytes/wbytes.
	ReadBytes, WriteBytes Value
	// ReadOps, WriteOps: v1: blkio.throttle.io_serviced_recursive
	// "Read"/"Write". v2: io.stat rios/wios.
	ReadOps, WriteOps Value
	// DiscardBytes, DiscardOps: v1: the "Discard" rows of the same files.
	// v2: io.stat dbytes/dios.
	DiscardBytes, DiscardOps Value
}

// PidsStats holds the pids controller's figures.
type PidsStats struct {
	// Current is the number of tasks (threads) in the group.
	// v1/v2: pids.current.
	Current Value
	// Limit is the task limit. v1/v2: pids.max ("max" is Unlimited).
	Limit Value
	// Peak is the highest Current recorded. v1/v2: pids.peak (a kernel
	// without it leaves Peak Unavailable: docs/METRICS.md lists the
	// versions measured).
	Peak Value
	// ForkFailures counts forks and clones refused because a pids.max
	// was reached. v1/v2: pids.events max. What the kernel counts there
	// changed in Linux 6.13: before it, and on v1 (and on v2 mounted with
	// pids_localevents), the forks refused to the group's own tasks,
	// whichever group's limit was reached; since it, on v2, the forks
	// refused anywhere in the group's subtree because the limit of the
	// group, or of a group beneath it, was reached (a limit of an
	// ancestor no longer counts here).
	ForkFailures Value
}

// HugetlbStats holds the hugetlb controller's figures, one entry per huge page
// size the kernel supports.
type HugetlbStats struct {
	// Sizes is empty when no hugetlb files were read (the controller was
	// not requested or is not there, or the kernel supports no huge page
	// size).
	Sizes []HugetlbSize
}

// HugetlbSize is the hugetlb usage of a group for one page size, in bytes.
type HugetlbSize struct {
	// PageSize is the kernel's name for the size: "2MB", "1GB".
	PageSize string
	// Usage: v1: hugetlb.<size>.usage_in_bytes. v2: hugetlb.<size>.current.
	Usage Value
	// Limit: v1: hugetlb.<size>.limit_in_bytes. v2: hugetlb.<size>.max; the
	// page-rounded 2^63-1 and "max" are Unlimited.
	Limit Value
	// Failcnt counts allocations that failed because of the limit.
	// v1: hugetlb.<size>.failcnt. v2: hugetlb.<size>.events max.
	Failcnt Value
}

// PressureStats holds pressure stall information (PSI), a cgroup v2 feature.
// On a hybrid host it is read from the group's directory in the unified
// hierarchy when the group has the same path there as in the v1 memory or
// cpu hierarchy (as Docker and runc make it); on pure v1 it is unavailable.
type PressureStats struct {
	CPU    PSI // cpu.pressure
	Memory PSI // memory.pressure
	IO     PSI // io.pressure
}

// PSI is the content of one *.pressure file.
type PSI struct {
	// Some: the share of time in which at least one task was stalled.
	Some PSILine
	// Full: the share of time in which all non-idle tasks were stalled (for
	// cpu.pressure, Linux 5.13+).
	Full PSILine
}

// PSILine is one line of a pressure file. Total says whether the line was
// read: it is Unavailable when the file or line was absent, or PSI is
// disabled (psi=0), and then the averages are 0 and mean nothing (see
// Available).
type PSILine struct {
	// Avg10, Avg60, Avg300: percent of wall time stalled, averaged over 10 s,
	// 60 s and 300 s ("avg10=" ...). Meaningful only when Total is
	// available.
	Avg10, Avg60, Avg300 float64
	// Total is the total stall time in nanoseconds ("total=", which the
	// kernel prints in microseconds, × 1000).
	Total Value
}

// Available reports whether the line was read (Total is Known), and so
// whether the averages mean anything.
func (l PSILine) Available() bool { return l.Total.State == Known }

// reset marks everything Unavailable while keeping the slices' capacity.
func (s *Stats) reset() {
	perCPU := s.CPU.PerCPU[:0]
	devs := s.IO.Devices[:0]
	huge := s.Hugetlb.Sizes[:0]
	*s = Stats{}
	s.CPU.PerCPU = perCPU
	s.IO.Devices = devs
	s.Hugetlb.Sizes = huge
}
