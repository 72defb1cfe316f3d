package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

func connect(t *testing.T, opts ...Option) *Discoverer {
	t.Helper()
	host := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvCgroupParent)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := New(ctx, append([]Option{WithHost(host), WithBackoff(50*time.Millisecond, time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func find(cs []runtime.Container, id string) (runtime.Container, bool) {
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return runtime.Container{}, false
}

// TestUnavailable: no socket, and a socket that accepts but never answers,
// both fail within the timeout with runtime.ErrUnavailable.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("/tmp", "mddk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	_, err = New(ctx, WithHost("unix://"+filepath.Join(dir, "none.sock")), WithTimeout(time.Second))
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("absent socket: %v, want ErrUnavailable", err)
	}
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
	_, err = New(ctx, WithHost("unix://"+filepath.Join(dir, "mute.sock")), WithTimeout(time.Second))
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("mute socket: %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v, want about 1 s", el)
	}
}

// TestOldAPI: a daemon whose API is older than 1.40 fails clearly at New.
// No such daemon can run here, so a minimal HTTP server answers the ping
// with API 1.24 (the one fake in this package, for a fault we cannot cause
// for real).
func TestOldAPI(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "mddk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "old.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.24")
		w.Header().Set("Ostype", "linux")
		fmt.Fprint(w, "OK")
	})}
	go srv.Serve(l)
	defer srv.Close()
	_, err = New(context.Background(), WithHost("unix://"+filepath.Join(dir, "old.sock")), WithTimeout(2*time.Second))
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "1.24") {
		t.Errorf("old API: %v, want ErrUnavailable naming 1.24", err)
	}
}

type inspect struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Pid       int
		StartedAt string
	}
	Config struct {
		Image  string
		Labels map[string]string
	}
	NetworkSettings struct{ SandboxKey string }
}

func dockerInspect(t *testing.T, id string) inspect {
	t.Helper()
	var v []inspect
	if err := json.Unmarshal([]byte(rttest.Docker(t, "inspect", id)), &v); err != nil || len(v) != 1 {
		t.Fatalf("docker inspect %s: %v", id, err)
	}
	return v[0]
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return st.Ino
}

// TestList starts containers with known names, labels (odd ones too) and a
// memory limit through the docker CLI and checks List against docker
// inspect, /proc/<pid>/cgroup, the limit in the reported group and the
// network namespace's inode.
func TestList(t *testing.T) {
	d := connect(t)
	rttest.Lock(t, false)
	parent := rttest.Need(t, rttest.EnvCgroupParent)[0]
	image := rttest.Need(t, rttest.EnvImage)[0]
	if v := d.APIVersion(); v != "1.41" {
		t.Logf("negotiated API %s (Docker 20.10 is 1.41)", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n1, n2 := rttest.Name("web"), rttest.Name("hostnet")
	id1 := rttest.DockerRun(t, n1, []string{"app=web", "odd_key/ü..=va=lue with spaces", "empty=",
		runtime.LabelPodName + "=p", runtime.LabelPodNamespace + "=ns", runtime.LabelPodUID + "=u-1", runtime.LabelContainerName + "=nginx"},
		"--memory", "64m")
	id2 := rttest.DockerRun(t, n2, nil, "--network", "host")
	created := rttest.Docker(t, "create", "--name", rttest.Name("created"), image, "/bin/sleep", "1")
	t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", os.Getenv(rttest.EnvDockerHost), "rm", "-f", created) })

	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, created); ok {
		t.Errorf("created (never started) container listed")
	}
	c, ok := find(cs, id1)
	if !ok {
		t.Fatalf("%s not listed", n1)
	}
	in := dockerInspect(t, id1)
	if c.PID != in.State.Pid || c.PID == 0 {
		t.Errorf("PID %d, docker inspect says %d", c.PID, in.State.Pid)
	}
	if direct := rttest.HostCgroupPath(t, c.PID); c.CgroupPath != direct || c.CgroupPath != parent+"/docker/"+id1 {
		t.Errorf("CgroupPath %q, /proc says %q", c.CgroupPath, direct)
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", c.CgroupPath, "memory.limit_in_bytes"))
	if err == nil && strings.TrimSpace(string(b)) != "67108864" {
		t.Errorf("memory.limit_in_bytes %s, want 67108864", b)
	}
	if !maps.Equal(c.Labels, in.Config.Labels) || c.Labels["odd_key/ü.."] != "va=lue with spaces" {
		t.Errorf("labels %q, docker says %q", c.Labels, in.Config.Labels)
	}
	// Kubernetes labels on a Docker no kubelet drives (the default) are
	// labels, not identity (TestKubernetesTrust).
	if c.Name != n1 || c.Pod != nil {
		t.Errorf("name %q pod %+v: want its Docker name and no pod", c.Name, c.Pod)
	}
	if c.Image != image || c.Runtime != Name || c.Namespace != Namespace || c.State != runtime.StateRunning {
		t.Errorf("image %q runtime %q ns %q state %q", c.Image, c.Runtime, c.Namespace, c.State)
	}
	if st, err := time.Parse(time.RFC3339Nano, in.State.StartedAt); err != nil || !st.Equal(c.Started) {
		t.Errorf("Started %v, docker says %s", c.Started, in.State.StartedAt)
	}
	// With --bridge=none the container's namespace is runc's, and the
	// sandbox key names no file: the PID locates it. Where there is a
	// file, it must be the same namespace.
	if c.NetNS.PID != c.PID || c.NetNS.Host {
		t.Errorf("netns %+v, want PID %d", c.NetNS, c.PID)
	}
	if _, err := os.Stat(in.NetworkSettings.SandboxKey); err == nil {
		if c.NetNS.Path != in.NetworkSettings.SandboxKey || inode(t, c.NetNS.Path) != inode(t, "/proc/"+strconv.Itoa(c.PID)+"/ns/net") {
			t.Errorf("netns %+v, sandbox key %q", c.NetNS, in.NetworkSettings.SandboxKey)
		}
	} else if c.NetNS.Path != "" {
		t.Errorf("netns path %q names no file", c.NetNS.Path)
	}
	if inode(t, "/proc/"+strconv.Itoa(c.PID)+"/ns/net") == inode(t, "/proc/self/ns/net") {
		t.Errorf("container PID %d shares the host's network namespace", c.PID)
	}
	h, ok := find(cs, id2)
	if !ok {
		t.Fatalf("%s not listed", n2)
	}
	if h.Name != n2 || !h.NetNS.Host || h.Pod != nil {
		t.Errorf("host-network container: name %q netns %+v pod %+v", h.Name, h.NetNS, h.Pod)
	}
}

// TestListKnown: a listing inspects only the containers it has not seen,
// or whose process changed. Listed again, a running container is not
// inspected again and is reported identically; renamed, it keeps its PID
// and takes the new name from the listing; restarted (a new process), it is
// inspected again and reported with the PID docker inspect gives; stopped,
// it is no longer listed.
func TestListKnown(t *testing.T) {
	d := connect(t)
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := rttest.DockerRun(t, rttest.Name("known"), nil)
	list := func() runtime.Container {
		t.Helper()
		cs, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := find(cs, id)
		if !ok {
			t.Fatalf("%s not listed", id)
		}
		return c
	}
	first := list()
	n := d.inspects.Load()
	again := list()
	if got := d.inspects.Load(); got != n {
		t.Errorf("listing again made %d inspect calls, want none (all known)", got-n)
	}
	if !reflect.DeepEqual(again, first) {
		t.Errorf("listed again:\n%+v\nfirst:\n%+v", again, first)
	}

	renamed := rttest.Name("renamed")
	rttest.Docker(t, "rename", id, renamed)
	c := list()
	if c.Name != renamed || c.PID != first.PID || d.inspects.Load() != n {
		t.Errorf("after rename: name %q, PID %d (was %d), %d inspects; want %q, same PID, none", c.Name, c.PID, first.PID, d.inspects.Load()-n, renamed)
	}

	rttest.Docker(t, "restart", "-t", "0", id)
	c = list()
	if pid := rttest.DockerPID(t, id); c.PID != pid || c.PID == first.PID {
		t.Errorf("after restart: PID %d, docker inspect says %d (was %d)", c.PID, pid, first.PID)
	}
	if d.inspects.Load() == n {
		t.Error("after restart: the container was not inspected again")
	}
	if direct := rttest.HostCgroupPath(t, c.PID); c.CgroupPath != direct {
		t.Errorf("after restart: CgroupPath %q, /proc says %q", c.CgroupPath, direct)
	}

	rttest.Docker(t, "stop", "-t", "0", id)
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, id); ok {
		t.Error("stopped container still listed")
	}
	d.knownMu.Lock()
	_, kept := d.known[id]
	d.knownMu.Unlock()
	if kept {
		t.Error("a stopped container is still remembered")
	}
}

// TestWatchEvents: run, kill and remove through the docker CLI; each event
// arrives, once and in order. How long each took is logged, not asserted:
// wall time under -race on two busy cores says nothing about the adapter.
func TestWatchEvents(t *testing.T) {
	d := connect(t)
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	name := rttest.Name("ev")
	id := rttest.DockerRun(t, name, []string{"a=b"})
	done := time.Now()
	ev := rec.Wait(t, runtime.EventStarted, id, 10*time.Second)
	t.Logf("started event %v after docker run returned", ev.At.Sub(done))
	pid := rttest.DockerPID(t, id)
	if ev.Container.PID != pid || ev.Container.Name != name || ev.Container.Labels["a"] != "b" || ev.Container.CgroupPath != rttest.HostCgroupPath(t, pid) {
		t.Errorf("started: %+v, want PID %d", ev.Container, pid)
	}
	rttest.Docker(t, "kill", id)
	done = time.Now()
	ev = rec.Wait(t, runtime.EventStopped, id, 10*time.Second)
	t.Logf("stopped event %v after docker kill returned", ev.At.Sub(done))
	rttest.Docker(t, "rm", id)
	done = time.Now()
	ev = rec.Wait(t, runtime.EventRemoved, id, 10*time.Second)
	t.Logf("removed event %v after docker rm returned", ev.At.Sub(done))
	if ev.Container.Name != name {
		t.Errorf("removed event names %q, want %q", ev.Container.Name, name)
	}
	time.Sleep(1500 * time.Millisecond) // past the post-connect resync
	if err := rec.CheckSequence(); err != nil {
		t.Errorf("%v\n%s", err, rec)
	}
	if n := rec.Count(runtime.EventStarted, id); n != 1 {
		t.Errorf("%d started events\n%s", n, rec)
	}
	cancel()
	<-rec.Done()
}
