package job

import (
	"errors"
	"os"
	"time"

	"github.com/metricsd/metricsd/cgroup"
)

// ErrNotMetered reports a job that ran outside a cgroup of its own: no group
// could be made, or the command could not be placed in it. Its Totals hold
// Tree (getrusage), the exit and the wall time; every cgroup figure is
// Unavailable. The error that matches it also says why (and matches that
// cause: fs.ErrPermission, syscall.EROFS, cgroup.ErrNoCgroupFS, ...).
var ErrNotMetered = errors.New("not metered in a cgroup of its own")

// MissingError reports figures the job's group could not give: Figures
// names the Totals fields left Unavailable, Err says why (a controller the
// parent does not delegate, a file the kernel lacks, a read that failed).
type MissingError struct {
	Figures []string
	Err     error
}

func (e *MissingError) Error() string {
	s := "job: unavailable:"
	for i, f := range e.Figures {
		if i > 0 {
			s += ","
		}
		s += " " + f
	}
	return s + ": " + e.Err.Error()
}

func (e *MissingError) Unwrap() error { return e.Err }

// Totals is what a job used, read from its group once every process in it
// has exited. Each cgroup figure is a cgroup.Value: Unavailable (never 0)
// where the group could not give it (see the error Wait returned).
type Totals struct {
	// Path is the job's group, as /proc/<pid>/cgroup shows it in the
	// hierarchy of its CPU figures (the unified one on v2); "" when the
	// job was not metered.
	Path string
	// Version is 2 when every figure came from cgroup v2, 1 when any came
	// from v1; 0 when the job was not metered.
	Version int

	// Wall is the time from the command's start to its exit (not to the
	// exit of what it left running).
	Wall time.Duration
	// ExitCode is the command's exit status, -1 when a signal ended it.
	ExitCode int
	// Signal names the signal that ended the command ("SIGKILL"), "" when
	// it exited.
	Signal string
	// State is the command's, as exec.Cmd.Wait left it.
	State *os.ProcessState `json:"-"`

	// CPU is the CPU time of every process the job ran.
	CPU CPU
	// MemoryPeak is the most memory the group ever held, in bytes, page
	// cache and kernel memory included. v1: memory.max_usage_in_bytes.
	// v2: memory.peak (Linux 5.19+).
	MemoryPeak cgroup.Value
	// IO is the block I/O of the group, summed over devices.
	IO IO
	// PidsPeak is the most tasks (processes and threads) the group ever
	// held. v1 and v2: pids.peak.
	PidsPeak cgroup.Value
	// ForkFailures counts the forks and clones the group's pids.max
	// (WithPidsLimit) refused. v1 and v2: pids.events "max" (see
	// cgroup.PidsStats.ForkFailures for what older kernels count there).
	ForkFailures cgroup.Value
	// OOMKills counts processes of the group the OOM killer killed. v2:
	// memory.events oom_kill. v1: memory.oom_control oom_kill (Linux 4.13+).
	OOMKills cgroup.Value
	// Pressure is the group's pressure stall information at the end (PSI:
	// the Total of each line is the stall time, in nanoseconds, over the
	// group's life). v2, and on a hybrid host the group's unified
	// directory; Unavailable on pure v1 and with psi=0.
	Pressure cgroup.PressureStats

	// Tree is the getrusage(RUSAGE_CHILDREN)-style figures of the command
	// and the descendants it waited for, as the kernel gives them when the
	// command is reaped: always filled, metered or not. A daemonised
	// descendant, or one the command did not wait for, is not in it.
	Tree Rusage
}

// CPU is CPU time in nanoseconds.
type CPU struct {
	// Total: v1: the sum of cpuacct.usage_percpu (exact runtime). v2:
	// cpu.stat usage_usec × 1000.
	Total cgroup.Value
	// User and System: v1: cpuacct.stat (tick-sampled, scaled by the
	// kernel to add up to Total less at most a tick each). v2: cpu.stat
	// user_usec and system_usec × 1000.
	User, System cgroup.Value
	// Throttled is the time the group spent throttled by its CPU limit.
	// v1: cpu.stat throttled_time. v2: cpu.stat throttled_usec × 1000.
	Throttled cgroup.Value
}

// IO is block I/O in bytes and operations, summed over devices. v1:
// blkio.throttle.io_service_bytes_recursive and io_serviced_recursive
// (which Linux 6.9+ counts only on a disk where blk-throttle is active:
// Start activates it, with no limit, on every disk). v2: io.stat.
type IO struct {
	ReadBytes, WriteBytes, ReadOps, WriteOps cgroup.Value
}

// Rusage is what the kernel's resource usage of a waited-for process tree
// gives (see getrusage(2)).
type Rusage struct {
	// User and System are CPU time.
	User, System time.Duration
	// MaxRSS is the largest resident set of any one process of the tree,
	// in bytes (not their sum).
	MaxRSS uint64
	// ReadBytes and WriteBytes are the bytes the tree made the block
	// layer read and write (ru_inblock and ru_oublock × 512: what
	// /proc/<pid>/io calls read_bytes and write_bytes).
	ReadBytes, WriteBytes uint64
	// MinorFaults and MajorFaults count page faults.
	MinorFaults, MajorFaults uint64
	// VoluntarySwitches and InvoluntarySwitches count context switches.
	VoluntarySwitches, InvoluntarySwitches uint64
}

// Metered reports whether the figures came from a group of the job's own.
func (t *Totals) Metered() bool { return t.Version != 0 }
