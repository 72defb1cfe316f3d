package detect_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/detect"
	"github.com/metricsd/metricsd/runtime/docker"
)

// deadSockets makes, in a temp dir, a path with no socket ("none.sock"), a
// socket nobody listens on any more ("stale.sock"), and one that accepts
// connections but never answers ("mute.sock").
func deadSockets(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "mddx") // short: unix socket paths are bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	stale, err := net.Listen("unix", filepath.Join(dir, "stale.sock"))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	mute, err := net.Listen("unix", filepath.Join(dir, "mute.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	return dir
}

// TestExplicitEndpointDead: a Docker host or containerd socket given
// explicitly is required: when nothing is there, or nobody listens, New
// fails at once with the reason (it once fell back to the cgroup tree
// without a word, after a 10 s wait for containerd). One that accepts but
// never answers fails when the adapter's timeout ends, and a context
// cancelled during that wait ends it with an error matching
// context.Canceled, not a runtime failure. "At once" is judged against the
// adapters' timeout, a minute here: failing in under half of it can only
// mean it did not wait for it, however loaded the machine.
func TestExplicitEndpointDead(t *testing.T) {
	dir := deadSockets(t)
	ctx := context.Background()
	const timeout = time.Minute
	adapters := []detect.Option{
		detect.WithDocker(docker.Opener(docker.WithTimeout(timeout))),
		detect.WithContainerd(containerd.Opener(containerd.WithTimeout(timeout))),
		detect.WithCgroupFS(cgroupfs.Opener()),
	}
	for _, sock := range []string{"none.sock", "stale.sock"} {
		p := filepath.Join(dir, sock)
		for name, opt := range map[string]detect.Option{
			"docker":     detect.WithDockerHost("unix://" + p),
			"containerd": detect.WithContainerdAddress(p),
		} {
			start := time.Now()
			d, err := detect.New(ctx, append(adapters, env(nil), opt)...)
			el := time.Since(start)
			if err == nil {
				t.Errorf("%s at %s: detected %s, want an error", name, sock, d.Name())
				d.Close()
				continue
			}
			if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s at %s: %v; want ErrUnavailable naming the runtime and the endpoint", name, sock, err)
			}
			if el > timeout/2 {
				t.Errorf("%s at %s: failed after %v with a %v timeout, want at once", name, sock, el, timeout)
			}
		}
	}
	mute := filepath.Join(dir, "mute.sock")
	for name, opt := range map[string]detect.Option{
		"docker":     detect.WithDockerHost("unix://" + mute),
		"containerd": detect.WithContainerdAddress(mute),
	} {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := detect.New(cctx, append(adapters, env(nil), opt)...)
		el := time.Since(start)
		if !errors.Is(err, context.Canceled) || errors.Is(err, runtime.ErrUnavailable) {
			t.Errorf("%s, cancelled while waiting: %v; want context.Canceled alone", name, err)
		}
		if el > timeout/2 {
			t.Errorf("%s, cancelled after 300 ms: returned after %v, as if it waited for the %v timeout", name, el, timeout)
		}
	}
}

// TestRedetect: New finds no daemon (the environment names a Docker socket
// that is not there yet) and falls back to the cgroup tree, which finds the
// test dockerd's container by its cgroup. Then the socket appears (a link
// to the real dockerd's: the daemon "starts" after the agent): Watch switches
// to Docker by itself, reporting the cgroupfs container removed and the
// Docker one started, and List lists through Docker. It once kept the
// fallback for good.
func TestRedetect(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvCgroupParent)
	host, parent := v[0], v[2]
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := rttest.DockerRun(t, rttest.Name("redet"), nil)
	pid := rttest.DockerPID(t, id)
	dir, err := os.MkdirTemp("/tmp", "mddr")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "docker.sock")
	d, err := detect.New(ctx, append(all(cgroupfs.WithSubtree(parent)), env(map[string]string{"DOCKER_HOST": "unix://" + sock}),
		detect.WithContainerd(nil), detect.WithRedetect(100*time.Millisecond, 400*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name() != cgroupfs.Name {
		t.Fatalf("detected %s with no daemon, want the cgroupfs fallback", d.Name())
	}
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := d.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	defer func() { wcancel(); <-rec.Done() }()
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var fallback runtime.Container
	for _, c := range cs {
		if c.ID == id {
			fallback = c
		}
	}
	if fallback.Runtime != cgroupfs.Name || fallback.PID != pid {
		t.Fatalf("the fallback lists %+v for the Docker container, want it by its cgroup", fallback)
	}

	if err := os.Symlink(strings.TrimPrefix(host, "unix://"), sock); err != nil {
		t.Fatal(err)
	}
	started := rec.Wait(t, runtime.EventStarted, id, 30*time.Second)
	if started.Container.Runtime != "docker" || started.Container.PID != pid {
		t.Errorf("after the daemon appeared: started %+v, want the Docker container", started.Container)
	}
	var removed bool
	for _, e := range rec.Events() {
		if e.Type == runtime.EventRemoved && e.Container.ID == id && e.Container.Runtime == cgroupfs.Name {
			removed = true
		}
	}
	if !removed {
		t.Errorf("the cgroupfs container was not reported removed:\n%s", rec)
	}
	if d.Name() != "docker" {
		t.Errorf("now using %s, want docker", d.Name())
	}
	cs, err = d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.ID == id {
			n++
			if c.Runtime != "docker" {
				t.Errorf("listed by %s", c.Runtime)
			}
		}
	}
	if n != 1 {
		t.Errorf("the container listed %d times", n)
	}
	// Events flow from Docker now.
	id2 := rttest.DockerRun(t, rttest.Name("redet2"), nil)
	if ev := rec.Wait(t, runtime.EventStarted, id2, 30*time.Second); ev.Container.Runtime != "docker" {
		t.Errorf("a new container reported by %s", ev.Container.Runtime)
	}
}
