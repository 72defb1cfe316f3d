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

// Mode is how a host mounts the cgroup hierarchies of the controllers this
// package reads (cpu, cpuacct, memory, blkio or io, pids, hugetlb). Other v1
// hierarchies do not count: a net_cls hierarchy that a VPN's split
// tunnelling mounts on a cgroup v2 host leaves it Unified, and a
// name=systemd one makes no host Legacy.
//
// The FS decides per controller where it reads it: from its v1 hierarchy
// where that is mounted, else from the unified hierarchy when the unified
// root's cgroup.controllers lists it (cpu usage also comes from there
// without the cpu controller: cpu.stat is in every cgroup v2 group).
type Mode int

const (
	// Legacy: cgroup v1 only; no cgroup2 hierarchy is mounted.
	Legacy Mode = iota + 1
	// Hybrid: some of the controllers read are in v1 hierarchies, and a
	// cgroup2 hierarchy is mounted too (usually at /sys/fs/cgroup/unified).
	// Its groups hold the pressure files, and any controller not mounted as
	// v1: memory on a host booted with cgroup_no_v1=memory.
	Hybrid
	// Unified: every controller read is in the cgroup v2 hierarchy.
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
	// v2 holds the controllers the unified root's cgroup.controllers lists
	// ("memory", "io", ...), read at NewFS.
	v2 map[string]bool
	// userHZ is the frequency of the clock ticks v1 cpuacct.stat counts in;
	// 0 when it could not be learnt (User and System are then Unavailable
	// on v1).
	userHZ uint64
	// pageMax is the page-rounded 2^63-1 the kernel prints for "no limit".
	pageMax uint64
	// noOpenat2 forces the openat + statfs fallback (tests).
	noOpenat2 bool
	// announceNonCgroup logs, once, a group directory not on a cgroup
	// filesystem.
	announceNonCgroup sync.Once

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
// under /host; "" is "/". It must be an absolute path. With a root other
// than "/" every path is taken beneath it,
// the mount table included (see NewFS): an FS never mixes a root with the
// mounts of the machine it runs on.
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
// With an age the Groups also hold their limit files closed: the Stat that
// reads them opens them (in the group's directory, opened again and checked
// to be the same one) and closes them after, an open and a close per file
// per d for 6 descriptors fewer per v1 group with every controller (13
// instead of 19), 5 per v2 group, which a host of thousands of containers
// under a fixed RLIMIT_NOFILE needs more.
//
// The default, 0, reads every file at every Stat, each kept open.
func WithLimitMaxAge(d time.Duration) Option {
	return func(o *options) { o.limitMaxAge = max(d, 0) }
}

// NewFS finds the cgroup mounts of the host and reports its Mode.
//
// With a host root other than "/" it reads <root>/proc/1/mountinfo (the
// host init's mount table; its mount points are taken beneath the root) and
// fails, naming that file, when it can not: it never falls back to the
// mounts of the machine it runs on, which a wrong or fake root would
// otherwise read in its place. With the root "/" it reads
// /proc/self/mountinfo: the paths the library opens are resolved in its own
// mount namespace, which is what that file describes, even when it differs
// from init's (a private mount namespace, or a cgroup namespace with its own
// cgroupfs mount).
//
// Where a hierarchy is mounted more than once, the mount showing most of it
// (the shortest root) is used. It reads the unified root's
// cgroup.controllers to learn which controllers live there (see Mode).
// NewFS returns ErrNoCgroupFS when no cgroup filesystem is mounted.
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
	if o.root == "" {
		o.root = "/"
	}
	if !filepath.IsAbs(o.root) {
		return nil, fmt.Errorf("cgroup: WithRoot: %q is not an absolute path", o.root)
	}
	root := filepath.Clean(o.root)
	f := &FS{root: root, log: o.log, limitMaxAge: o.limitMaxAge, v1: make(map[string]mount), pageMax: pageRoundedMax(uint64(os.Getpagesize()))}
	f.bufs.New = func() any { b := make([]byte, 4096); return &b }

	src := filepath.Join(root, "proc/1/mountinfo")
	if root == "/" {
		src = "/proc/self/mountinfo"
	}
	b, err := os.ReadFile(src)
	if err != nil {
		if root != "/" {
			return nil, fmt.Errorf("cgroup: read the host's mount table under root %s: %w", root, err)
		}
		return nil, fmt.Errorf("cgroup: read mount table: %w", err)
	}
	mounts, err := parseMountinfo(b)
	if err != nil {
		return nil, withFile(src, err)
	}
	for _, m := range mounts {
		m.point = filepath.Join(root, m.point)
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
		}
	}
	readV1, otherV1 := false, false
	for c := range f.v1 {
		switch {
		case isRead(c):
			readV1 = true
		case !strings.HasPrefix(c, "name="):
			otherV1 = true
		}
	}
	switch {
	case readV1 && f.unified != nil:
		f.mode = Hybrid
	case readV1 || otherV1 && f.unified == nil:
		f.mode = Legacy
	case f.unified != nil:
		f.mode = Unified
	default:
		return nil, fmt.Errorf("cgroup: %s: %w", src, ErrNoCgroupFS)
	}
	if f.unified != nil {
		f.v2 = f.unifiedControllers()
	}
	f.userHZ = clockTicks(f.log)
	f.log.Debug("cgroup: mounts found", "mode", f.mode, "source", src, "v1", len(f.v1), "unified", f.unified != nil, "v2 controllers", len(f.v2))
	return f, nil
}

// isRead says whether v1 controller c is one this package reads.
func isRead(c string) bool {
	switch c {
	case "cpu", "cpuacct", "memory", "blkio", "pids", "hugetlb":
		return true
	}
	return false
}

// unifiedControllers reads the unified root's cgroup.controllers. A file
// that can not be read is announced: no controller is then read from the
// unified hierarchy but cpu.stat's usage.
func (f *FS) unifiedControllers() map[string]bool {
	name := filepath.Join(f.unified.point, "cgroup.controllers")
	b, err := os.ReadFile(name)
	if err != nil {
		f.log.Warn("cgroup: can not tell which controllers the unified hierarchy holds; reading none from it", "err", err)
		return nil
	}
	m := make(map[string]bool)
	for _, c := range strings.Fields(string(b)) {
		m[c] = true
	}
	return m
}

// hierarchy says where the FS reads controller c (a v1 name: "cpu",
// "cpuacct", "memory", "blkio", "pids", "hugetlb"): its v1 mount, or the
// unified one (v2 true), or nowhere (nil). cpu and cpuacct come from the
// unified hierarchy when neither is mounted as v1 (cpu.stat is in every v2
// group); blkio is the unified hierarchy's io.
func (f *FS) hierarchy(c string) (m *mount, v2 bool) {
	if v1, ok := f.v1[c]; ok {
		return &v1, false
	}
	if f.unified == nil {
		return nil, false
	}
	switch c {
	case "cpu", "cpuacct":
		_, cpu := f.v1["cpu"]
		_, acct := f.v1["cpuacct"]
		if cpu || acct {
			return nil, false
		}
		return f.unified, true
	case "blkio":
		c = "io"
	}
	if f.v2[c] {
		return f.unified, true
	}
	return nil, false
}

// Mode reports how the host mounts its hierarchies.
func (f *FS) Mode() Mode { return f.mode }

// Root is the host root prefix the FS was made with.
func (f *FS) Root() string { return f.root }

// MountPoint returns where a hierarchy is mounted, with the root prefix
// applied: a v1 controller by name ("memory"), or "" for the unified
// hierarchy. ok is false when it is not mounted (a controller that lives in
// the unified hierarchy has no v1 mount point).
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
// error matching ErrNotExist, as does one that has exited and whose
// unified-hierarchy group has been removed (the kernel ends that line with
// " (deleted)"; a live process's path keeps the text, which is then part of
// its group's name). It trusts the PID: ProcessPaths also checks that it
// still names the process the caller means.
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
