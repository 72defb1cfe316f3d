package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

const testNS = "mdtest"

func connect(t *testing.T, opts ...Option) *Discoverer {
	t.Helper()
	addr := rttest.Need(t, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := New(ctx, append([]Option{WithAddress(addr), WithBackoff(50*time.Millisecond, time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func find(cs []runtime.Container, ns, id string) (runtime.Container, bool) {
	for _, c := range cs {
		if c.Namespace == ns && c.ID == id {
			return c, true
		}
	}
	return runtime.Container{}, false
}

// TestUnavailable: no socket, and a socket nobody answers on, both fail
// within the timeout with runtime.ErrUnavailable.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("/tmp", "mdcd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// No socket there fails at once, whatever the timeout (it once took
	// the whole of it).
	// "At once" is judged against the timeout, a minute here: under half
	// of it can only mean it did not wait for it, however loaded the
	// machine.
	const timeout = time.Minute
	start := time.Now()
	_, err = New(ctx, WithAddress(filepath.Join(dir, "none.sock")), WithTimeout(timeout))
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("absent socket: %v, want ErrUnavailable with the reason", err)
	}
	if el := time.Since(start); el > timeout/2 {
		t.Errorf("absent socket: failed after %v with a %v timeout, want at once", el, timeout)
	}
	start = time.Now()
	// A listener that accepts and never speaks gRPC.
	l, err := net.Listen("unix", filepath.Join(dir, "mute.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, err = New(ctx, WithAddress(filepath.Join(dir, "mute.sock")), WithTimeout(time.Second))
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("mute socket: %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v, want about 2 s", el)
	}
}

// TestList starts containers through ctr with known IDs, labels (odd ones
// too) and a memory limit in two namespaces, plus a CRI-shaped pod (a
// sandbox and a workload joining its network namespace), and checks List
// against ctr's PIDs, /proc/<pid>/cgroup and the limit in the reported group.
func TestList(t *testing.T) {
	// The test's namespace stands in for k8s.io: its pod labels are
	// trusted by option (TestKubernetesTrust checks the default).
	d := connect(t, WithKubernetesNamespaces(testNS))
	rttest.Lock(t, false)

	id1, id2 := rttest.Name("web"), rttest.Name("db")
	labels1 := []string{"app=web", "odd key/ü..x=value with = and spaces", "empty="}
	pid1 := rttest.CtrRun(t, testNS, id1, labels1, "--memory-limit", "67108864")
	// The second from an image (imported from dockerd, when there is one),
	// as containerd users run them.
	var image string
	var pid2 int
	if os.Getenv(rttest.EnvDockerHost) != "" && os.Getenv(rttest.EnvImage) != "" {
		image = rttest.CtrImport(t, testNS+"2")
		pid2 = rttest.CtrRunImage(t, testNS+"2", id2, image, []string{"app=db"})
	} else {
		t.Log("no dockerd to take an image from: the second container runs from the rootfs too")
		pid2 = rttest.CtrRun(t, testNS+"2", id2, []string{"app=db"})
	}

	sandbox, work := rttest.Name("pause"), rttest.Name("app")
	podLabels := []string{runtime.LabelPodName + "=mypod", runtime.LabelPodNamespace + "=default", runtime.LabelPodUID + "=1111-2222"}
	spid := rttest.CtrRun(t, testNS, sandbox, append([]string{runtime.LabelCRIKind + "=sandbox"}, podLabels...))
	wpid := rttest.CtrRun(t, testNS, work, append([]string{runtime.LabelCRIKind + "=container", runtime.LabelContainerName + "=nginx"}, podLabels...),
		"--with-ns", "network:/proc/"+strconv.Itoa(spid)+"/ns/net")

	// The bound starts once the containers run: starting four took over
	// a minute in scripts/v2lane.sh's emulated guest on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		ns, id string
		pid    int
		labels []string
	}{{testNS, id1, pid1, labels1}, {testNS + "2", id2, pid2, []string{"app=db"}}} {
		c, ok := find(cs, w.ns, w.id)
		if !ok {
			t.Errorf("%s/%s not listed", w.ns, w.id)
			continue
		}
		if c.PID != w.pid || c.NetNS.PID != w.pid || c.NetNS.Host {
			t.Errorf("%s: PID %d netns %+v, ctr says %d", w.id, c.PID, c.NetNS, w.pid)
		}
		if direct := rttest.HostCgroupPath(t, w.pid); c.CgroupPath != direct || c.CgroupPath != rttest.CtrCgroup(t, w.ns, w.id) {
			t.Errorf("%s: CgroupPath %q, /proc/%d/cgroup says %q", w.id, c.CgroupPath, w.pid, direct)
		}
		// Labels as containerd keeps them (ctr container info), odd ones as
		// they are.
		var info struct {
			Labels map[string]string
			Image  string
		}
		if err := json.Unmarshal([]byte(rttest.Ctr(t, w.ns, "container", "info", w.id)), &info); err != nil {
			t.Fatal(err)
		}
		if c.Image != info.Image || (w.id == id2 && c.Image != image) {
			t.Errorf("%s: image %q, ctr says %q", w.id, c.Image, info.Image)
		}
		if !maps.Equal(info.Labels, c.Labels) {
			t.Errorf("%s: labels %q, ctr says %q", w.id, c.Labels, info.Labels)
		}
		for k, v := range rttest.Labels(w.labels...) {
			if got, ok := c.Labels[k]; v != "" && (!ok || got != v) {
				t.Errorf("%s: label %q = %q (present %v), want %q", w.id, k, got, ok, v)
			}
		}
		ps := rttest.PsStart(t, w.pid)
		if c.Name != w.id || c.Runtime != Name || c.State != runtime.StateRunning || c.Started.Sub(ps).Abs() > 1500*time.Millisecond || c.Pod != nil {
			t.Errorf("%s: name %q runtime %q state %q started %v (ps says %v) pod %+v", w.id, c.Name, c.Runtime, c.State, c.Started, ps, c.Pod)
		}
	}
	// The limit ctr set is in the group the adapter names.
	if c, ok := find(cs, testNS, id1); ok {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", c.CgroupPath, "memory.limit_in_bytes"))
		if err == nil && strings.TrimSpace(string(b)) != "67108864" {
			t.Errorf("memory.limit_in_bytes of %s = %s, want 67108864", c.CgroupPath, b)
		}
	}
	if _, ok := find(cs, testNS, sandbox); ok {
		t.Errorf("sandbox %s listed as a workload", sandbox)
	}
	if c, ok := find(cs, testNS, work); !ok {
		t.Errorf("pod workload %s not listed", work)
	} else {
		if c.Pod == nil || c.Pod.Name != "mypod" || c.Pod.Namespace != "default" || c.Pod.UID != "1111-2222" || c.Pod.Container != "nginx" || c.Pod.Sandbox {
			t.Errorf("workload pod %+v", c.Pod)
		}
		if c.Name != "nginx" || c.PID != wpid || c.NetNS.PID != spid || c.NetNS.Path != "/proc/"+strconv.Itoa(spid)+"/ns/net" {
			t.Errorf("workload name %q PID %d (ctr %d) netns %+v, want the sandbox's %d", c.Name, c.PID, wpid, c.NetNS, spid)
		}
		// The kernel agrees: both are in one network namespace.
		a, _ := os.Readlink("/proc/" + strconv.Itoa(wpid) + "/ns/net")
		b, _ := os.Readlink("/proc/" + strconv.Itoa(spid) + "/ns/net")
		if a == "" || a != b {
			t.Errorf("netns of workload %q, sandbox %q", a, b)
		}
	}

	// Sandboxes on request; namespaces on request.
	ds := connect(t, WithSandboxes(true), WithNamespaces(testNS), WithKubernetesNamespaces(testNS))
	cs, err = ds.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := find(cs, testNS, sandbox); !ok || c.Pod == nil || !c.Pod.Sandbox || c.PID != spid {
		t.Errorf("WithSandboxes: sandbox %+v found %v", c, ok)
	}
	if _, ok := find(cs, testNS+"2", id2); ok {
		t.Errorf("WithNamespaces(%s) listed %s/%s", testNS, testNS+"2", id2)
	}
}

// TestListExitedPID: a task whose process was killed behind containerd's
// back and not yet reaped is still in the task list; List must not fail.
func TestListStoppedTask(t *testing.T) {
	d := connect(t)
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := rttest.Name("exit")
	pid := rttest.CtrRun(t, testNS, id, nil)
	other := rttest.Name("stay")
	opid := rttest.CtrRun(t, testNS, other, nil)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Whether List still sees the task (stopped) or not at all, the rest
	// of the list is there.
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := find(cs, testNS, other); !ok || c.PID != opid {
		t.Errorf("%s missing or wrong after another task's process died: %+v", other, c)
	}
	// Until the shim has reaped the process and containerd has the exit,
	// the task may still be listed running with its PID (a zombie until
	// then, or just reaped: whether /proc/<pid> is there after List says
	// nothing of when List looked). Once the process is gone, the listing
	// must stop saying so.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, ok := find(cs, testNS, id)
		if !ok || c.State != runtime.StateRunning || c.PID != pid {
			break
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Logf("process %d not yet reaped", pid)
		} else if time.Now().After(deadline) {
			t.Errorf("%s still listed running with PID %d, 30 s after that process was reaped", id, pid)
			break
		}
		if cs, err = d.List(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWatchEvents: start, stop and remove through ctr; each event arrives,
// once and in order. How long each took is logged, not asserted: wall time
// under -race on two busy cores says nothing about the adapter.
func TestWatchEvents(t *testing.T) {
	d := connect(t)
	addr := rttest.Need(t, rttest.EnvContainerd)[0]
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	id := rttest.Name("ev")
	pid := rttest.CtrRun(t, testNS, id, []string{"a=b"})
	done := time.Now()
	ev := rec.Wait(t, runtime.EventStarted, id, 10*time.Second)
	if ev.Container.PID != pid || ev.Container.Namespace != testNS || ev.Container.Labels["a"] != "b" || ev.Container.CgroupPath != rttest.HostCgroupPath(t, pid) {
		t.Errorf("started: %+v, want PID %d", ev.Container, pid)
	}
	t.Logf("started after %v", ev.At.Sub(done))
	rttest.Ctr(t, testNS, "task", "kill", "-s", "KILL", id)
	done = time.Now()
	ev = rec.Wait(t, runtime.EventStopped, id, 10*time.Second)
	t.Logf("stopped after %v", ev.At.Sub(done))
	rttest.Eventually(t, 10*time.Second, func() error {
		_, err := rttest.Try("ctr", "--address", addr, "-n", testNS, "task", "delete", id)
		return err
	})
	done = time.Now()
	ev = rec.Wait(t, runtime.EventRemoved, id, 10*time.Second)
	t.Logf("removed after %v", ev.At.Sub(done))
	time.Sleep(1500 * time.Millisecond) // past the post-connect resync
	if err := rec.CheckSequence(); err != nil {
		t.Errorf("%v\n%s", err, rec)
	}
	if n := rec.Count(runtime.EventStarted, id); n != 1 {
		t.Errorf("%d started events for %s\n%s", n, id, rec)
	}
	cancel()
	<-rec.Done()
}

func isUnavailable(err error) bool { return errors.Is(err, runtime.ErrUnavailable) }

// TestWithoutNamespaces: a namespace left out is neither listed nor
// watched (containerd filters its events out: the filter must be one
// containerd 1.6 accepts, or no event would come at all), while another
// namespace is.
func TestWithoutNamespaces(t *testing.T) {
	skipped := testNS + "-skip"
	d := connect(t, WithoutNamespaces(skipped))
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	out, in := rttest.Name("out"), rttest.Name("in")
	rttest.CtrRun(t, skipped, out, nil)
	pid := rttest.CtrRun(t, testNS, in, nil)
	if ev := rec.Wait(t, runtime.EventStarted, in, 10*time.Second); ev.Container.PID != pid {
		t.Errorf("started: %+v, want PID %d", ev.Container, pid)
	}
	time.Sleep(1500 * time.Millisecond) // past the post-connect resync
	if n := rec.Count(runtime.EventStarted, out); n != 0 {
		t.Errorf("%d started events for %s in the namespace left out\n%s", n, out, rec)
	}
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, testNS, in); !ok {
		t.Errorf("%s/%s not listed", testNS, in)
	}
	for _, c := range cs {
		if c.Namespace == skipped {
			t.Errorf("listed %s/%s, in the namespace left out", c.Namespace, c.ID)
		}
	}
	cancel()
	<-rec.Done()
}
