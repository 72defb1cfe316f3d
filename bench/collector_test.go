package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/runtime"
)

// fixed is a Discoverer over containers the benchmark made.
type fixed []runtime.Container

func (f fixed) Name() string                                      { return "bench" }
func (f fixed) List(context.Context) ([]runtime.Container, error) { return f, nil }
func (f fixed) Close() error                                      { return nil }
func (f fixed) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	ch := make(chan runtime.Event)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// BenchmarkCollectScale is the scale benchmark of issue 6: 1,000 cgroups,
// each with a process in it, and 100 network namespaces (every tenth
// container has one of its own; the rest are in the host's), read in full
// (every cgroup controller, the cheap network tier) by one Collect.
//
// It makes 1,000 groups in five v1 hierarchies, 1,000 sleep processes and 100
// namespaces, so it runs only with METRICSD_BENCH_SCALE=1 (and root):
//
//	cd bench && sudo METRICSD_BENCH_SCALE=1 go test -run '^$' -bench CollectScale -benchmem -benchtime 20x
func BenchmarkCollectScale(b *testing.B) {
	if os.Getenv("METRICSD_BENCH_SCALE") == "" {
		b.Skip("set METRICSD_BENCH_SCALE=1 to make 1,000 cgroups and 100 namespaces")
	}
	cgtest.NeedRoot(b)
	const groups, namespaces = 1000, 100
	// Every v1 Group keeps 18 files open: 1,000 need 18,000 descriptors.
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	if lim.Cur < 19000 {
		b.Skipf("RLIMIT_NOFILE is %d; 1,000 groups need about 18,500 descriptors", lim.Cur)
	}
	_, cs := benchGroups(b, groups, namespaces, "c")
	ctx := context.Background()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(cs), metricsd.WithReconcileEvery(1<<30))
	if err != nil {
		b.Fatal(err)
	}
	defer col.Close()

	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	snap, err := col.Collect(ctx) // opens every handle
	if err != nil {
		b.Fatal(err)
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	if f := os.Getenv("HEAPPROF"); f != "" { // where the heap goes, for a profile

		out, _ := os.Create(f)
		pprof.WriteHeapProfile(out)
		out.Close()
	}
	withNet := 0
	for _, s := range snap.Containers {
		if s.Net != nil {
			withNet++
		}
	}
	if len(snap.Containers) != groups || withNet != namespaces {
		b.Fatalf("snapshot has %d containers, %d with network stats; want %d, %d", len(snap.Containers), withNet, groups, namespaces)
	}
	heapPer := float64(after.HeapAlloc-before.HeapAlloc) / groups

	var mu sync.Mutex
	var worst time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := col.Collect(ctx); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		mu.Lock()
		worst = max(worst, d)
		mu.Unlock()
	}
	b.ReportMetric(heapPer, "heapB/container")
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}

// benchGroups makes the scale benchmarks' layout: groups v1 groups named
// <prefix><i> beside one parent made by cgtest (cpu, cpuacct, memory, blkio,
// pids), a sleep process in each, and namespaces network namespaces (every
// groups/namespaces-th container has one of its own; the rest are in the
// host's). It returns the groups' common parent (a cgroup path) and the
// containers; everything is removed when b ends.
func benchGroups(b *testing.B, groups, namespaces int, prefix string) (base string, cs fixed) {
	b.Helper()
	parent := cgtest.NewV1(b, "cpu", "cpuacct", "memory", "blkio", "pids")
	base = filepath.Dir(parent.Path)
	var rnd [3]byte
	rand.Read(rnd[:])
	nsPrefix := "mdbench-" + hex.EncodeToString(rnd[:]) + "-"

	// One shell starts the sleeps and waits for them, so that this
	// process holds no descriptor per child (exec.Cmd keeps a pidfd each).
	sh := exec.Command("sh", "-c", `i=0; while [ $i -lt $0 ]; do sleep 3600 & echo $!; i=$((i+1)); done; wait`, strconv.Itoa(groups))
	out, err := sh.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		b.Fatal(err)
	}
	var pids []int
	sc := bufio.NewScanner(out)
	for len(pids) < groups && sc.Scan() {
		pid, err := strconv.Atoi(sc.Text())
		if err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	b.Cleanup(func() {
		for _, pid := range pids { // the shell's children: ours
			unix.Kill(pid, unix.SIGKILL)
		}
		sh.Wait()
		for i := 0; i < groups; i++ {
			for _, d := range parent.Dirs {
				os.Remove(filepath.Join(filepath.Dir(d), prefix+strconv.Itoa(i)))
			}
		}
		for i := 0; i < namespaces; i++ {
			exec.Command("ip", "netns", "del", nsPrefix+strconv.Itoa(i)).Run()
		}
	})
	for i := 0; i < namespaces; i++ {
		if out, err := exec.Command("ip", "netns", "add", nsPrefix+strconv.Itoa(i)).CombinedOutput(); err != nil {
			b.Fatalf("ip netns add: %v %s", err, out)
		}
	}
	for i := 0; i < groups; i++ {
		name := prefix + strconv.Itoa(i)
		for _, d := range parent.Dirs {
			dir := filepath.Join(filepath.Dir(d), name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pids[i])), 0); err != nil {
				b.Fatal(err)
			}
		}
		c := runtime.Container{ID: fmt.Sprintf("%064x", i), Name: name, Runtime: "bench", PID: pids[i],
			CgroupPath: base + "/" + name, State: runtime.StateRunning}
		if namespaces > 0 && i%(groups/namespaces) == 0 {
			c.NetNS.Path = "/run/netns/" + nsPrefix + strconv.Itoa(i/(groups/namespaces))
		} else {
			c.NetNS.Host = true
		}
		cs = append(cs, c)
	}
	return base, cs
}
