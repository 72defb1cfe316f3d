package cgroup

import (
	"bytes"
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
	kCPUAcctStat
	kUsage
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
	kMemEventsLocal
	kSwapCurrent
	kSwapMax
	kSwapPeak
	kSwapEvents
	kBlkioBytes
	kBlkioOps
	kIOStat
	kPidsCurrent
	kPidsMax
	kPidsPeak
	kPidsEvents
	kHugeUsage
	kHugeLimit
	kHugeFailcnt
	kHugeEvents
	kPSICPU
	kPSIMemory
	kPSIIO
)

// cheap says whether a read of a file of this kind is cheap by
// construction, and so is always a raw system call that keeps the P (see
// internal/pread): the kernel prints counters it holds, or folds a per-CPU
// one, taking no lock that can sleep. The others are read raw only while
// they prove cheap on this host (pread.Adaptive): they flush the group's
// recursive statistics first, at a cost that grows with the groups below
// it (which a container with a delegated subtree makes), with the CPUs and,
// on kernels before 6.8, with every group of the host that has pending
// updates (v1 and v2 memory.stat, io.stat, v2 cpu.stat); they sum every
// descendant's per-CPU counters (the recursive v1 blkio files); or they
// take a mutex that can sleep (the pressure files). docs/BENCHMARKS.md
// ("Raw or ordinary reads") has the measurements.
func (k kind) cheap() bool {
	switch k {
	case kCPUStatV2, kMemStatV1, kMemStatV2, kBlkioBytes, kBlkioOps, kIOStat, kPSICPU, kPSIMemory, kPSIIO:
		return false
	}
	return true
}

// file is one file a Group reads. It is kept small: a Collector holds
// thousands (13 per idle v1 group). fd is -1 while the file is not open: it
// did not exist when the Group was opened, or was found hidden or removed
// since in a group that lives on; RefreshLimits has the next Stat look for
// it again. fd is fdDeferred for a file opened only once another file shows
// it has something to say, and fdClosed for a limit file held closed
// between the Stats that read it (WithLimitMaxAge).
type file struct {
	fd   int32
	kind kind
	dir  uint8  // index in Group.dirs
	idx  uint16 // hugetlb page size index
	name string // the file's name (a constant, or built once for hugetlb)
}

// fdDeferred marks a file not opened yet, on purpose, because another file
// read just before it tells what it holds while the group is idle; it is
// opened (and read from then on) once that file says otherwise:
//   - v1's blkio.throttle.io_serviced(_recursive), until the bytes file
//     lists a device. Both print one row set per block device the group has
//     a blkcg_gq for (made at its first I/O to that device or a throttle
//     limit, and each bio counted in both at once), so while the bytes file
//     lists none the ops file lists none either: its totals are Known 0;
//   - v2's memory.events.local, until memory.events counts an event. The
//     kernel counts an event in the group's local counters and in its own
//     and its ancestors' hierarchical ones at once (memcg_memory_event), so
//     while every memory.events counter is 0 so is every local one, and
//     the file has the same keys.
//
// Either way the figures are what reading the file would give, without a
// read or a descriptor per idle group.
const fdDeferred = -2

// fdClosed marks a limit file held closed: with WithLimitMaxAge the limits
// are read only when the values kept are older than the age, so the Stat
// that reads them opens the files (through the group's directory, opened
// again and checked to be the same) and closes them after. A v1 group with
// every controller holds 6 descriptors fewer (13 instead of 19), which a
// host with thousands of containers and a fixed RLIMIT_NOFILE needs more
// than the open and close per file per age (~8 us each on a 2 vCPU VM:
// docs/BENCHMARKS.md). With no age (every Stat reads every file) the limit
// files are kept open like the others.
const fdClosed = -3

type devName struct {
	num  devNum
	name string
}

// Group is an open cgroup: the descriptors of the files its controllers
// need, kept open so that Stat re-reads them with pread at offset 0 into a
// reused buffer (but for the limit files under WithLimitMaxAge, held closed
// between the Stats that read them). A Group is safe for concurrent use;
// Stat calls are serialised. Close it when the container goes: it holds
// descriptors.
type Group struct {
	fs      *FS
	version int

	mu        sync.Mutex
	files     []file
	dirs      []dirName // the group's directories, for error messages
	hugeSizes []string
	hugeDir   int    // index in dirs of the hugetlb files' directory; -1 if none
	hugeV2    bool   // that directory is a v2 one: the controller may be enabled later
	missing   int    // files with fd -1
	slow      uint64 // bit i: a read of files[i] took longer than pread.SlowRead
	lookAgain bool   // RefreshLimits asked Stat to look for them
	devNames  []devName
	closed    bool

	// The limits last read, for FS.limitMaxAge (see WithLimitMaxAge); with
	// an age the limit files are held closed (fdClosed).
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
// values it keeps (see WithLimitMaxAge), and look again for the files the
// Group lacks: those that did not exist when it was opened (a controller
// enabled for the group later) and those found hidden or removed since in a
// group that lives on (PSI switched off with cgroup.pressure, a controller
// taken out of the parent's cgroup.subtree_control). That costs the next
// Stat an open of the group's directory per hierarchy with a file missing,
// and one per missing file; the directory must still be the one the Group
// opened (a group removed and made again at the same path is not). The
// Collector calls it at every listing.
func (g *Group) RefreshLimits() {
	g.mu.Lock()
	g.limitsKept = false
	g.lookAgain = g.missing > 0 || g.hugeV2 && len(g.hugeSizes) == 0
	g.mu.Unlock()
}

// Version is 2 when every controller the group reads comes from cgroup v2,
// 1 when any comes from v1 (see Mode; the pressure files of a hybrid host
// do not count).
func (g *Group) Version() int { return g.version }

// ID identifies the group's directory: its inode number, which on cgroup v2
// is the cgroup ID (the one BPF's bpf_get_current_cgroup_id and the
// kernel's cgroup file handles use), in the hierarchy of the first
// controller it reads, in the order CPU (v1 cpu, then cpuacct), Memory, IO,
// Pids, Hugetlb. The kernel does not reuse these numbers while it runs (on
// 64-bit): two Groups opened with the same Controllers from the same FS
// have the same ID exactly when they read the same group, so a counter
// that went down between two Groups with different IDs was reset (the group
// was removed and made again, as a restarted container's is), while one
// that went down under the same ID wrapped.
func (g *Group) ID() uint64 { return g.dirs[0].ino }

// OpenPaths opens a group whose path may differ per hierarchy, as
// /proc/<pid>/cgroup gives them (see PIDPaths). It reads each chosen
// controller where the FS does (see Mode): from its v1 hierarchy, at the
// path of that name, else from the unified one, at the path under "". For
// each it opens the group's directory beneath the hierarchy's mount
// (openat2 with RESOLVE_BENEATH, else openat and an fstatfs check that it
// is a cgroup filesystem) and the files the controller needs there. A file
// that does not exist leaves its fields Unavailable (RefreshLimits looks
// for it again). If none of the group's directories exist the error matches
// ErrNotExist.
func (f *FS) OpenPaths(ctx context.Context, p Paths, c Controllers) (*Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := &Group{fs: f, version: 2, limitMaxAge: f.limitMaxAge, hugeDir: -1}
	o := opener{g: g, fs: f}
	o.open(p, c)
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
	for i := range g.files {
		if g.files[i].fd == -1 {
			g.missing++
		}
	}
	return g, nil
}

// opener collects the files of a group being opened.
type opener struct {
	g       *Group
	fs      *FS
	dirs    []int         // descriptors, by index in Group.dirs
	dirIdx  map[int]uint8 // index in Group.dirs by descriptor
	opened  int           // directories opened
	missing error         // the last "does not exist" error
	err     error         // the first hard error
	v2dir   int           // the unified directory, once opened (-2 before)
}

// open opens the group's directories and files, each controller where the
// FS reads it.
func (o *opener) open(p Paths, c Controllers) {
	o.v2dir = -2
	// On a hybrid host the group's unified directory is its own only when
	// it has the same path there as in a v1 hierarchy (as runc and systemd
	// make groups). A task left at the unified root, or elsewhere, by a
	// runtime that made its groups in v1 only would otherwise report the
	// root's figures (the whole system's pressure) as its own.
	sameGroup := o.fs.mode != Hybrid
	if u, ok := p[""]; ok && !sameGroup {
		// The group is the one of the memory or cpu hierarchy (where
		// runtimes put a container first), else of any v1 one.
		names := []string{"memory", "cpu"}
		if _, ok := p["memory"]; !ok {
			if _, ok := p["cpu"]; !ok {
				names = []string{"cpuacct", "blkio", "pids", "hugetlb"}
			}
		}
		for _, c := range names {
			if v, ok := p[c]; ok && v == u {
				sameGroup = true
				break
			}
		}
	}
	// dir opens the directory of v1 controller name, or the unified one.
	dir := func(name string) (fd int, v2, ok bool) {
		m, v2 := o.fs.hierarchy(name)
		switch {
		case m == nil:
			return -1, false, false // nowhere: its fields stay Unavailable
		case v2 && !sameGroup:
			return -1, true, false
		case v2:
			return o.unified(p), true, true
		}
		o.g.version = 1
		return o.dir(m, p, name), false, true
	}
	if c&CPU != 0 {
		if fd, v2, ok := dir("cpu"); ok && fd >= 0 {
			if v2 {
				o.file(fd, "cpu.stat", kCPUStatV2)
				o.file(fd, "cpu.max", kCPUMax)
				o.file(fd, "cpu.weight", kWeight)
			} else {
				o.file(fd, "cpu.stat", kCPUStatV1)
				o.file(fd, "cpu.cfs_quota_us", kCFSQuota)
				o.file(fd, "cpu.cfs_period_us", kCFSPeriod)
				o.file(fd, "cpu.shares", kShares)
			}
		}
		if fd, v2, ok := dir("cpuacct"); ok && fd >= 0 && !v2 {
			// Usage is the sum of usage_percpu, as the kernel computes
			// cpuacct.usage: one file fewer per Stat.
			o.either(fd, "cpuacct.usage_percpu", kUsagePerCPU, "cpuacct.usage", kUsage)
			if o.fs.userHZ > 0 {
				o.file(fd, "cpuacct.stat", kCPUAcctStat)
			}
		}
	}
	if c&Memory != 0 {
		if fd, v2, ok := dir("memory"); ok && fd >= 0 {
			if v2 {
				o.file(fd, "memory.current", kMemUsage)
				o.file(fd, "memory.max", kMemLimit)
				o.file(fd, "memory.peak", kMemPeak)
				o.file(fd, "memory.stat", kMemStatV2)
				if o.file(fd, "memory.events", kMemEvents) {
					// Opened once memory.events counts an event
					// (fdDeferred).
					o.g.files = append(o.g.files, file{fd: fdDeferred, kind: kMemEventsLocal, dir: o.dirIdx[fd], name: "memory.events.local"})
				} else {
					o.file(fd, "memory.events.local", kMemEventsLocal)
				}
				o.file(fd, "memory.swap.current", kSwapCurrent)
				o.file(fd, "memory.swap.max", kSwapMax)
				o.file(fd, "memory.swap.peak", kSwapPeak)
				o.file(fd, "memory.swap.events", kSwapEvents)
			} else {
				o.file(fd, "memory.usage_in_bytes", kMemUsage)
				o.file(fd, "memory.limit_in_bytes", kMemLimit)
				o.file(fd, "memory.max_usage_in_bytes", kMemPeak)
				o.file(fd, "memory.failcnt", kMemFailcnt)
				o.file(fd, "memory.stat", kMemStatV1)
				o.file(fd, "memory.memsw.limit_in_bytes", kMemSwLimit)
				o.file(fd, "memory.kmem.usage_in_bytes", kKmemUsage)
				o.file(fd, "memory.oom_control", kOOMControl)
			}
		}
	}
	if c&IO != 0 {
		if fd, v2, ok := dir("blkio"); ok && fd >= 0 {
			if v2 {
				o.file(fd, "io.stat", kIOStat)
			} else {
				o.either(fd, "blkio.throttle.io_service_bytes_recursive", kBlkioBytes, "blkio.throttle.io_service_bytes", kBlkioBytes)
				if o.err == nil {
					// The ops file of the same kind as the bytes file,
					// opened once that lists a device (fdDeferred); with
					// no bytes file, looked for on its own.
					switch b := o.g.files[len(o.g.files)-1]; {
					case b.fd < 0:
						o.either(fd, "blkio.throttle.io_serviced_recursive", kBlkioOps, "blkio.throttle.io_serviced", kBlkioOps)
					case b.name == "blkio.throttle.io_service_bytes":
						o.g.files = append(o.g.files, file{fd: fdDeferred, kind: kBlkioOps, dir: o.dirIdx[fd], name: "blkio.throttle.io_serviced"})
					default:
						o.g.files = append(o.g.files, file{fd: fdDeferred, kind: kBlkioOps, dir: o.dirIdx[fd], name: "blkio.throttle.io_serviced_recursive"})
					}
				}
			}
		}
	}
	if c&Pids != 0 {
		if fd, _, ok := dir("pids"); ok && fd >= 0 {
			o.file(fd, "pids.current", kPidsCurrent)
			o.file(fd, "pids.max", kPidsMax)
			o.file(fd, "pids.peak", kPidsPeak)
			o.file(fd, "pids.events", kPidsEvents)
		}
	}
	if c&Hugetlb != 0 {
		if fd, v2, ok := dir("hugetlb"); ok && fd >= 0 {
			o.g.hugeDir, o.g.hugeV2 = int(o.dirIdx[fd]), v2
			o.hugetlb(fd)
		}
	}
	if c&Pressure != 0 && o.fs.unified != nil && sameGroup {
		// The pressure files are in the unified directory, also on a
		// hybrid host whose controllers are all v1 (when the runtime made
		// the group there too: if not, the v1 directories alone make the
		// Group).
		saved := o.missing
		if fd := o.unified(p); fd >= 0 {
			o.psi(fd)
		}
		o.missing = saved
	}
}

// unified opens the group's unified directory once.
func (o *opener) unified(p Paths) int {
	if o.v2dir == -2 {
		o.v2dir = o.dir(o.fs.unified, p, "")
	}
	return o.v2dir
}

// hugetlb lists the group's huge page sizes and adds their files.
func (o *opener) hugetlb(fd int) {
	suffix := ".usage_in_bytes"
	if o.g.hugeV2 {
		suffix = ".current"
	}
	for i, size := range o.hugeSizes(fd, suffix) {
		if o.g.hugeV2 {
			o.fileIdx(fd, "hugetlb."+size+".current", kHugeUsage, i)
			o.fileIdx(fd, "hugetlb."+size+".max", kHugeLimit, i)
			o.fileIdx(fd, "hugetlb."+size+".events", kHugeEvents, i)
		} else {
			o.fileIdx(fd, "hugetlb."+size+".usage_in_bytes", kHugeUsage, i)
			o.fileIdx(fd, "hugetlb."+size+".limit_in_bytes", kHugeLimit, i)
			o.fileIdx(fd, "hugetlb."+size+".failcnt", kHugeFailcnt, i)
		}
	}
}

func (o *opener) psi(dir int) {
	o.file(dir, "cpu.pressure", kPSICPU)
	o.file(dir, "memory.pressure", kPSIMemory)
	o.file(dir, "io.pressure", kPSIIO)
}

// dir opens the group's directory in one hierarchy; -1 if it does not exist
// there (recorded in o.missing) or on a hard error (recorded in o.err). A
// directory already opened (cpu and cpuacct co-mounted) is opened once.
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
	for i, d := range o.g.dirs {
		if d.point == m.point && d.rel == rel {
			return o.dirs[i]
		}
	}
	fd, err := o.fs.openDir(m.point, rel)
	if err == nil {
		var d dirName
		if d, err = o.fs.describeDir(fd, m.point, rel); err == nil {
			o.dirs = append(o.dirs, fd)
			if o.dirIdx == nil {
				o.dirIdx = make(map[int]uint8)
			}
			o.dirIdx[fd] = uint8(len(o.g.dirs))
			if n := len(o.g.dirs); n > 0 && o.g.dirs[n-1].rel == rel {
				d.rel = o.g.dirs[n-1].rel // one copy of the path for every hierarchy
			}
			o.g.dirs = append(o.g.dirs, d)
			o.opened++
			return fd
		}
		unix.Close(fd)
	}
	full := filepath.Join(m.point, rel)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
		o.missing = &os.PathError{Op: "open", Path: full, Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
	} else {
		o.err = &os.PathError{Op: "open", Path: full, Err: err}
	}
	return -1
}

// describeDir records a group directory the FS opened: its inode (the
// Group's identity, and how a later look tells the same directory from one
// made again at its path) and whether it is on a cgroup filesystem (whose
// cheap files may be read raw). A directory on another filesystem (a FUSE
// tree such as lxcfs, or a copy of cgroup files, under WithRoot) is read
// with ordinary system calls only, which the FS announces once.
func (f *FS) describeDir(fd int, point, rel string) (dirName, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return dirName{}, err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return dirName{}, err
	}
	d := dirName{point: point, rel: rel, ino: st.Ino}
	d.pseudo = sfs.Type == unix.CGROUP_SUPER_MAGIC || sfs.Type == unix.CGROUP2_SUPER_MAGIC
	if !d.pseudo {
		f.announceNonCgroup.Do(func() {
			f.log.Info("cgroup: not a cgroup filesystem; reading its files with ordinary system calls", "dir", filepath.Join(point, rel), "type", fmt.Sprintf("%#x", sfs.Type))
		})
	}
	return d, nil
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

// file opens name in dir and keeps it; false if it does not exist (it is
// kept with fd -1, for RefreshLimits to look for again).
func (o *opener) file(dir int, name string, k kind) bool { return o.fileIdx(dir, name, k, 0) }

// either keeps the first of two files that exists (a newer kernel's and an
// older one's); if neither does, the first is kept with fd -1.
func (o *opener) either(dir int, name string, k kind, alt string, altKind kind) {
	if o.tryFile(dir, name, k, 0) || o.tryFile(dir, alt, altKind, 0) {
		return
	}
	o.fileIdx(dir, name, k, 0)
}

func (o *opener) fileIdx(dir int, name string, k kind, idx int) bool {
	if o.tryFile(dir, name, k, idx) {
		return true
	}
	if o.err == nil {
		o.g.files = append(o.g.files, file{fd: -1, kind: k, dir: o.dirIdx[dir], idx: uint16(idx), name: name})
	}
	return false
}

// tryFile opens name in dir and keeps it; false, keeping nothing, if it does
// not exist.
func (o *opener) tryFile(dir int, name string, k kind, idx int) bool {
	if o.err != nil {
		return false
	}
	fd, err := openFile(dir, name)
	if err != nil {
		if err != unix.ENOENT {
			d := o.g.dirs[o.dirIdx[dir]]
			o.err = &os.PathError{Op: "open", Path: filepath.Join(d.point, d.rel, name), Err: err}
		}
		return false
	}
	o.g.files = append(o.g.files, file{fd: o.g.hold(fd, k), kind: k, dir: o.dirIdx[dir], idx: uint16(idx), name: name})
	return true
}

// hold is what a Group keeps of a file of kind k it just opened: the
// descriptor, or fdClosed for a limit file held closed (see fdClosed),
// which it closes.
func (g *Group) hold(fd int, k kind) int32 {
	if g.limitMaxAge > 0 && k.isLimit() {
		unix.Close(fd)
		return fdClosed
	}
	return int32(fd)
}

// openFile opens a file of a group's directory for reading.
func openFile(dir int, name string) (int, error) {
	return unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
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

// lookAgainForFiles opens the files the Group lacks (see RefreshLimits), and lists
// the huge page sizes again if it had none. For each directory with a file
// missing it opens the directory again by its path, and only if it is the
// same directory (the same inode: not a group made again at the path) looks
// there. A missing file that exists but can not be opened is an error; one
// that does not exist is not.
func (g *Group) lookAgainForFiles() error {
	var errs []error
	for di := range g.dirs {
		want := g.hugeV2 && g.hugeDir == di && len(g.hugeSizes) == 0
		for i := range g.files {
			want = want || g.files[i].fd == -1 && int(g.files[i].dir) == di
		}
		if !want {
			continue
		}
		d := g.dirs[di]
		fd, err := g.fs.openDir(d.point, d.rel)
		if err != nil {
			continue // removed: the files kept will tell
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Ino != d.ino {
			unix.Close(fd)
			continue
		}
		for i := range g.files {
			f := &g.files[i]
			if f.fd != -1 || int(f.dir) != di {
				continue
			}
			nfd, err := openFile(fd, f.name)
			switch {
			case err == nil:
				f.fd = g.hold(nfd, f.kind)
				g.missing--
			case err != unix.ENOENT:
				errs = append(errs, &os.PathError{Op: "open", Path: g.path(f), Err: err})
			}
		}
		if g.hugeV2 && g.hugeDir == di && len(g.hugeSizes) == 0 && hasController(fd, "hugetlb") {
			o := opener{g: g, fs: g.fs, dirs: []int{fd}, dirIdx: map[int]uint8{fd: uint8(di)}}
			n := len(g.files)
			o.hugetlb(fd)
			if o.err != nil {
				errs = append(errs, o.err)
			}
			for _, f := range g.files[n:] {
				if f.fd == -1 {
					g.missing++
				}
			}
		}
		unix.Close(fd)
	}
	return errors.Join(errs...)
}

// hasController says whether a v2 group directory's cgroup.controllers
// lists controller c (whose files the group then has). It reads into a
// buffer on the stack: no allocation.
func hasController(dir int, c string) bool {
	fd, err := openFile(dir, "cgroup.controllers")
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var buf [256]byte
	n, err := pread.Ordinary(fd, buf[:], 0)
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(buf[:n])) {
		if f == c {
			return true
		}
	}
	return false
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
		if f.fd < 0 {
			continue
		}
		if err := unix.Close(int(f.fd)); err != nil && first == nil {
			first = err
		}
	}
	g.files = nil
	return first
}

// Stat reads the group's files and fills s. Fields whose files the group
// does not have, or whose content is malformed, are left Unavailable.
//
// A group removed before or during Stat gives an error matching
// ErrNotExist, and Stat stops there (s holds what was read before). A file
// that answers as a removed one does (ENODEV) in a group that lives on has
// been hidden or removed on its own: PSI switched off for the group
// (cgroup.pressure 0), a controller taken out of the parent's
// cgroup.subtree_control. Stat tells the two apart by opening the group's
// directory again and comparing its inode; such a file leaves its fields
// Unavailable, with no error, and RefreshLimits looks for it again. Any
// other failure (malformed content, which gives a *ParseError; a read that
// fails otherwise) leaves that file's fields Unavailable, and Stat reads
// the rest and returns every such error joined (errors.Is and errors.As
// see each).
//
// In steady state (a reused s whose slices have grown to size) Stat does not
// allocate, but for the Stat that opens the limit files held closed (once
// per WithLimitMaxAge).
func (g *Group) Stat(ctx context.Context, s *Stats) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	var errs []error
	if g.lookAgain {
		g.lookAgain = false
		if err := g.lookAgainForFiles(); err != nil {
			errs = append(errs, err)
		}
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
	var live uint64      // bit i: dirs[i] was found alive during this Stat
	noBlkgs := false     // the v1 bytes file listed no device
	noMemEvents := false // memory.events counted no event
	var ld limitDirs     // the directories opened for the limit files held closed
	if !skipLimits && g.limitMaxAge > 0 {
		defer g.closeLimits(&ld)
	}
	for i := range g.files {
		f := &g.files[i]
		if f.kind == kBlkioOps && noBlkgs {
			s.IO.sumDevices(ioOps) // Known 0, as the file would give
			continue
		}
		if f.kind == kMemEventsLocal && noMemEvents {
			s.Memory.EventsLocal = s.Memory.Events // the same keys, all 0
			continue
		}
		if f.fd == fdDeferred {
			if err := g.openDeferred(f); err != nil {
				if gone, _ := g.dirGone(f.dir); gone {
					return &os.PathError{Op: "open", Path: g.path(f), Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
				}
				errs = append(errs, &os.PathError{Op: "open", Path: g.path(f), Err: err})
				continue
			}
		}
		if f.fd == fdClosed && !skipLimits {
			if err := g.openLimit(f, &ld); err != nil {
				if gone, _ := g.dirGone(f.dir); gone {
					return &os.PathError{Op: "open", Path: g.path(f), Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
				}
				errs = append(errs, &os.PathError{Op: "open", Path: g.path(f), Err: err})
				continue
			}
		}
		if f.fd < 0 || skipLimits && f.kind.isLimit() {
			continue
		}
		b, err := g.read(i, f, buf)
		if err != nil {
			switch {
			case err == unix.EOPNOTSUPP: // PSI disabled (psi=0)
				continue
			case err == unix.ENODEV || err == unix.ENOENT:
				if live&(1<<f.dir) == 0 {
					gone, gerr := g.dirGone(f.dir)
					if gone {
						return &os.PathError{Op: "read", Path: g.path(f), Err: fmt.Errorf("%w (%w)", ErrNotExist, err)}
					}
					if gerr != nil {
						// Can not tell: keep the file, report it.
						errs = append(errs, &os.PathError{Op: "read", Path: g.path(f), Err: fmt.Errorf("%w; and the group's directory: %w", err, gerr)})
						continue
					}
					live |= 1 << f.dir
				}
				g.drop(f)
			default:
				errs = append(errs, &os.PathError{Op: "read", Path: g.path(f), Err: err})
			}
			continue
		}
		if err := g.parse(f, b, s); err != nil {
			clearFields(f, s)
			errs = append(errs, withFile(g.path(f), err))
		} else if f.kind == kBlkioBytes {
			noBlkgs = bytes.HasPrefix(b, []byte("Total "))
		} else if f.kind == kMemEvents {
			noMemEvents = s.Memory.Events.allZero()
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
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// openDeferred opens a file left for later (fdDeferred) in the group's
// directory, opened again by its path and used only if it is the same
// directory (the same inode). A file that does not exist (an older kernel's
// name) becomes a missing one, for RefreshLimits to look for; that is no
// error.
func (g *Group) openDeferred(f *file) error {
	dfd, err := g.reopenDir(f.dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	return g.openAt(f, dfd)
}

// reopenDir opens directory i of the group again by its path and returns
// it only if it is the same directory (the same inode): a group made again
// at the path means this one is gone (ENOENT).
func (g *Group) reopenDir(i uint8) (int, error) {
	d := g.dirs[i]
	fd, err := g.fs.openDir(d.point, d.rel)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Ino != d.ino {
		unix.Close(fd)
		return -1, unix.ENOENT // a group made again at the path: this one is gone
	}
	return fd, nil
}

// openAt opens f in the directory dfd. A file that does not exist (an
// older kernel's name, a v2 controller gone) becomes a missing one, for
// RefreshLimits to look for; that is no error.
func (g *Group) openAt(f *file, dfd int) error {
	fd, err := openFile(dfd, f.name)
	switch {
	case err == nil:
		f.fd = int32(fd)
	case err == unix.ENOENT:
		f.fd = -1
		g.missing++
	default:
		return err
	}
	return nil
}

// limitDirs are the group's directories a Stat opened to open the limit
// files held closed, by index in Group.dirs (plus one: 0 is none).
type limitDirs [8]int32

// openLimit opens a limit file held closed (fdClosed) for this Stat, in
// the group's directory opened again by its path (once per Stat, kept in
// ld) and used only if it is the same directory (the same inode).
// closeLimits closes it after. A file that no longer exists in the live
// directory (which the kernel does not do to a v1 limit file; a v2 one
// goes with its controller) becomes a missing one, for RefreshLimits to
// look for; that is no error.
func (g *Group) openLimit(f *file, ld *limitDirs) error {
	if int(f.dir) < len(ld) && ld[f.dir] > 0 {
		return g.openAt(f, int(ld[f.dir]-1))
	}
	dfd, err := g.reopenDir(f.dir)
	if err != nil {
		return err
	}
	if int(f.dir) < len(ld) {
		ld[f.dir] = int32(dfd) + 1
	} else {
		defer unix.Close(dfd)
	}
	return g.openAt(f, dfd)
}

// closeLimits closes what openLimit opened for a Stat: the limit files
// still open (a file found removed since was dropped) are held closed
// again.
func (g *Group) closeLimits(ld *limitDirs) {
	for i := range g.files {
		if f := &g.files[i]; f.fd >= 0 && f.kind.isLimit() {
			unix.Close(int(f.fd))
			f.fd = fdClosed
		}
	}
	for _, fd := range ld {
		if fd > 0 {
			unix.Close(int(fd - 1))
		}
	}
}

// drop closes a file found hidden or removed in a live group; RefreshLimits
// looks for it again.
func (g *Group) drop(f *file) {
	unix.Close(int(f.fd))
	f.fd = -1
	g.missing++
	g.limitsKept = false
}

// dirGone reports whether the group's directory dirs[i] has been removed:
// its path no longer opens, or opens another directory (a group made again
// there). The descriptors a Group keeps can not tell: the kernel answers
// ENODEV both for a file of a removed group and for one hidden in a live
// group.
func (g *Group) dirGone(i uint8) (bool, error) {
	d := g.dirs[i]
	fd, err := g.fs.openDir(d.point, d.rel)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENODEV {
			return true, nil
		}
		return false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	return st.Ino != d.ino, nil
}

// clearFields makes the fields a malformed file fills Unavailable again,
// undoing what its parser set before it met the fault.
func clearFields(f *file, s *Stats) {
	c, m := &s.CPU, &s.Memory
	switch f.kind {
	case kCPUStatV1, kCPUStatV2:
		c.Periods, c.ThrottledPeriods, c.ThrottledTime, c.Bursts, c.BurstTime = Value{}, Value{}, Value{}, Value{}, Value{}
		if f.kind == kCPUStatV2 {
			c.Usage, c.User, c.System = Value{}, Value{}, Value{}
		}
	case kCPUMax:
		c.Quota, c.Period = Value{}, Value{}
	case kCFSQuota:
		c.Quota = Value{}
	case kCFSPeriod:
		c.Period = Value{}
	case kShares:
		c.Shares = Value{}
	case kWeight:
		c.Weight = Value{}
	case kCPUAcctStat:
		c.User, c.System = Value{}, Value{}
	case kUsage:
		c.Usage = Value{}
	case kUsagePerCPU:
		c.Usage, c.PerCPU = Value{}, c.PerCPU[:0]
	case kMemUsage:
		m.Usage = Value{}
	case kMemLimit:
		m.Limit = Value{}
	case kMemPeak:
		m.Peak = Value{}
	case kMemFailcnt:
		m.Failcnt = Value{}
	case kMemStatV1, kMemStatV2:
		m.Anon, m.File, m.Shmem, m.MappedFile, m.InactiveFile, m.ActiveFile = Value{}, Value{}, Value{}, Value{}, Value{}, Value{}
		m.Pgfault, m.Pgmajfault = Value{}, Value{}
		if f.kind == kMemStatV1 {
			m.SwapUsage = Value{}
		} else {
			m.Kernel = Value{}
		}
	case kMemSwLimit:
		m.MemSwapLimit = Value{}
	case kKmemUsage:
		m.Kernel = Value{}
	case kOOMControl:
		m.Events.OOMKill, m.Events.UnderOOM = Value{}, Value{}
	case kMemEvents:
		m.Events = MemoryEvents{}
	case kMemEventsLocal:
		m.EventsLocal = MemoryEvents{}
	case kSwapCurrent:
		m.SwapUsage = Value{}
	case kSwapMax:
		m.SwapLimit = Value{}
	case kSwapPeak:
		m.SwapPeak = Value{}
	case kSwapEvents:
		m.SwapEvents = SwapEvents{}
	case kBlkioBytes, kBlkioOps, kIOStat:
		set := ioAll
		switch f.kind {
		case kBlkioBytes:
			set = ioBytes
		case kBlkioOps:
			set = ioOps
		}
		s.IO.clear(set)
	case kPidsCurrent:
		s.Pids.Current = Value{}
	case kPidsMax:
		s.Pids.Limit = Value{}
	case kPidsPeak:
		s.Pids.Peak = Value{}
	case kPidsEvents:
		s.Pids.ForkFailures = Value{}
	case kHugeUsage:
		s.Hugetlb.Sizes[f.idx].Usage = Value{}
	case kHugeLimit:
		s.Hugetlb.Sizes[f.idx].Limit = Value{}
	case kHugeFailcnt, kHugeEvents:
		s.Hugetlb.Sizes[f.idx].Failcnt = Value{}
	case kPSICPU:
		s.Pressure.CPU = PSI{}
	case kPSIMemory:
		s.Pressure.Memory = PSI{}
	case kPSIIO:
		s.Pressure.IO = PSI{}
	}
}

// dirName is a group's directory: a mount point (the FS's string), the
// group's path beneath it, its inode, and whether it is on a cgroup
// filesystem.
type dirName struct {
	point, rel string
	ino        uint64
	pseudo     bool
}

// path names a file for errors.
func (g *Group) path(f *file) string {
	d := g.dirs[f.dir]
	return filepath.Join(d.point, d.rel, f.name)
}

// read preads file i whole into *buf, growing it when a file fills it
// (rare, and once per size: the grown buffer goes back to the pool). A file
// cheap by construction on a cgroup filesystem is read with a raw system
// call; another one raw until a read of it takes longer than
// pread.SlowRead, then the ordinary way (g.slow remembers it); a file not
// on a cgroup filesystem always the ordinary way (see kind.cheap).
func (g *Group) read(i int, f *file, buf *[]byte) ([]byte, error) {
	for {
		var n int
		var err error
		switch {
		case !g.dirs[f.dir].pseudo || i >= 64 && !f.kind.cheap():
			n, err = pread.Ordinary(int(f.fd), *buf, 0)
		case f.kind.cheap():
			n, err = pread.Pseudo(int(f.fd), *buf, 0)
		default:
			slow := g.slow&(1<<i) != 0
			n, err = pread.Adaptive(int(f.fd), *buf, 0, &slow)
			if slow {
				g.slow |= 1 << i
			}
		}
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
	case kCPUAcctStat:
		return parseCPUAcctStat(b, g.fs.userHZ, c)
	case kUsage:
		return single(b, &c.Usage)
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
	case kMemEventsLocal:
		return parseMemoryEvents(b, &m.EventsLocal)
	case kSwapCurrent:
		return single(b, &m.SwapUsage)
	case kSwapMax:
		return limitFile(b, pageMax, &m.SwapLimit)
	case kSwapPeak:
		return single(b, &m.SwapPeak)
	case kSwapEvents:
		return parseSwapEvents(b, &m.SwapEvents)
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
	case kPidsPeak:
		return single(b, &s.Pids.Peak)
	case kPidsEvents:
		return parseHugetlbEvents(b, &s.Pids.ForkFailures)
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
	deriveMemory(&s.Memory)
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
