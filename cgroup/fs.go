package cgroup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode is how a host mounts its cgroup hierarchies.
type Mode int

const (
	// Legacy: cgroup v1 controllers only.
	Legacy Mode = iota + 1
	// Hybrid: cgroup v1 controllers plus a cgroup2 mount (usually at
	// /sys/fs/cgroup/unified) that holds no controllers but does hold
	// per-group pressure files.
	Hybrid
	// Unified: cgroup v2 only.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "v1 (legacy)"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "v2 (unified)"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Controllers is a set of controllers for Group to read. Fewer controllers
// mean fewer files kept open and fewer syscalls per Stat.
type Controllers uint32

const (
	// CPU: usage, throttling, quota and weight (v1 cpu and cpuacct).
	CPU Controllers = 1 << iota
	// Memory: usage, limit, memory.stat, events, swap.
	Memory
	// IO: block I/O per device (v1 blkio).
	IO
	// Pids: task count and limit.
	Pids
	// Hugetlb: huge page usage per page size.
	Hugetlb
	// Pressure: PSI for cpu, memory and io (cgroup v2 and hybrid hosts).
	Pressure

	// All reads every controller.
	All = CPU | Memory | IO | Pids | Hugetlb | Pressure
)

// FS is the cgroup filesystem of a host, seen from a host root prefix. It
// is safe for concurrent use.
type FS struct {
	root    string
	log     *slog.Logger
	mode    Mode
	v1      map[string]mount // by controller name
	unified *mount
	// pageMax is the page-rounded 2^63-1 the kernel prints for "no limit".
	pageMax uint64
	// noOpenat2 forces the openat + statfs fallback (tests).
	noOpenat2 bool

	devMu sync.Mutex
	devs  map[devNum]string

	// limitMaxAge is WithLimitMaxAge's: how old Group's kept limits may be.
	limitMaxAge time.Duration

	// bufs lends read buffers (*[]byte) to Group.Stat.
	bufs sync.Pool
}

type options struct {
	root        string
	log         *slog.Logger
	limitMaxAge time.Duration
}

// Option configures NewFS.
type Option func(*options)

// WithRoot sets the host root prefix: "/" (the default) on the host itself,
// "/host" for an agent in a container with the host's /proc and /sys mounted
// under /host.
func WithRoot(root string) Option { return func(o *options) { o.root = root } }

// WithLogger sets the logger for diagnostics; the default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithLimitMaxAge lets the Groups opened from this FS skip re-reading their
// limit files while the values they last read are younger than d. The
// limit files are the CPU quota and period (v1 cpu.cfs_quota_us and
// cpu.cfs_period_us, v2 cpu.max), the CPU weight (cpu.shares, cpu.weight),
// the memory and swap limits (memory.limit_in_bytes,
// memory.memsw.limit_in_bytes, memory.max, memory.swap.max), pids.max and
// the hugetlb limits: the fields Quota, Period, Shares, Weight,
// Memory.Limit, Memory.MemSwapLimit, Memory.SwapLimit, Pids.Limit and
// Hugetlb.Sizes[].Limit. They change only when something writes them (docker
// update, a pod resize), yet they are 8 of the 27 files a v1 group reads: a
// scraper of many groups at a short interval saves that share of its reads
// and reports a changed limit at most d late. Stat copies the kept values
// into the Stats otherwise, so they are never left Unavailable.
// Group.RefreshLimits makes the next Stat read them whatever their age.
//
// The default, 0, reads every file at every Stat.
func WithLimitMaxAge(d time.Duration) Option {
	return func(o *options) { o.limitMaxAge = max(d, 0) }
}

// NewFS finds the cgroup mounts of the host and reports its Mode.
//
// With a host root other than "/" it reads <root>/proc/1/mountinfo (the
// host init's mount table; its mount points are taken beneath the root),
// falling back to /proc/self/mountinfo (mount points taken as they are) when
// that can not be read. With the root "/" it reads /proc/self/mountinfo: the
// paths the library opens are resolved in its own mount namespace, which is
// what that file describes, even when it differs from init's (a private
// mount namespace, or a cgroup namespace with its own cgroupfs mount).
//
// Where a hierarchy is mounted more than once, the mount showing most of it
// (the shortest root) is used. NewFS returns ErrNoCgroupFS when no cgroup
// filesystem is mounted.
func NewFS(ctx context.Context, opts ...Option) (*FS, error) {
	o := options{root: "/"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	root := filepath.Clean(o.root)
	f := &FS{root: root, log: o.log, limitMaxAge: o.limitMaxAge, v1: make(map[string]mount), pageMax: pageRoundedMax(uint64(os.Getpagesize()))}
	f.bufs.New = func() any { b := make([]byte, 4096); return &b }

	src, prefix := filepath.Join(root, "proc/1/mountinfo"), root
	if root == "/" {
		src = "/proc/self/mountinfo"
	}
	b, err := os.ReadFile(src)
	if err != nil && src != "/proc/self/mountinfo" {
		f.log.Debug("cgroup: falling back to /proc/self/mountinfo", "path", src, "err", err)
		src, prefix = "/proc/self/mountinfo", "/"
		b, err = os.ReadFile(src)
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup: read mount table: %w", err)
	}
	mounts, err := parseMountinfo(b)
	if err != nil {
		return nil, withFile(src, err)
	}
	hasV1 := false
	for _, m := range mounts {
		m.point = filepath.Join(prefix, m.point)
		if m.v2 {
			// Prefer the mount that shows most of the hierarchy.
			if f.unified == nil || len(m.root) < len(f.unified.root) {
				m := m
				f.unified = &m
			}
			continue
		}
		for _, c := range m.controllers {
			if old, ok := f.v1[c]; ok && len(old.root) <= len(m.root) {
				continue
			}
			f.v1[c] = m
			if !strings.HasPrefix(c, "name=") {
				hasV1 = true
			}
		}
	}
	switch {
	case hasV1 && f.unified != nil:
		f.mode = Hybrid
	case hasV1:
		f.mode = Legacy
	case f.unified != nil:
		f.mode = Unified
	default:
		return nil, fmt.Errorf("cgroup: %s: %w", src, ErrNoCgroupFS)
	}
	f.log.Debug("cgroup: mounts found", "mode", f.mode, "source", src, "v1", len(f.v1), "unified", f.unified != nil)
	return f, nil
}

// Mode reports how the host mounts its hierarchies.
func (f *FS) Mode() Mode { return f.mode }

// Root is the host root prefix the FS was made with.
func (f *FS) Root() string { return f.root }

// MountPoint returns where a hierarchy is mounted, with the root prefix
// applied: a v1 controller by name ("memory"), or "" for the unified
// hierarchy. ok is false when it is not mounted.
func (f *FS) MountPoint(hierarchy string) (point string, ok bool) {
	if hierarchy == "" {
		if f.unified == nil {
			return "", false
		}
		return f.unified.point, true
	}
	m, ok := f.v1[hierarchy]
	return m.point, ok
}

// PIDPaths reads <root>/proc/<pid>/cgroup. A process that is gone gives an
// error matching ErrNotExist. It trusts the PID: ProcessPaths also checks
// that it still names the process the caller means.
func (f *FS) PIDPaths(ctx context.Context, pid int) (Paths, error) {
	p, _, err := f.processPaths(ctx, pid, 0, false)
	return p, err
}

// Open opens the group at a cgroup path such as "/docker/<id>",
// "/system.slice/docker-<id>.scope" or "/kubepods/burstable/pod<uid>/<id>",
// the same path in every hierarchy, and keeps open the files that the chosen
// controllers need. The path is relative to the reader's cgroup namespace, as
// /proc/<pid>/cgroup shows it.
func (f *FS) Open(ctx context.Context, path string, c Controllers) (*Group, error) {
	p := Paths{"": path}
	for _, name := range []string{"cpu", "cpuacct", "memory", "blkio", "pids", "hugetlb"} {
		p[name] = path
	}
	return f.OpenPaths(ctx, p, c)
}

// OpenPID opens the group that process pid belongs to, as
// <root>/proc/<pid>/cgroup names it in each hierarchy. It trusts the PID:
// OpenProcess also checks that it still names the process the caller means.
func (f *FS) OpenPID(ctx context.Context, pid int, c Controllers) (*Group, error) {
	p, err := f.PIDPaths(ctx, pid)
	if err != nil {
		return nil, err
	}
	return f.OpenPaths(ctx, p, c)
}

// deviceName returns the name of a block device from <root>/proc/partitions,
// else <root>/sys/dev/block/M:m/uevent; "" when neither knows it. Misses
// re-read the files, so devices added later are found.
func (f *FS) deviceName(major, minor uint32) string {
	f.devMu.Lock()
	defer f.devMu.Unlock()
	k := devNum{major, minor}
	if name, ok := f.devs[k]; ok {
		return name
	}
	if b, err := os.ReadFile(filepath.Join(f.root, "proc/partitions")); err == nil {
		if m, err := parsePartitions(b); err == nil {
			f.devs = m
		}
	}
	if f.devs == nil {
		f.devs = make(map[devNum]string)
	}
	if name, ok := f.devs[k]; ok {
		return name
	}
	name := ""
	if b, err := os.ReadFile(filepath.Join(f.root, "sys/dev/block", utoa(uint64(major))+":"+utoa(uint64(minor)), "uevent")); err == nil {
		name = parseUeventDevname(b)
	}
	f.devs[k] = name
	return name
}

func utoa(v uint64) string { return strconv.FormatUint(v, 10) }
