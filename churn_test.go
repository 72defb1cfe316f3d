package metricsd_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime/containerd"
)

// The churn: churnTotal containers, one started every churnSpacing (a
// minute in all), each living churnMinLife to churnMaxLife after it is up,
// so that about 15 run at any time and each spans several whole scrape
// intervals.
const (
	churnTotal    = 200
	churnSpacing  = 300 * time.Millisecond
	churnMinLife  = 3 * time.Second
	churnMaxLife  = 6 * time.Second
	churnParallel = 8 // ctr and ip commands in flight at once
)

// churnCtr is one container of the churn. Each goroutine writes its own;
// they are read once every goroutine is done.
type churnCtr struct {
	id   string
	life time.Duration
	up   time.Time // ctr run returned and the witness veth is in place
	down time.Time // just before the kill: running throughout [up, down]
	gone time.Time // its task and container were deleted
	pid  int
	ino  uint64 // its network namespace's nsfs inode
	err  error
}

// churnScrape is what the test keeps of one snapshot.
type churnScrape struct {
	start, end time.Time
	// present maps each container ID in the snapshot to whether its Net
	// stats show the veth the test put in that container's namespace.
	present                map[string]bool
	containers, namespaces int // Self
	handleFDs              int // /proc/<pid>/task/<tid>/net/* descriptors after it
}

// TestChurn runs the Collector against the real containerd while 200
// containers (each in its own network namespace) start and go over a minute,
// collecting every second. Every snapshot must succeed; every container
// running throughout a scrape interval must be in that snapshot, with the
// network stats of its own namespace; no removed container may linger; and
// once the last container is gone the Collector's descriptors and goroutines
// are back to what it had with no container, no namespace handle is left,
// and the kernel has destroyed every container's network namespace.
//
// It drives Collect with WithReconcileEvery(1) rather than Run: each
// snapshot lists containerd first, so "running throughout the interval"
// implies "in the snapshot" with no allowance for event latency, and
// Collect's error is the scrape's, where Run only logs it. (Run's event path
// adds and removes through the same add/release code.)
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of container churn")
	}
	env := rttest.Need(t, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)
	addr, rootfs, parent := env[0], env[1], env[2]
	for _, cmd := range []string{"ctr", "ip"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("needs %s", cmd)
		}
	}
	rttest.Lock(t, false)
	ns := rttest.Name("churn")
	t.Cleanup(func() { churnCleanup(addr, parent, ns) })

	// The witness namespace holds one end of a veth pair per container;
	// the other end is in the container's namespace. The kernel deletes
	// the pair when the container's namespace is destroyed, so an end left
	// here means something (a descriptor of the Collector) still pins it.
	witness := rttest.Name("mdchurn")
	if out, err := exec.Command("ip", "netns", "add", witness).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", witness).Run() })
	hostNet := churnIno(t, "/proc/self/ns/net")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	g0, fd0 := goruntime.NumGoroutine(), churnFDs()
	disc, err := containerd.New(ctx, containerd.WithAddress(addr), containerd.WithNamespaces(ns))
	if err != nil {
		t.Fatal(err)
	}
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(disc), metricsd.WithReconcileEvery(1), metricsd.WithInterval(time.Second))
	if err != nil {
		disc.Close()
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			col.Close()
		}
	}()
	// The Collector's fixed overhead: after a snapshot with no container.
	snap, err := col.Collect(ctx)
	if err != nil {
		t.Fatalf("first snapshot: %v", err)
	}
	if len(snap.Containers) != 0 || snap.Self.Namespaces != 0 {
		t.Fatalf("fresh namespace %s: %d containers, %d namespaces", ns, len(snap.Containers), snap.Self.Namespaces)
	}
	gIdle, fdIdle := churnSettle(goruntime.NumGoroutine, 0), churnSettle(churnFDs, 0)
	t.Logf("baseline: %d goroutines, %d descriptors; with the idle Collector: %d, %d", g0, fd0, gIdle, fdIdle)

	// The churn, on its own goroutines.
	ctrs := make([]churnCtr, churnTotal)
	sem := make(chan struct{}, churnParallel)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range ctrs {
		c := &ctrs[i]
		c.id = fmt.Sprintf("c%03d", i)
		c.life = churnMinLife + rand.N(churnMaxLife-churnMinLife)
		wg.Go(func() {
			if !churnSleepUntil(ctx, t0.Add(time.Duration(i)*churnSpacing)) {
				c.err = ctx.Err()
				return
			}
			sem <- struct{}{}
			c.err = churnStart(addr, ns, parent, rootfs, witness, hostNet, c)
			<-sem
			if c.err != nil {
				return
			}
			churnSleepUntil(ctx, c.up.Add(c.life))
			sem <- struct{}{}
			c.down = time.Now()
			rttest.CtrRemove(addr, ns, c.id)
			c.gone = time.Now()
			<-sem
		})
	}
	churnDone := make(chan struct{})
	go func() { wg.Wait(); close(churnDone) }()
	defer func() { cancel(); <-churnDone }() // on a failure: no goroutine outlives the test

	// Collect every second until the churn is over, then until the
	// Collector tracks nothing.
	var scrapes []churnScrape
	var scrapeErrs int
	perNS := 0 // handle descriptors per namespace, learnt from the first non-empty snapshot
	maxTracked, maxFDs, maxG := 0, 0, 0
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var drainUntil time.Time
	for {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			t.Fatalf("churn not over after %v (%d scrapes)", time.Since(t0), len(scrapes))
		}
		sc := churnScrape{start: time.Now()}
		snap, err := col.Collect(ctx)
		sc.end = time.Now()
		if err != nil {
			scrapeErrs++
			t.Errorf("scrape %d at %v failed: %v", len(scrapes), sc.start.Sub(t0).Round(time.Millisecond), err)
			continue
		}
		sc.present = make(map[string]bool, len(snap.Containers))
		for _, s := range snap.Containers {
			if s.Container.Runtime != containerd.Name || s.Container.Namespace != ns {
				t.Errorf("snapshot has %s %s/%s: not the test's", s.Container.Runtime, s.Container.Namespace, s.Container.ID)
				continue
			}
			sc.present[s.Container.ID] = s.Net != nil && s.Net.Interface(s.Container.ID) != nil
		}
		sc.containers, sc.namespaces = snap.Self.Containers, snap.Self.Namespaces
		sc.handleFDs = churnHandleFDs()
		scrapes = append(scrapes, sc)
		if sc.namespaces != sc.containers {
			t.Errorf("scrape %d: %d containers but %d namespace handles; each container has its own namespace", len(scrapes)-1, sc.containers, sc.namespaces)
		}
		if perNS == 0 && sc.namespaces > 0 {
			perNS = sc.handleFDs / sc.namespaces
			if perNS == 0 || sc.handleFDs%sc.namespaces != 0 {
				t.Errorf("%d namespace-file descriptors for %d namespace handles", sc.handleFDs, sc.namespaces)
			}
		}
		if perNS > 0 && sc.handleFDs != perNS*sc.namespaces {
			t.Errorf("scrape %d: %d namespace-file descriptors open for %d namespace handles (%d each): handles leak", len(scrapes)-1, sc.handleFDs, sc.namespaces, perNS)
		}
		maxTracked = max(maxTracked, col.Tracked())
		maxFDs = max(maxFDs, churnFDs())
		maxG = max(maxG, goruntime.NumGoroutine())

		select {
		case <-churnDone:
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(30 * time.Second)
			}
		default:
			continue
		}
		if col.Tracked() == 0 && len(snap.Containers) == 0 && snap.Self.Namespaces == 0 {
			break
		}
		if time.Now().After(drainUntil) {
			t.Fatalf("30 s after the last container went, the Collector still tracks %d (snapshot: %d containers, %d namespaces)",
				col.Tracked(), len(snap.Containers), snap.Self.Namespaces)
		}
	}
	ticker.Stop()
	t.Logf("churn: %v, %d scrapes, up to %d containers tracked, %d descriptors, %d goroutines", time.Since(t0).Round(time.Millisecond), len(scrapes), maxTracked, maxFDs, maxG)

	// Every container started, in its own namespace.
	started := 0
	for i := range ctrs {
		if ctrs[i].err != nil {
			t.Errorf("%s: %v", ctrs[i].id, ctrs[i].err)
			continue
		}
		started++
	}
	if started != churnTotal {
		t.Fatalf("%d of %d containers started", started, churnTotal)
	}

	// Every container running throughout a scrape interval is in that
	// snapshot, with its own namespace's stats; none is there after it
	// was deleted.
	byID := make(map[string]*churnCtr, len(ctrs))
	for i := range ctrs {
		byID[ctrs[i].id] = &ctrs[i]
	}
	checked := make(map[string]bool)
	checks, missing := 0, 0
	for i := range scrapes {
		sc := &scrapes[i]
		for id := range sc.present {
			c := byID[id]
			if c == nil {
				t.Errorf("scrape %d: unknown container %s", i, id)
			} else if !c.gone.IsZero() && c.gone.Before(sc.start) {
				t.Errorf("scrape %d at %v: %s is in it, but was deleted at %v", i, sc.start.Sub(t0).Round(time.Millisecond), id, c.gone.Sub(t0).Round(time.Millisecond))
			}
		}
		if i == 0 {
			continue
		}
		from := scrapes[i-1].start
		for j := range ctrs {
			c := &ctrs[j]
			if !c.up.Before(from) || !c.down.After(sc.end) {
				continue
			}
			checks++
			checked[c.id] = true
			ownNet, ok := sc.present[c.id]
			switch {
			case !ok:
				missing++
				if missing <= 10 {
					t.Errorf("scrape %d (%v to %v): %s, running from %v to %v, is missing", i,
						sc.start.Sub(t0).Round(time.Millisecond), sc.end.Sub(t0).Round(time.Millisecond), c.id,
						c.up.Sub(t0).Round(time.Millisecond), c.down.Sub(t0).Round(time.Millisecond))
				}
			case !ownNet:
				t.Errorf("scrape %d: %s has no network stats of its own namespace (no interface %s)", i, c.id, c.id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d (container, scrape) pairs missing", missing, checks)
	}
	// Each container lives at least 3 s, so nearly all span an interval.
	if len(checked) < churnTotal*3/4 {
		t.Errorf("only %d containers ran throughout a scrape interval: the check is too weak", len(checked))
	}
	if maxTracked < 5 || perNS == 0 {
		t.Errorf("at most %d containers tracked at once, %d descriptors per namespace handle: not a churn", maxTracked, perNS)
	}
	for _, st := range []metricsd.Stage{metricsd.StageDiscover, metricsd.StageCgroup, metricsd.StageNet} {
		if n := col.Errors(st); n != 0 {
			t.Errorf("%d %s errors during the churn", n, st)
		}
	}
	t.Logf("%d containers, %d (container, scrape) checks, %d open errors (containers that went while being opened)", started, checks, col.Errors(metricsd.StageOpen))

	// After the last container: no namespace pinned. The Collector holds
	// no namespace file and no descriptor of any container's namespace...
	if n := churnHandleFDs(); n != 0 {
		t.Errorf("%d namespace-file descriptors still open with no container", n)
	}
	inos := make(map[string]string, len(ctrs))
	for i := range ctrs {
		inos[fmt.Sprintf("net:[%d]", ctrs[i].ino)] = ctrs[i].id
	}
	for _, l := range churnLinks() {
		if id, ok := inos[l]; ok {
			t.Errorf("a descriptor still refers to %s's namespace %s", id, l)
		}
	}
	// ...and the kernel destroyed every container namespace: their veth
	// pairs are gone from the witness namespace (destruction is
	// asynchronous: poll).
	var left []string
	for deadline := time.Now().Add(60 * time.Second); ; {
		out, err := exec.Command("ip", "-n", witness, "-o", "link", "show", "type", "veth").CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show in the witness namespace: %v %s", err, out)
		}
		left = strings.FieldsFunc(strings.TrimSpace(string(out)), func(r rune) bool { return r == '\n' })
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("%d container namespaces still alive 60 s after their containers went, e.g. %s", len(left), left[0])
	}

	// Descriptors and goroutines back to the idle Collector's.
	if g := churnSettle(goruntime.NumGoroutine, gIdle); g > gIdle {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("%d goroutines with no container, %d with none before the churn:\n%s", g, gIdle, b.String())
	}
	if fd := churnSettle(churnFDs, fdIdle); fd > fdIdle {
		t.Errorf("%d descriptors with no container, %d with none before the churn:\n%s", fd, fdIdle, strings.Join(churnLinks(), "\n"))
	}
	t.Logf("after the last container: %d goroutines, %d descriptors", goruntime.NumGoroutine(), churnFDs())

	// And to the test's own once the Collector is closed.
	closed = true
	if err := col.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if g := churnSettle(goruntime.NumGoroutine, g0); g > g0 {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("%d goroutines after Close, %d before New:\n%s", g, g0, b.String())
	}
	if fd := churnSettle(churnFDs, fd0); fd > fd0 {
		t.Errorf("%d descriptors after Close, %d before New:\n%s", fd, fd0, strings.Join(churnLinks(), "\n"))
	}
	t.Logf("after Close: %d goroutines, %d descriptors", goruntime.NumGoroutine(), churnFDs())
}

// churnStart runs a container (ctr run, as rttest.CtrRun does, without
// failing the test from a goroutine), checks it has a network namespace of
// its own and puts one end of a veth pair in it (named after the
// container), the other in the witness namespace.
func churnStart(addr, ns, parent, rootfs, witness string, hostNet uint64, c *churnCtr) error {
	base := []string{"--address", addr, "-n", ns}
	if _, err := rttest.Try("ctr", append(base, "run", "-d", "--cgroup", parent+"/"+ns+"/"+c.id, "--rootfs", rootfs, c.id, "/bin/sleep", "600")...); err != nil {
		return fmt.Errorf("ctr run: %w", err)
	}
	out, err := rttest.Try("ctr", append(base, "task", "ls")...)
	if err != nil {
		return fmt.Errorf("ctr task ls: %w", err)
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == c.id {
			c.pid, _ = strconv.Atoi(f[1])
		}
	}
	if c.pid <= 0 {
		return fmt.Errorf("no PID for task %s in:\n%s", c.id, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", c.pid), &st); err != nil {
		return err
	}
	if c.ino = st.Ino; c.ino == hostNet {
		return fmt.Errorf("%s is in the host's network namespace: ctr run should give it its own", c.id)
	}
	if out, err := exec.Command("ip", "-n", witness, "link", "add", "w"+c.id, "type", "veth", "peer", "name", c.id, "netns", strconv.Itoa(c.pid)).CombinedOutput(); err != nil {
		return fmt.Errorf("witness veth: %v %s", err, out)
	}
	c.up = time.Now()
	return nil
}

// churnCleanup removes whatever the test left in its containerd namespace,
// the namespace and its (empty) cgroups.
func churnCleanup(addr, parent, ns string) {
	out, _ := rttest.Try("ctr", "--address", addr, "-n", ns, "containers", "ls", "-q")
	for _, id := range strings.Fields(out) {
		rttest.CtrRemove(addr, ns, id)
	}
	_, _ = rttest.Try("ctr", "--address", addr, "namespaces", "rm", ns)
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	hs = append(hs, "/sys/fs/cgroup")
	for _, h := range hs {
		_ = syscall.Rmdir(filepath.Join(h, parent, ns))
	}
}

func churnSleepUntil(ctx context.Context, at time.Time) bool {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// churnSettle polls f for up to 15 s until it is at most want, and returns
// its last value; with want 0 it returns f once things settled (the same
// value twice, 200 ms apart).
func churnSettle(f func() int, want int) int {
	deadline := time.Now().Add(15 * time.Second)
	prev := f()
	for {
		time.Sleep(200 * time.Millisecond)
		v := f()
		if (want > 0 && v <= want) || (want == 0 && v == prev) || time.Now().After(deadline) {
			return v
		}
		prev = v
	}
}

func churnIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// churnLinks lists where this process's descriptors point.
func churnLinks() []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, l)
		}
	}
	return out
}

func churnFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// churnHandleFDs counts the descriptors of namespace files a netns.Handle
// keeps (opened as /proc/thread-self/net/..., they read as
// /proc/<pid>/task/<tid>/net/...).
func churnHandleFDs() int {
	n := 0
	for _, l := range churnLinks() {
		if strings.HasPrefix(l, "/proc/") && strings.Contains(l, "/net/") {
			n++
		}
	}
	return n
}
