package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/internal/pread"
)

// BenchmarkReadPath measures the choice internal/pread makes per file: each
// cgroup file the cgroup package reads whose cost is not bounded by
// construction, a few that are (for comparison), and a namespace's net/dev,
// read through a kept descriptor with a raw system call (pread.Pseudo, which
// keeps the P) and with the ordinary one (pread.Ordinary). It reports ns/op
// and the slowest and fastest single reads (max-us, min-us: the kernel's own
// cost, least disturbed by other load).
//
// The groups read are a leaf ("leaf") and its parent ("parent"), made by
// the benchmark, with METRICSD_BENCH_READPATH_GROUPS more leaves beside the
// first (default 0), of which METRICSD_BENCH_READPATH_BUSY (default 16, at
// most the groups) each run a shell that writes and removes a 1 MiB file in
// /dev/shm in a loop (memory statistics that keep changing, to be flushed);
// the namespace has METRICSD_BENCH_READPATH_DEVS more veth devices (in pairs)
// beside lo and a first pair (default 0). Root only.
//
//	cd bench && sudo METRICSD_BENCH_READPATH_GROUPS=1000 go test -run '^$' -bench 'ReadPath$' -benchtime 2000x
func BenchmarkReadPath(b *testing.B) {
	leaf, parent, netDev := readPathSetup(b)
	type target struct{ name, path string }
	var files []target
	add := func(prefix string, dirs map[string]string, names ...string) {
		for _, n := range names {
			ctl, file, _ := strings.Cut(n, "/")
			files = append(files, target{prefix + "/" + file, filepath.Join(dirs[ctl], file)})
		}
	}
	for _, g := range []struct {
		name string
		dirs map[string]string
	}{{"leaf", leaf}, {"parent", parent}} {
		if _, ok := cgtest.PureV2(); ok {
			add(g.name, g.dirs, "/memory.stat", "/io.stat", "/cpu.stat", "/cpu.pressure", "/memory.pressure",
				"/memory.current", "/memory.events", "/pids.current")
		} else {
			add(g.name, g.dirs, "memory/memory.stat", "blkio/blkio.throttle.io_service_bytes_recursive",
				"blkio/blkio.throttle.io_serviced_recursive", "cpuacct/cpuacct.stat", "cpuacct/cpuacct.usage_percpu",
				"cpu/cpu.stat", "memory/memory.usage_in_bytes")
			if _, ok := g.dirs[""]; ok {
				add(g.name, g.dirs, "/cpu.pressure", "/memory.pressure")
			}
		}
	}
	files = append(files, target{"netns/net_dev", netDev})
	buf := make([]byte, 1<<20)
	for _, f := range files {
		fd, err := unix.Open(f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { unix.Close(fd) })
		for _, p := range readPaths {
			if p.name == "adaptive" {
				continue
			}
			b.Run(f.name+"/"+p.name, func(b *testing.B) {
				var worst time.Duration
				best := time.Hour
				var slow bool
				for b.Loop() {
					t0 := time.Now()
					if _, err := p.read(fd, buf, &slow); err != nil {
						b.Fatal(err)
					}
					d := time.Since(t0)
					worst, best = max(worst, d), min(best, d)
				}
				b.ReportMetric(float64(worst.Nanoseconds())/1e3, "max-us")
				b.ReportMetric(float64(best.Nanoseconds())/1e3, "min-us")
			})
		}
	}
}

// BenchmarkReadPathGC measures what a raw read does to the program around
// it: one goroutine reads a file in a loop (raw, ordinary, or adaptive,
// which turns ordinary after its first read over pread.SlowRead) while the
// benchmark forces garbage collections, and it reports the longest wait for
// the world to stop (stop-max-us, the upper bound of runtime/metrics'
// /sched/pauses/stopping/gc:seconds bucket) and the reads made (reads/op).
// The files: the leaf group's memory.stat and the namespace's net/dev, set
// up as BenchmarkReadPath's.
//
//	cd bench && sudo METRICSD_BENCH_READPATH_DEVS=2000 go test -run '^$' -bench 'ReadPathGC' -benchtime 200x
func BenchmarkReadPathGC(b *testing.B) {
	leaf, _, netDev := readPathSetup(b)
	mem := filepath.Join(leaf["memory"], "memory.stat")
	if _, ok := cgtest.PureV2(); ok {
		mem = filepath.Join(leaf[""], "memory.stat")
	}
	for _, f := range []struct{ name, path string }{{"leaf/memory.stat", mem}, {"netns/net_dev", netDev}} {
		fd, err := unix.Open(f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { unix.Close(fd) })
		for _, p := range readPaths {
			b.Run(f.name+"/"+p.name, func(b *testing.B) {
				var stop atomic.Bool
				var reads atomic.Int64
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					rb := make([]byte, 1<<20)
					var slow bool
					for !stop.Load() {
						p.read(fd, rb, &slow)
						reads.Add(1)
					}
				}()
				before := stopMax()
				for b.Loop() {
					runtime.GC()
				}
				stop.Store(true)
				wg.Wait()
				after := stopMax()
				if after.n == before.n {
					b.Fatal("no stop-the-world recorded")
				}
				b.ReportMetric(after.maxSince(before)*1e6, "stop-max-us")
				b.ReportMetric(float64(reads.Load())/float64(b.N), "reads/op")
			})
		}
	}
}

// BenchmarkReadPathScrape measures what an ordinary read costs a scraper
// beyond the read itself: each iteration sleeps 50 ms (a scrape interval's
// idle gap, in which the runtime's monitor thread goes back to sleep), then
// reads the leaf group's v1 memory files twice over (16 reads, a small
// scrape) all raw, all raw but one memory.stat read ordinary, or all
// ordinary, and reports this process's CPU time (cpu-us/op) and context
// switches (csw/op) per scrape from getrusage. The first ordinary system
// call of a burst wakes the monitor thread, which then polls every 20 µs
// for a while: that, not the read, is most of the difference.
//
//	cd bench && sudo go test -run '^$' -bench 'ReadPathScrape' -benchtime 200x
func BenchmarkReadPathScrape(b *testing.B) {
	if _, ok := cgtest.PureV2(); ok {
		b.Skip("reads the v1 memory files of a hybrid or v1 host")
	}
	leaf, _ := readPathGroups(b, 0, 0)
	names := []string{"memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt",
		"memory.stat", "memory.kmem.usage_in_bytes", "memory.oom_control", "memory.memsw.limit_in_bytes"}
	var fds []int
	for range 2 {
		for _, n := range names {
			fd, err := unix.Open(filepath.Join(leaf["memory"], n), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { unix.Close(fd) })
			fds = append(fds, fd)
		}
	}
	buf := make([]byte, 8192)
	for _, mode := range []string{"raw", "one-ordinary", "ordinary"} {
		b.Run(mode, func(b *testing.B) {
			var r0, r1 unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &r0)
			for b.Loop() {
				time.Sleep(50 * time.Millisecond)
				for i, fd := range fds {
					if mode == "ordinary" || mode == "one-ordinary" && i == 4 {
						pread.Ordinary(fd, buf, 0)
					} else {
						pread.Pseudo(fd, buf, 0)
					}
				}
			}
			unix.Getrusage(unix.RUSAGE_SELF, &r1)
			cpu := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
			b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-us/op")
			b.ReportMetric(float64(r1.Nvcsw+r1.Nivcsw-r0.Nvcsw-r0.Nivcsw)/float64(b.N), "csw/op")
		})
	}
}

// readPaths are the ways BenchmarkReadPath and BenchmarkReadPathGC read.
var readPaths = []struct {
	name string
	read func(fd int, b []byte, slow *bool) (int, error)
}{
	{"raw", func(fd int, b []byte, _ *bool) (int, error) { return pread.Pseudo(fd, b, 0) }},
	{"ordinary", func(fd int, b []byte, _ *bool) (int, error) { return pread.Ordinary(fd, b, 0) }},
	{"adaptive", func(fd int, b []byte, slow *bool) (int, error) { return pread.Adaptive(fd, b, 0, slow) }},
}

// readPathSetup makes the groups and the namespace of BenchmarkReadPath and
// returns the leaf's and the parent's directories and the namespace's
// net/dev path.
func readPathSetup(b *testing.B) (leaf, parent map[string]string, netDev string) {
	groups := envInt(b, "METRICSD_BENCH_READPATH_GROUPS", 0)
	busy := min(envInt(b, "METRICSD_BENCH_READPATH_BUSY", 16), groups)
	devs := envInt(b, "METRICSD_BENCH_READPATH_DEVS", 0)
	leaf, parent = readPathGroups(b, groups, busy)
	_, pid := netnsForBench(b)
	if devs > 0 {
		var sb strings.Builder
		for i := range (devs + 1) / 2 { // veth pairs: veth is what containers have
			fmt.Fprintf(&sb, "link add mdv%d type veth peer name mdw%d\n", i, i)
		}
		cmd := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "-batch", "-")
		cmd.Stdin = strings.NewReader(sb.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("adding %d veth devices: %v %s", devs, err, out)
		}
	}
	return leaf, parent, fmt.Sprintf("/proc/%d/net/dev", pid)
}

// stopHist is runtime/metrics' histogram of how long stopping the world for
// a garbage collection took.
type stopHist struct {
	n       uint64
	counts  []uint64
	buckets []float64
}

func stopMax() stopHist {
	s := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return stopHist{n: n, counts: append([]uint64(nil), h.Counts...), buckets: h.Buckets}
}

// maxSince returns the upper bound (seconds) of the highest bucket that
// gained a count since before.
func (h stopHist) maxSince(before stopHist) float64 {
	for i := len(h.counts) - 1; i >= 0; i-- {
		if h.counts[i] > before.counts[i] {
			return h.buckets[i+1]
		}
	}
	return 0
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

// readPathGroups makes a parent group with a leaf and groups more leaves
// beside it, busy of them running a memory churner, in the v1 memory,
// blkio, cpu and cpuacct hierarchies (and the unified one of a hybrid host)
// or in the v2 hierarchy with memory, io, cpu and pids; it returns the
// directories of the leaf and of the parent by controller ("" for v2).
func readPathGroups(b *testing.B, groups, busy int) (leaf, parent map[string]string) {
	g := cgtest.New(b, "memory", "blkio", "cpu", "cpuacct", "pids", "")
	parent = map[string]string{}
	var mk func(name string) map[string]string
	if g.Version == 2 {
		// v2: processes only in leaves; g is the parent.
		g.Write("", "cgroup.subtree_control", "+memory +io +cpu +pids")
		parent[""] = g.Dirs[""]
		mk = func(name string) map[string]string {
			return g.Child(name).Dirs
		}
	} else {
		for c, d := range g.Dirs {
			parent[c] = d
		}
		mk = func(name string) map[string]string {
			dirs := map[string]string{}
			for c, d := range g.Dirs {
				dirs[c] = filepath.Join(d, name)
				if err := os.Mkdir(dirs[c], 0o755); err != nil {
					b.Fatal(err)
				}
			}
			b.Cleanup(func() {
				for _, d := range dirs {
					for i := 0; i < 100; i++ {
						if err := unix.Rmdir(d); err == nil || err == unix.ENOENT {
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			})
			return dirs
		}
	}
	leaf = mk("leaf")
	w := exec.Command("sleep", "3600") // the leaf's own process
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Process.Kill(); w.Wait() })
	for _, d := range leaf {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(w.Process.Pid)), 0); err != nil {
			b.Fatal(err)
		}
	}
	for i := range groups {
		dirs := mk(fmt.Sprintf("l%d", i))
		if i >= busy {
			continue
		}
		shm := fmt.Sprintf("/dev/shm/mdreadpath-%d-%d", os.Getpid(), i)
		sh := exec.Command("sh", "-c", `while :; do dd if=/dev/zero of="$0" bs=1M count=1 2>/dev/null; rm -f "$0"; done`, shm)
		sh.SysProcAttr = &unix.SysProcAttr{Setpgid: true} // its own group: dd goes with it
		if err := sh.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			unix.Kill(-sh.Process.Pid, unix.SIGKILL)
			sh.Wait()
			// A dd killed with the shell may have created the file after
			// the shell's last rm.
			for i := 0; i < 50; i++ {
				os.Remove(shm)
				time.Sleep(10 * time.Millisecond)
			}
		})
		for _, d := range dirs {
			if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(sh.Process.Pid)), 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	return leaf, parent
}
