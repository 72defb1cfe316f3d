// Package cgroup reads container resource usage from cgroup files, on cgroup
// v1, v2 and hybrid hosts, exactly and without allocating.
//
// An FS describes the cgroup mounts of a host, seen from a root prefix ("/",
// or "/host" for an agent in a container with the host's /proc and /sys
// mounted there), and decides per controller where to read it: its v1
// hierarchy where one is mounted, else the unified one (see Mode). FS.Open,
// FS.OpenPID, FS.OpenProcess (a PID checked against the start time the
// caller expects: PIDs are reused) and FS.OpenPaths return a Group: a handle
// that opens the group's directories beneath their mount (openat2 with
// RESOLVE_BENEATH) once, keeps the descriptors of the files the chosen
// Controllers need, and on every Group.Stat re-reads them with pread at
// offset 0 into a reused buffer, filling a Stats the caller owns. A steady
// Stat costs one pread per file and no allocation; the full v1 set (CPU,
// memory, block I/O, pids) is 18 files, about 24 µs on a 2-vCPU VM.
// Group.ID tells a group made again at the same path (its counters start
// over) from the one a Group was opened on.
//
// Stats is one model for both versions. Each figure is a Value whose zero
// state is Unavailable, so a file the kernel lacks (no swap accounting, PSI
// off, an older kernel) is never a silent zero; "max" and v1's page-rounded
// 2^63-1 (rounded to the huge page size for v1 hugetlb) are Unlimited. The
// documentation of every field names its unit and its v1 and v2 source.
//
// Errors: a group removed before or during a read matches ErrNotExist
// (ENOENT on open; ENODEV on a kept descriptor, once Stat has checked that
// the group's directory is gone and not just that file hidden, as PSI
// switched off hides the pressure files), which also matches
// fs.ErrNotExist; a closed Group gives ErrClosed, which matches
// os.ErrClosed; malformed content is a *ParseError naming the file and
// line. Stat reads every file whatever fails in another, leaving the fields
// of a failed file Unavailable, and returns the errors joined. Unknown keys
// are ignored, so newer kernels do not break older readers.
//
// The package is safe for concurrent use: an FS is shared, and Stat calls on
// one Group are serialised. Close a Group as soon as its container goes: it
// holds descriptors.
package cgroup
