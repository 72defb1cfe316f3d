package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/pread"
)

// kind says how to parse a kept file.
type kind uint8

const (
	kCPUStatV1 kind = iota
	kCPUStatV2
	kCPUMax
	kCFSQuota
	kCFSPeriod
	kShares
	kWeight
	kUsageAll
	kUsage
	kUsageUser
	kUsageSys
	kUsagePerCPU
	kMemUsage
	kMemLimit
	kMemPeak
	kMemFailcnt
	kMemStatV1
	kMemStatV2
	kMemSwLimit
	kKmemUsage
	kOOMControl
	kMemEvents
	kSwapCurrent
	kSwapMax
	kBlkioBytes
	kBlkioOps
	kIOStat
	kPidsCurrent
	kPidsMax
	kHugeUsage
	kHugeLimit
	kHugeFailcnt
	kHugeEvents
	kPSICPU
	kPSIMemory
	kPSIIO
)

// file is one kept descriptor. It is kept small: a Collector holds
// thousands (18 per v1 group).
type file struct {
	fd   int32
	kind kind
	dir  uint8  // index in Group.dirs
	idx  uint16 // hugetlb page size index
	name string // the file's name (a constant, or built once for hugetlb)
}

type devName struct {
	num  devNum
	name string
}

// Group is an open cgroup: the descriptors of the files its controllers
// need, kept open so that Stat re-reads them with pread at offset 0 into a
// reused buffer. A Group is safe for concurrent use; Stat calls are
// serialised. Close it when the container goes: it holds descriptors.
type Group struct {
	fs      *FS
	version int

	mu        sync.Mutex
	files     []file
	dirs      []dirName // the group's directories, for error messages
	hugeSizes []string
	devNames  []devName
	closed    bool

	// The limits last read, for FS.limitMaxAge (see WithLimitMaxAge).
	limitMaxAge time.Duration
	limits      limitValues
	limitsAt    time.Time
	limitsKept  bool
}

// limitValues are the fields read from limit files.
type limitValues struct {
	quota, period, shares, weight Value
	mem, memSw, swap, pids        Value
	huge                          []Value // per hugeSizes
}

// isLimit says whether a file kind holds a limit (see WithLimitMaxAge).
func (k kind) isLimit() bool {
	switch k {
	case kCPUMax, kCFSQuota, kCFSPeriod, kShares, kWeight, kMemLimit, kMemSwLimit, kSwapMax, kPidsMax, kHugeLimit:
		return true
	}
	return false
}

// keep copies s's limits into l.
func (l *limitValues) keep(s *Stats) {
	c, m := &s.CPU, &s.Memory
	l.quota, l.period, l.shares, l.weight = c.Quota, c.Period, c.Shares, c.Weight
	l.mem, l.memSw, l.swap, l.pids = m.Limit, m.MemSwapLimit, m.SwapLimit, s.Pids.Limit
	l.huge = l.huge[:0]
	for _, h := range s.Hugetlb.Sizes {
		l.huge = append(l.huge, h.Limit)
	}
}

// put copies l into s's limits.
func (l *limitValues) put(s *Stats) {
	c, m := &s.CPU, &s.Memory
	c.Quota, c.Period, c.Shares, c.Weight = l.quota, l.period, l.shares, l.weight
	m.Limit, m.MemSwapLimit, m.SwapLimit, s.Pids.Limit = l.mem, l.memSw, l.swap, l.pids
	for i := range min(len(l.huge), len(s.Hugetlb.Sizes)) {
		s.Hugetlb.Sizes[i].Limit = l.huge[i]
	}
}

// RefreshLimits makes the next Stat read the limit files, however young the
// values it keeps (see WithLimitMaxAge).
func (g *Group) RefreshLimits() {
	g.mu.Lock()
	g.limitsKept = false
	g.mu.Unlock()
}

// Version is 2 when the group's controllers are read from cgroup v2, 1 for
// v1 (legacy and hybrid hosts).
func (g *Group) Version() int { return g.version }

// OpenPaths opens a group whose path may differ per hierarchy, as
// /proc/<pid>/cgroup gives them (see PIDPaths). For each chosen controller
// it opens the group's directory beneath the hierarchy's mount (openat2 with
// RESOLVE_BENEATH, else openat and an fstatfs check that it is a cgroup
// filesystem) and the files the controller needs there. A file that does not
// exist leaves its fields Unavailable. If none of the group's directories
// exist the error matches ErrNotExist.
func (f *FS) OpenPaths(ctx context.Context, p Paths, c Controllers) (*Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := &Group{fs: f, version: 1, limitMaxAge: f.limitMaxAge}
	o := opener{g: g, fs: f}
	if f.mode == Unified {
		g.version = 2
		if dir := o.dir(f.unified, p, ""); dir >= 0 {
			o.v2(dir, c)
		}
	} else {
		o.v1(p, c)
	}
	for _, fd := range o.dirs {
		unix.Close(fd)
	}
	if o.err != nil {
		g.closeFiles()
		return nil, o.err
	}
	g.files = append([]file(nil), g.files...) // exact size: many Groups live at once
	if o.opened == 0 {
		g.closeFiles()
		if o.missing != nil {
			return nil, o.missing
		}
		return nil, fmt.Errorf("cgroup: %w: no hierarchy of the chosen controllers is mounted", ErrNotExist)
	}
	return g, nil
}

// opener collects the files of a group being opened.
type opener struct {
	g       *Group
	fs      *FS
	dirs    []int
	dirIdx  map[int]uint8 // index in Group.dirs by descriptor
	opened  int           // directories opened
	missing error         // the last "does not exist" error
	err     error         // the first hard error
}

func (o *opener) v1(p Paths, c Controllers) {
	if c&CPU != 0 {
		if dir := o.v1dir("cpu", p); dir >= 0 {
			o.file(dir, "cpu.stat", kCPUStatV1)
			o.file(dir, "cpu.cfs_quota_us", kCFSQuota)
			o.file(dir, "cpu.cfs_period_us", kCFSPeriod)
			o.file(dir, "cpu.shares", kShares)
		}
		if dir := o.v1dir("cpuacct", p); dir >= 0 {
			// Usage is the sum of usage_percpu, as the kernel computes
			// cpuacct.usage: one file fewer per Stat.
			if !o.file(dir, "cpuacct.usage_percpu", kUsagePerCPU) {
				o.file(dir, "cpuacct.usage", kUsage)
			}
			if !o.file(dir, "cpuacct.usage_all", kUsageAll) {
				o.file(dir, "cpuacct.usage_user", kUsageUser)
				o.file(dir, "cpuacct.usage_sys", kUsageSys)
			}
		}
	}
	if c&Memory != 0 {
		if dir := o.v1dir("memory", p); dir >= 0 {
			o.file(dir, "memory.usage_in_bytes", kMemUsage)
			o.file(dir, "memory.limit_in_bytes", kMemLimit)
			o.file(dir, "memory.max_usage_in_bytes", kMemPeak)
			o.file(dir, "memory.failcnt", kMemFailcnt)
			o.file(dir, "memory.stat", kMemStatV1)
			o.file(dir, "memory.memsw.limit_in_bytes", kMemSwLimit)
			o.file(dir, "memory.kmem.usage_in_bytes", kKmemUsage)
			o.file(dir, "memory.oom_control", kOOMControl)
		}
	}
	if c&IO != 0 {
		if dir := o.v1dir("blkio", p); dir >= 0 {
			if !o.file(dir, "blkio.throttle.io_service_bytes_recursive", kBlkioBytes) {
				o.file(dir, "blkio.throttle.io_service_bytes", kBlkioBytes)
			}
			if !o.file(dir, "blkio.throttle.io_serviced_recursive", kBlkioOps) {
				o.file(dir, "blkio.throttle.io_serviced", kBlkioOps)
			}
		}
	}
	if c&Pids != 0 {
		if dir := o.v1dir("pids", p); dir >= 0 {
			o.file(dir, "pids.current", kPidsCurrent)
			o.file(dir, "pids.max", kPidsMax)
		}
	}
	if c&Hugetlb != 0 {
		if dir := o.v1dir("hugetlb", p); dir >= 0 {
			for i, size := range o.hugeSizes(dir, ".usage_in_bytes") {
				o.fileIdx(dir, "hugetlb."+size+".usage_in_bytes", kHugeUsage, i)
				o.fileIdx(dir, "hugetlb."+size+".limit_in_bytes", kHugeLimit, i)
				o.fileIdx(dir, "hugetlb."+size+".failcnt", kHugeFailcnt, i)
			}
		}
	}
	if u := p[""]; c&Pressure != 0 && o.fs.unified != nil && (u == p["memory"] || u == p["cpu"]) {
		// Hybrid: the unified hierarchy has no controllers but keeps the
		// per-group pressure files, when the runtime made the group there.
		// Only the same group counts: a task left at the unified root
		// (the runtime made no group there) would report the whole
		// system's pressure as its own.
		saved := o.missing
		if dir := o.dir(o.fs.unified, p, ""); dir >= 0 {
			o.psi(dir)
		}
		o.missing = saved
	}
}

func (o *opener) v2(dir int, c Controllers) {
	if c&CPU != 0 {
		o.file(dir, "cpu.stat", kCPUStatV2)
		o.file(dir, "cpu.max", kCPUMax)
		o.file(dir, "cpu.weight", kWeight)
	}
	if c&Memory != 0 {
		o.file(dir, "memory.current", kMemUsage)
		o.file(dir, "memory.max", kMemLimit)
		o.file(dir, "memory.peak", kMemPeak)
		o.file(dir, "memory.stat", kMemStatV2)
		o.file(dir, "memory.events", kMemEvents)
		o.file(dir, "memory.swap.current", kSwapCurrent)
		o.file(dir, "memory.swap.max", kSwapMax)
	}
	if c&IO != 0 {
		o.file(dir, "io.stat", kIOStat)
	}
	if c&Pids != 0 {
		o.file(dir, "pids.current", kPidsCurrent)
		o.file(dir, "pids.max", kPidsMax)
	}
	if c&Hugetlb != 0 {
		for i, size := range o.hugeSizes(dir, ".current") {
			o.fileIdx(dir, "hugetlb."+size+".current", kHugeUsage, i)
			o.fileIdx(dir, "hugetlb."+size+".max", kHugeLimit, i)
			o.fileIdx(dir, "hugetlb."+size+".events", kHugeEvents, i)
		}
	}
	if c&Pressure != 0 {
		o.psi(dir)
	}
}

func (o *opener) psi(dir int) {
	o.file(dir, "cpu.pressure", kPSICPU)
	o.file(dir, "memory.pressure", kPSIMemory)
	o.file(dir, "io.pressure", kPSIIO)
}

func (o *opener) v1dir(controller string, p Paths) int {
	m, ok := o.fs.v1[controller]
	if !ok {
		return -1 // not mounted: its fields stay Unavailable
	}
	return o.dir(&m, p, controller)
}

// dir opens the group's directory in one hierarchy; -1 if it does not exist
// there (recorded in o.missing) or on a hard error (recorded in o.err).
func (o *opener) dir(m *mount, p Paths, key string) int {
	if o.err != nil {
		return -1
	}
	cgPath, ok := p[key]
	if !ok {
		return -1
	}
	rel, err := relativeTo(m.root, cgPath)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			o.missing = fmt.Errorf("cgroup: %s in %s (mount root %s): %w", cgPath, m.point, m.root, err)
		} else {
			o.err = fmt.Errorf("cgroup: %q: %w", cgPath, err)
		}
		return -1
	}
	fd, err := o.fs.openDir(m.point, rel)
	if err != nil {
		full := filepath.Join(m.point, rel)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
			o.missing = &os.PathError{Op: "open", Path: full, Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
		} else {
			o.err = &os.PathError{Op: "open", Path: full, Err: err}
		}
		return -1
	}
	o.dirs = append(o.dirs, fd)
	if o.dirIdx == nil {
		o.dirIdx = make(map[int]uint8)
	}
	o.dirIdx[fd] = uint8(len(o.g.dirs))
	if n := len(o.g.dirs); n > 0 && o.g.dirs[n-1].rel == rel {
		rel = o.g.dirs[n-1].rel // one copy of the path for every hierarchy
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		o.err = &os.PathError{Op: "fstat", Path: filepath.Join(m.point, rel), Err: err}
		return -1
	}
	o.g.dirs = append(o.g.dirs, dirName{point: m.point, rel: rel, ino: st.Ino})
	o.opened++
	return fd
}

// openDir opens rel beneath the mount point.
func (f *FS) openDir(point, rel string) (int, error) {
	mfd, err := unix.Open(point, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(mfd)
	if !f.noOpenat2 {
		fd, err := unix.Openat2(mfd, rel, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err != unix.ENOSYS {
			return fd, err
		}
	}
	// No openat2 (Linux < 5.6): rel has no ".." (relativeTo refuses it), so
	// openat stays beneath the mount; check that what we got is cgroupfs.
	fd, err := unix.Openat(mfd, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC {
		unix.Close(fd)
		return -1, fmt.Errorf("%s/%s is not on a cgroup filesystem (type %#x)", point, rel, st.Type)
	}
	return fd, nil
}

// file opens name in dir and keeps it; false if it does not exist.
func (o *opener) file(dir int, name string, k kind) bool { return o.fileIdx(dir, name, k, 0) }

func (o *opener) fileIdx(dir int, name string, k kind, idx int) bool {
	if o.err != nil {
		return false
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if err != unix.ENOENT {
			d := o.g.dirs[o.dirIdx[dir]]
			o.err = &os.PathError{Op: "open", Path: filepath.Join(d.point, d.rel, name), Err: err}
		}
		return false
	}
	o.g.files = append(o.g.files, file{fd: int32(fd), kind: k, dir: o.dirIdx[dir], idx: uint16(idx), name: name})
	return true
}

// hugeSizes lists the huge page sizes a group's directory has files for,
// from the names "hugetlb.<size><suffix>", and records them in the Group.
func (o *opener) hugeSizes(dir int, suffix string) []string {
	dup, err := unix.Dup(dir)
	if err != nil {
		o.err = err
		return nil
	}
	d := os.NewFile(uintptr(dup), "cgroup")
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		o.err = err
		return nil
	}
	var sizes []string
	for _, n := range names {
		if s, ok := strings.CutPrefix(n, "hugetlb."); ok {
			if s, ok := strings.CutSuffix(s, suffix); ok && !strings.Contains(s, ".") {
				sizes = append(sizes, s)
			}
		}
	}
	sortSizes(sizes)
	o.g.hugeSizes = sizes
	return sizes
}

// Close releases the group's descriptors. Stat after Close fails with
// ErrClosed (which matches os.ErrClosed).
func (g *Group) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.closeFiles()
}

func (g *Group) closeFiles() error {
	var first error
	for _, f := range g.files {
		if err := unix.Close(int(f.fd)); err != nil && first == nil {
			first = err
		}
	}
	g.files = nil
	return first
}

// Stat reads the group's files and fills s. Fields whose files the group
// does not have are left Unavailable, and so are those of a file the kernel
// hides in a live group after Open (a v2 group's pressure files once its
// cgroup.pressure is 0, a controller's files once it leaves the parent's
// cgroup.subtree_control). A group removed before or during Stat gives an
// error matching ErrNotExist; malformed content gives a *ParseError. On
// error, s holds what was read before it.
//
// In steady state (a reused s whose slices have grown to size) Stat does not
// allocate.
func (g *Group) Stat(ctx context.Context, s *Stats) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	s.reset()
	if len(g.hugeSizes) > 0 {
		for i, name := range g.hugeSizes {
			if i < len(s.Hugetlb.Sizes) {
				s.Hugetlb.Sizes[i] = HugetlbSize{PageSize: name}
			} else {
				s.Hugetlb.Sizes = append(s.Hugetlb.Sizes, HugetlbSize{PageSize: name})
			}
		}
		s.Hugetlb.Sizes = s.Hugetlb.Sizes[:len(g.hugeSizes)]
	}
	// The read buffer is the FS's, lent for this Stat: a Collector with
	// thousands of Groups keeps as many buffers as it reads at once.
	buf := g.fs.bufs.Get().(*[]byte)
	defer g.fs.bufs.Put(buf)
	var now time.Time
	skipLimits := false
	if g.limitMaxAge > 0 {
		now = time.Now()
		skipLimits = g.limitsKept && now.Sub(g.limitsAt) < g.limitMaxAge
	}
	for i := range g.files {
		f := &g.files[i]
		if skipLimits && f.kind.isLimit() {
			continue
		}
		b, err := read(f, buf)
		if err != nil {
			if err == unix.EOPNOTSUPP { // e.g. PSI disabled for this group
				continue
			}
			if err == unix.ENODEV || err == unix.ENOENT {
				if g.alive(f) {
					continue // hidden in a live group: its fields stay Unavailable
				}
				return &os.PathError{Op: "read", Path: g.path(f), Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
			}
			return &os.PathError{Op: "read", Path: g.path(f), Err: err}
		}
		if err := g.parse(f, b, s); err != nil {
			return withFile(g.path(f), err)
		}
	}
	switch {
	case skipLimits:
		g.limits.put(s)
	case g.limitMaxAge > 0:
		g.limits.keep(s)
		g.limitsAt, g.limitsKept = now, true
	}
	g.derive(s)
	return nil
}

// dirName is a group's directory: a mount point (the FS's string) and the
// group's path beneath it.
type dirName struct {
	point, rel string
	ino        uint64 // the directory's inode when opened (see alive)
}

// alive reports whether the group directory a file was opened in still
// exists, and is the same directory (not one re-created under its name).
// A kept descriptor reads ENODEV both when its group was removed and when
// the kernel hid the file in a live group: a v2 group's pressure files when
// cgroup.pressure is set to 0, a controller's files when it is taken out of
// the parent's cgroup.subtree_control.
func (g *Group) alive(f *file) bool {
	d := g.dirs[f.dir]
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(d.point, d.rel), &st); err != nil {
		return false
	}
	return st.Ino == d.ino
}

// path names a file for errors.
func (g *Group) path(f *file) string {
	d := g.dirs[f.dir]
	return filepath.Join(d.point, d.rel, f.name)
}

// read preads a file whole into *buf, growing it when a file fills it
// (rare, and once per size: the grown buffer goes back to the pool).
func read(f *file, buf *[]byte) ([]byte, error) {
	for {
		n, err := pread.Pseudo(int(f.fd), *buf, 0)
		if err != nil {
			return nil, err
		}
		if n < len(*buf) {
			return (*buf)[:n], nil
		}
		*buf = make([]byte, 2*len(*buf))
	}
}

func (g *Group) parse(f *file, b []byte, s *Stats) error {
	pageMax := g.fs.pageMax
	c, m := &s.CPU, &s.Memory
	switch f.kind {
	case kCPUStatV1:
		return parseCPUStat(b, false, c)
	case kCPUStatV2:
		return parseCPUStat(b, true, c)
	case kCPUMax:
		return parseCPUMax(b, c)
	case kCFSQuota:
		return parseCFSQuota(b, c)
	case kCFSPeriod:
		return parseCFSPeriod(b, c)
	case kShares:
		return single(b, &c.Shares)
	case kWeight:
		return single(b, &c.Weight)
	case kUsageAll:
		return parseUsageAll(b, c)
	case kUsage:
		return single(b, &c.Usage)
	case kUsageUser:
		return single(b, &c.User)
	case kUsageSys:
		return single(b, &c.System)
	case kUsagePerCPU:
		return parseUsagePerCPU(b, c)
	case kMemUsage:
		return single(b, &m.Usage)
	case kMemLimit:
		return limitFile(b, pageMax, &m.Limit)
	case kMemPeak:
		return single(b, &m.Peak)
	case kMemFailcnt:
		return single(b, &m.Failcnt)
	case kMemStatV1:
		return parseMemoryStat(b, false, m)
	case kMemStatV2:
		return parseMemoryStat(b, true, m)
	case kMemSwLimit:
		return limitFile(b, pageMax, &m.MemSwapLimit)
	case kKmemUsage:
		return single(b, &m.Kernel)
	case kOOMControl:
		return parseOOMControl(b, &m.Events)
	case kMemEvents:
		return parseMemoryEvents(b, &m.Events)
	case kSwapCurrent:
		return single(b, &m.SwapUsage)
	case kSwapMax:
		return limitFile(b, pageMax, &m.SwapLimit)
	case kBlkioBytes:
		return parseBlkio(b, true, &s.IO)
	case kBlkioOps:
		return parseBlkio(b, false, &s.IO)
	case kIOStat:
		return parseIOStat(b, &s.IO)
	case kPidsCurrent:
		return single(b, &s.Pids.Current)
	case kPidsMax:
		return limitFile(b, 1<<64-1, &s.Pids.Limit)
	case kHugeUsage:
		return single(b, &s.Hugetlb.Sizes[f.idx].Usage)
	case kHugeLimit:
		return limitFile(b, hugeUnlimitedFrom(g.hugeSizes[f.idx], pageMax), &s.Hugetlb.Sizes[f.idx].Limit)
	case kHugeFailcnt:
		return single(b, &s.Hugetlb.Sizes[f.idx].Failcnt)
	case kHugeEvents:
		return parseHugetlbEvents(b, &s.Hugetlb.Sizes[f.idx].Failcnt)
	case kPSICPU:
		return parsePSI(b, &s.Pressure.CPU)
	case kPSIMemory:
		return parsePSI(b, &s.Pressure.Memory)
	case kPSIIO:
		return parsePSI(b, &s.Pressure.IO)
	}
	return nil
}

// derive fills the fields computed from others, and device names.
func (g *Group) derive(s *Stats) {
	deriveMemory(&s.Memory, g.version)
	for i := range s.IO.Devices {
		d := &s.IO.Devices[i]
		d.Name = g.deviceName(d.Major, d.Minor)
	}
}

func (g *Group) deviceName(major, minor uint32) string {
	k := devNum{major, minor}
	for _, d := range g.devNames {
		if d.num == k {
			return d.name
		}
	}
	name := g.fs.deviceName(major, minor)
	g.devNames = append(g.devNames, devName{k, name})
	return name
}
