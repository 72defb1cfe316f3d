// Package job runs a command in a cgroup of its own and reports what it
// used when it ends: the way a CI runner meters a job. Run (or Start and
// Job.Wait) makes the group, starts the command already inside it, waits
// for it, reads the group's totals and removes the group:
//
//	cmd := exec.Command("make", "test")
//	totals, err := job.Run(ctx, cmd, job.WithMemoryLimit(4<<30))
//
// Totals holds the CPU time (user, system, total), peak memory, block I/O
// bytes and operations, peak task count, fork failures, OOM kills,
// pressure stall totals, wall time and the exit status or signal of the
// job: of the command and everything it started, grandchildren and
// daemonised descendants included, because they all live in the group.
//
// Nothing escapes the group, however fast the command forks: on cgroup v2
// the process is created in it (clone3 with CLONE_INTO_CGROUP, through
// syscall.SysProcAttr's UseCgroupFD); on v1 and hybrid hosts it is moved
// into it after its execve has succeeded and before the new program runs
// its first instruction (it starts traced, stops at the exec, is moved and
// let go: syscall.SysProcAttr's Ptrace, for that one stop). Start sets
// those fields of cmd.SysProcAttr; a command that sets them itself is
// refused.
//
// By default the group is made beside the calling process's own group (on
// cgroup v2 a group with processes can not give its children controllers,
// the "no internal processes" rule), in every hierarchy the package reads,
// and stays inside a subtree systemd delegated (WithParent names another
// parent). It is removed when the job ends: Wait waits for every process in
// it to exit, or kills them once the command has exited (WithKillLeftovers),
// or when the context ends.
//
// Where no group can be made (a read-only /sys/fs/cgroup, a private cgroup
// namespace without delegation, no cgroup filesystem, no permission), the
// command runs anyway: Totals then carries the figures getrusage gives for
// the command and the descendants it waited for (Totals.Tree, always
// filled), its cgroup figures are Unavailable, and the error matches
// ErrNotMetered and says why. It never reports the figures of a group it
// did not make: not the root's, not the caller's. A figure the group can not
// give (a controller its parent does not delegate, a file the kernel lacks)
// is Unavailable, never 0, with a *MissingError saying which and why.
package job
