// Package pread reads kernel pseudo-files (cgroupfs, procfs) through
// descriptors kept open, choosing per file between a raw system call and
// the ordinary one.
//
// A pread of a cgroup or /proc/thread-self/net file is answered from memory
// and never waits for a device. Made through the ordinary system-call path,
// every such read tells the Go scheduler it may block: the first of a burst
// wakes the runtime's monitor thread (sysmon), which then polls every 20 µs
// until the burst ends, and a read that outlasts one of those polls hands
// the P to another thread. For a scraper that makes hundreds of these reads
// every second that bookkeeping costs more than some of the reads. Pseudo
// does the read as a raw system call instead: the goroutine keeps its P,
// and a stop-the-world (a garbage collection's) waits until the read is
// done.
//
// So Pseudo is only for files that are cheap by construction: the kernel
// formats a few counters it holds, or folds a per-CPU counter, taking no
// lock that can sleep. Ordinary is for a file whose read can take long, and
// for anything that is not a kernel pseudo-file at all (a FUSE tree such as
// lxcfs, a regular file, a pipe).
//
// The raw path passes the offset in one register, which is right only on
// 64-bit architectures; elsewhere (386, arm, mips) Pseudo is Ordinary.
package pread
