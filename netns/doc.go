// Package netns reads the network statistics of other network namespaces
// (containers) from outside them, cheaply enough to do every second.
//
// A Pool keeps a few goroutines locked to their own OS threads. To open a
// namespace, one of them hops: setns into the target, open the files it
// needs under /proc/thread-self/net (never /proc/self/net, which shows the
// thread-group leader's namespace) and, for TCP states, a sock_diag netlink
// socket, setns home, and check that it is home. If the check fails the
// thread is disposed of (its goroutine exits still locked) and replaced by
// a thread that takes over its home-namespace descriptor, so a process out
// of descriptors still gets it back; the disposal is logged from another
// thread, never from the one left in the container's namespace. A pool
// that loses its last thread anyway fails Open with ErrPoolClosed.
// No hop runs on the process's main thread, and no goroutine is started
// inside a hop (threads Go creates meanwhile come from its template thread,
// not from the hop thread, so they never inherit the target namespace).
//
// The result is a Handle per namespace. Handle.Stat re-reads the kept
// descriptors with pread at offset 0, without any setns, into a
// caller-owned Stats with no allocation in steady state. The descriptors pin
// the namespace alive, so close the Handle when its container goes.
//
// Handle.ID identifies the namespace (device and inode), so containers that
// share one (a Kubernetes pod, --net=container:) can share one Handle, and
// Handle.IsHome tells a container in the host's namespace. Pool.Identify
// tells it before opening: it returns a Ref holding the namespace, which
// Open then hops into. PIDs are reused: TargetProcess names a process by PID
// and start time (field 22 of /proc/<pid>/stat), and fails with ErrNotExist
// once that process is gone, where TargetPID would name whichever process
// has the PID now.
//
//	pool, err := netns.NewPool()
//	if err != nil { ... }
//	defer pool.Close()
//	h, err := pool.Open(ctx, netns.TargetProcess(pid, start), netns.TierCheap)
//	if err != nil { ... }
//	defer h.Close()
//	var s netns.Stats
//	for range ticker.C {
//		if err := h.Stat(ctx, &s); err != nil { ... }
//		for _, it := range s.Interfaces { ... it.RxBytes ... }
//	}
//
// Parts choose what a Handle reads: TierCheap (net/dev and sockstat, a few
// microseconds) every interval, and snmp, snmp6, netstat and the TCP state
// dump as wanted. The TCP state dump (sock_diag, no /proc/net/tcp parsing)
// walks the kernel's TCP hash tables, which all namespaces share unless
// net.ipv4.tcp_child_ehash_entries gave the namespace its own: on the test
// VM (262144 buckets) a dump of an empty namespace costs about 0.25 ms,
// 0.08 ms with its own 1024-bucket table, so it is not in TierCheap.
// Most of net/sockstat counts the namespace's own sockets, but a few of its
// figures are the host's totals whichever namespace reads them: those are in
// Sockets.Host, to be reported once per host, not per container. A part the
// namespace lacks (snmp6 without IPv6) is left out
// of Stats.Parts rather than reported as zeros, and every counter is a Value
// (the same type as cgroup.Value) that is Unavailable, not 0, when the
// kernel did not report it. Malformed kernel output gives a *ParseError
// naming the file and line, never a panic. A namespace that is gone gives
// an error matching ErrNotExist (and fs.ErrNotExist); a closed Handle gives
// ErrClosed (and os.ErrClosed).
package netns
