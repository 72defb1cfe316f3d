package bench

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/cgtest"
)

// uringFiles are the files a v1 Group's Stat reads on a bare group made in
// cpu, cpuacct, memory, blkio and pids under the daemon's default limit max
// age (cgroup/group_linux.go; the 6 limit files are then held closed, and
// blkio's ops file is opened only once the bytes file lists a device): the
// 13 preads per group per collection of issue 15. A file this kernel lacks
// is left out.
var uringFiles = []struct{ controller, name string }{
	{"cpu", "cpu.stat"},
	{"cpuacct", "cpuacct.usage_percpu"},
	{"cpuacct", "cpuacct.stat"},
	{"memory", "memory.usage_in_bytes"},
	{"memory", "memory.max_usage_in_bytes"},
	{"memory", "memory.failcnt"},
	{"memory", "memory.stat"},
	{"memory", "memory.kmem.usage_in_bytes"},
	{"memory", "memory.oom_control"},
	{"blkio", "blkio.throttle.io_service_bytes_recursive"},
	{"pids", "pids.current"},
	{"pids", "pids.peak"},
	{"pids", "pids.events"},
}

// BenchmarkReadGroupsURing asks whether io_uring would cut the kernel's
// cost of issue 15's reads (69.6% of the daemon in pread64 at 1,000 groups):
// N bare v1 groups (no process), their 13 files kept open, all read once
// per iteration by one pread each ("pread", what Group.Stat does), or by
// io_uring with the descriptors registered, one IORING_OP_READ per file
// (IOSQE_FIXED_FILE, offset 0, a buffer each) submitted 256 at a time with
// io_uring_enter waiting for all of them ("uring"). Had the kernel punted
// the kernfs reads to its io-wq workers (threads of this process; it does
// not on 6.18: iou-wrk 0), the work would only move: cpu-ns/group
// (utime+stime of the process, the workers included) is the figure that
// matters, beside wall ns/group and iou-wrk (the workers alive after the
// loop). docs/BENCHMARKS.md has the figures (issue 15).
//
//	cd bench && go test -run '^$' -bench ReadGroupsURing -benchtime=20x
func BenchmarkReadGroupsURing(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run("groups="+strconv.Itoa(n), func(b *testing.B) {
			fds := uringGroups(b, n)
			bufs := make([][]byte, len(fds))
			for i := range bufs {
				bufs[i] = make([]byte, 8192)
			}
			b.Run("pread", func(b *testing.B) {
				loopGroups(b, n, func() error {
					for i, fd := range fds {
						if m, err := unix.Pread(fd, bufs[i], 0); err != nil {
							return err
						} else if m <= 0 {
							return errors.New("pread read nothing")
						}
					}
					return nil
				})
			})
			b.Run("uring", func(b *testing.B) {
				r, err := newRing(256, fds)
				if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
					b.Skipf("io_uring unavailable here: %v (kernel.io_uring_disabled, seccomp or a kernel without it)", err)
				} else if err != nil {
					b.Fatal(err)
				}
				defer r.close()
				checkRingReads(b, r, fds, bufs)
				loopGroups(b, n, func() error { return r.readAll(bufs) })
			})
		})
	}
}

// loopGroups runs read per iteration and reports wall and CPU time per
// group and the io-wq workers alive afterwards.
func loopGroups(b *testing.B, groups int, read func() error) {
	cpu0 := cpuTime()
	for b.Loop() {
		if err := read(); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(groups*b.N), "ns/group")
	b.ReportMetric(float64(cpu)/float64(groups*b.N), "cpu-ns/group")
	b.ReportMetric(float64(iouWorkers()), "iou-wrk")
}

// checkRingReads fails unless the ring reads what pread reads: every
// file's bytes equal a pread's before or after (a bare group's files do not
// move; one that did would differ from both only if it moved twice).
func checkRingReads(b *testing.B, r *ring, fds []int, bufs [][]byte) {
	b.Helper()
	before := make([][]byte, len(fds))
	for i, fd := range fds {
		m, err := unix.Pread(fd, bufs[i], 0)
		if err != nil {
			b.Fatal(err)
		}
		before[i] = bytes.Clone(bufs[i][:m])
		clear(bufs[i])
	}
	if err := r.readAll(bufs); err != nil {
		b.Fatal(err)
	}
	after := make([]byte, 8192)
	for i, fd := range fds {
		got := bufs[i][:r.got[i]]
		if bytes.Equal(got, before[i]) {
			continue
		}
		m, err := unix.Pread(fd, after, 0)
		if err != nil || !bytes.Equal(got, after[:m]) {
			b.Fatalf("file %d: io_uring read %q, pread %q then %q (%v)", i, got, before[i], after[:m], err)
		}
	}
}

// uringGroups makes n bare v1 groups beside a cgtest group (removed when b
// ends) and opens their files, closed when b ends; it skips when the
// descriptors would not fit under RLIMIT_NOFILE.
func uringGroups(b *testing.B, n int) []int {
	b.Helper()
	parent := cgtest.NewV1(b, "cpu", "cpuacct", "memory", "blkio", "pids")
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	if need := n*len(uringFiles) + 500; lim.Cur < uint64(need) {
		b.Skipf("RLIMIT_NOFILE is %d; %d groups need about %d descriptors", lim.Cur, n, need)
	}
	var fds []int
	b.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		for i := 0; i < n; i++ {
			for _, d := range parent.Dirs {
				os.Remove(filepath.Join(filepath.Dir(d), "u"+strconv.Itoa(i)))
			}
		}
	})
	for i := 0; i < n; i++ {
		for _, d := range parent.Dirs {
			if err := os.Mkdir(filepath.Join(filepath.Dir(d), "u"+strconv.Itoa(i)), 0o755); err != nil {
				b.Fatal(err)
			}
		}
	}
	var paths []string // of group 0, those this kernel has (no pids.peak before 6.13)
	for _, f := range uringFiles {
		p := filepath.Join(filepath.Dir(parent.Dirs[f.controller]), "u0", f.name)
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	if len(paths) < 10 {
		b.Fatalf("only %d of the %d files in a new group: %q", len(paths), len(uringFiles), paths)
	}
	for i := 0; i < n; i++ {
		for _, p := range paths {
			fd, err := unix.Open(strings.Replace(p, "/u0/", "/u"+strconv.Itoa(i)+"/", 1), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, fd)
		}
	}
	buf := make([]byte, 8192)
	for _, fd := range fds { // the first read of a file allocates its seq_file buffer
		if _, err := unix.Pread(fd, buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	return fds
}

// iouWorkers counts this process's io-wq worker threads.
func iouWorkers() int {
	tasks, _ := filepath.Glob("/proc/self/task/*/comm")
	n := 0
	for _, t := range tasks {
		if c, err := os.ReadFile(t); err == nil && strings.HasPrefix(string(c), "iou-wrk") {
			n++
		}
	}
	return n
}

// The io_uring ABI (include/uapi/linux/io_uring.h), what the benchmark uses.
const (
	sysIOURingSetup    = 425
	sysIOURingEnter    = 426
	sysIOURingRegister = 427

	ioringOffSQRing      = 0
	ioringOffSQEs        = 0x10000000
	ioringFeatSingleMmap = 1 << 0 // the CQ ring shares the SQ ring's mapping
	ioringEnterGetEvents = 1 << 0
	ioringRegisterFiles  = 2
	ioringOpRead         = 22
	iosqeFixedFile       = 1 << 0
	sqeSize, cqeSize     = 64, 16
)

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringSQE struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, rwFlags  uint32
	userData      uint64
	bufIndex      uint16
	personality   uint16
	spliceFDIn    int32
	addr3, pad    uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// ring is an io_uring with files registered, driven by hand.
type ring struct {
	fd                     int
	sqMem, cqMem, sqeMem   []byte
	sqHead, sqTail, sqMask *uint32
	cqHead, cqTail, cqMask *uint32
	sqes                   []uringSQE
	cqes                   []uringCQE
	entries, files         int
	got                    []int // bytes read per file by the last readAll
}

func newRing(entries int, fds []int) (*ring, error) {
	var p uringParams
	fd, _, e := unix.Syscall(sysIOURingSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, e
	}
	r := &ring{fd: int(fd), entries: int(p.sqEntries), files: len(fds), got: make([]int, len(fds))}
	fail := func(err error) (*ring, error) { r.close(); return nil, err }
	sqLen := int(p.sqOff.array) + int(p.sqEntries)*4
	cqLen := int(p.cqOff.cqes) + int(p.cqEntries)*cqeSize
	if p.features&ioringFeatSingleMmap == 0 {
		return fail(errors.New("kernel lacks IORING_FEAT_SINGLE_MMAP (< 5.4)"))
	}
	var err error
	if r.sqMem, err = unix.Mmap(r.fd, ioringOffSQRing, max(sqLen, cqLen), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(err)
	}
	r.cqMem = r.sqMem
	if r.sqeMem, err = unix.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(err)
	}
	u32 := func(m []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&m[off])) }
	r.sqHead, r.sqTail, r.sqMask = u32(r.sqMem, p.sqOff.head), u32(r.sqMem, p.sqOff.tail), u32(r.sqMem, p.sqOff.ringMask)
	r.cqHead, r.cqTail, r.cqMask = u32(r.cqMem, p.cqOff.head), u32(r.cqMem, p.cqOff.tail), u32(r.cqMem, p.cqOff.ringMask)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqes = unsafe.Slice((*uringCQE)(unsafe.Pointer(&r.cqMem[p.cqOff.cqes])), p.cqEntries)
	array := unsafe.Slice(u32(r.sqMem, p.sqOff.array), p.sqEntries)
	for i := range array {
		array[i] = uint32(i) // SQE i in slot i, for good
	}
	fds32 := make([]int32, len(fds))
	for i, fd := range fds {
		fds32[i] = int32(fd)
	}
	if _, _, e := unix.Syscall6(sysIOURingRegister, uintptr(r.fd), ioringRegisterFiles, uintptr(unsafe.Pointer(&fds32[0])), uintptr(len(fds32)), 0, 0); e != 0 {
		return fail(e)
	}
	return r, nil
}

func (r *ring) close() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
	}
	if r.sqMem != nil {
		unix.Munmap(r.sqMem)
	}
	unix.Close(r.fd)
}

// readAll reads every registered file i into bufs[i] from offset 0,
// r.entries at a time, and fails on any read that returned nothing.
func (r *ring) readAll(bufs [][]byte) error {
	for start := 0; start < r.files; start += r.entries {
		n := min(r.entries, r.files-start)
		tail := atomic.LoadUint32(r.sqTail) // ours: the kernel only reads it
		mask := *r.sqMask
		for i := 0; i < n; i++ {
			f := start + i
			r.sqes[(tail+uint32(i))&mask] = uringSQE{opcode: ioringOpRead, flags: iosqeFixedFile, fd: int32(f),
				addr: uint64(uintptr(unsafe.Pointer(&bufs[f][0]))), len: uint32(len(bufs[f])), userData: uint64(f)}
		}
		atomic.StoreUint32(r.sqTail, tail+uint32(n)) // release: the SQEs before the tail
		if err := r.enter(tail+uint32(n), n); err != nil {
			return err
		}
		head := atomic.LoadUint32(r.cqHead)
		cmask := *r.cqMask
		for i := 0; i < n; i++ {
			c := r.cqes[(head+uint32(i))&cmask]
			if c.res <= 0 {
				return errors.Join(errors.New("io_uring read of file "+strconv.FormatUint(c.userData, 10)+" returned "+strconv.Itoa(int(c.res))), unix.Errno(-c.res))
			}
			r.got[c.userData] = int(c.res)
		}
		atomic.StoreUint32(r.cqHead, head+uint32(n)) // release: the CQEs are read
	}
	return nil
}

// enter submits the SQEs up to tail and waits for want completions, again
// after a signal (Go's preemption) interrupts the wait.
func (r *ring) enter(tail uint32, want int) error {
	for tries := 0; ; tries++ {
		pending := tail - atomic.LoadUint32(r.sqHead)
		ready := atomic.LoadUint32(r.cqTail) - atomic.LoadUint32(r.cqHead)
		if pending == 0 && int(ready) >= want {
			return nil
		}
		_, _, e := unix.Syscall6(sysIOURingEnter, uintptr(r.fd), uintptr(pending), uintptr(want), ioringEnterGetEvents, 0, 0)
		switch {
		case e == unix.EINTR && tries < 1000: // and again
		case e != 0:
			return e
		}
	}
}
