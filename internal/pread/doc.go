// Package pread reads kernel pseudo-files (cgroupfs, procfs) through
// descriptors kept open, without the scheduler's system-call bookkeeping.
//
// A pread of a cgroup or /proc/thread-self/net file is answered from memory
// in one to a few tens of microseconds and never waits for a device. Made
// through the ordinary system-call path, every such read tells the Go
// scheduler it may block: the first of a burst wakes the runtime's monitor
// thread (sysmon), which then polls every 20 µs until the burst ends, and a
// read that outlasts one of those polls hands the P to another thread. For a
// scraper that makes hundreds of these reads every second that bookkeeping
// costs more than some of the reads. Pseudo does the read as a raw system
// call instead: the goroutine keeps its P for the few microseconds it takes.
//
// Use it only for files that are generated in memory by the kernel: a read
// that could wait (a regular file on a disk, a pipe, a socket) would hold
// up its P, and a garbage collection, while it waits.
package pread
