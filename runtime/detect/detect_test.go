package detect_test

import (
	"context"
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

func env(m map[string]string) detect.Option {
	return detect.WithGetenv(func(k string) string { return m[k] })
}

func all(opts ...cgroupfs.Option) []detect.Option {
	return []detect.Option{
		detect.WithDocker(docker.Opener(docker.WithTimeout(2 * time.Second))),
		detect.WithContainerd(containerd.Opener(containerd.WithTimeout(2 * time.Second))),
		detect.WithCgroupFS(cgroupfs.Opener(opts...)),
	}
}

// TestDetectFallback: with no daemon listening (nothing at the default
// sockets, and the environment naming sockets nobody listens on), New
// falls back to cgroupfs, within the adapters' timeouts.
func TestDetectFallback(t *testing.T) {
	for _, p := range []string{detect.DefaultDockerSocket, detect.DefaultContainerdSocket} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists on this host: the fallback can not be shown", p)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "mddt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	for name, e := range map[string]map[string]string{
		"no environment": nil,
		"dead sockets":   {"DOCKER_HOST": "unix://" + dir + "/docker.sock", "CONTAINERD_ADDRESS": dir + "/containerd.sock"},
	} {
		start := time.Now()
		d, err := detect.New(ctx, append(all(), env(e))...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.Name() != "cgroupfs" {
			t.Errorf("%s: detected %s, want cgroupfs", name, d.Name())
		}
		d.Close()
		// Bounded by the adapters' 2 s timeouts, with a wide margin
		// for a loaded machine.
		if el := time.Since(start); el > 30*time.Second {
			t.Errorf("%s: took %v, as if the adapters' timeouts did not bound it", name, el)
		}
	}
	// Without a cgroupfs fallback: ErrNoRuntime, which is ErrUnavailable.
	_, err = detect.New(ctx, env(nil), detect.WithCgroupFS(nil))
	if err == nil || err != detect.ErrNoRuntime {
		t.Errorf("no runtime: %v", err)
	}
}

// TestDetectDaemons: with the real daemons named in the environment, and
// again found at the default paths beneath a host root prefix, New runs
// both; a Docker container (which containerd also knows, in namespace
// "moby") is listed and watched once, by Docker; a ctr container by
// containerd. With no daemon, the cgroupfs fallback finds the same
// containers by their cgroups.
func TestDetectDaemons(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvContainerd, rttest.EnvImage, rttest.EnvRootfs, rttest.EnvCgroupParent)
	host, addr, parent := v[0], v[1], v[4]
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	did := rttest.DockerRun(t, rttest.Name("det"), nil)
	dpid := rttest.DockerPID(t, did)
	cid := rttest.Name("det")
	cpid := rttest.CtrRun(t, "mdtest", cid, nil)

	// A host root prefix: <root>/var/run/docker.sock and
	// <root>/run/containerd/containerd.sock lead to the test daemons, and
	// <root>/proc, <root>/sys are the host's.
	root := t.TempDir()
	for link, target := range map[string]string{
		"var/run/docker.sock":            strings.TrimPrefix(host, "unix://"),
		"run/containerd/containerd.sock": addr,
		"proc":                           "/proc",
		"sys":                            "/sys",
	} {
		p := filepath.Join(root, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	for name, opts := range map[string][]detect.Option{
		"environment": {env(map[string]string{"DOCKER_HOST": host, "CONTAINERD_ADDRESS": addr})},
		"host root":   {env(nil), detect.WithHostRoot(root)},
	} {
		d, err := detect.New(ctx, append(all(), opts...)...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.Name() != "docker+containerd" {
			t.Errorf("%s: detected %q", name, d.Name())
		}
		cs, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range cs {
			if c.ID == did {
				n++
				if c.Runtime != "docker" || c.PID != dpid {
					t.Errorf("%s: docker container as %s PID %d, want docker %d", name, c.Runtime, c.PID, dpid)
				}
			}
			if c.Runtime == "containerd" && c.Namespace == "moby" {
				t.Errorf("%s: containerd's copy of a Docker container listed: %s", name, c.ID)
			}
			if c.ID == cid && (c.Runtime != "containerd" || c.PID != cpid) {
				t.Errorf("%s: ctr container as %s PID %d, want containerd %d", name, c.Runtime, c.PID, cpid)
			}
		}
		if n != 1 {
			t.Errorf("%s: docker container listed %d times", name, n)
		}
		// containerd does not list Docker's containers at all (it would
		// fetch each one's OCI spec once a minute for Multi to drop).
		for _, sub := range d.(*runtime.Multi).Discoverers() {
			if sub.Name() != "containerd" {
				continue
			}
			cs, err := sub.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.Namespace == "moby" {
					t.Errorf("%s: the containerd adapter lists Docker's container %s in moby", name, c.ID)
				}
			}
		}
		d.Close()
	}

	// Watch through both: a new Docker container is reported once.
	d, err := detect.New(ctx, append(all(), env(map[string]string{"DOCKER_HOST": host, "CONTAINERD_ADDRESS": addr}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := d.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	nid := rttest.DockerRun(t, rttest.Name("det2"), nil)
	ev := rec.Wait(t, runtime.EventStarted, nid, 10*time.Second)
	if ev.Container.Runtime != "docker" {
		t.Errorf("started reported by %s", ev.Container.Runtime)
	}
	time.Sleep(1500 * time.Millisecond) // both adapters' post-connect resyncs
	if n := rec.Count(runtime.EventStarted, nid); n != 1 {
		t.Errorf("%d started events for a Docker container\n%s", n, rec)
	}
	wcancel()
	<-rec.Done()

	// No daemon: cgroupfs finds the same containers by their cgroups (the
	// test daemons keep them beneath their own parent group).
	dir := t.TempDir()
	fb, err := detect.New(ctx, append(all(cgroupfs.WithSubtree(parent)),
		env(map[string]string{"DOCKER_HOST": "unix://" + dir + "/none", "CONTAINERD_ADDRESS": dir + "/none"}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if fb.Name() != "cgroupfs" {
		t.Fatalf("fallback is %s", fb.Name())
	}
	cs, err := fb.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, c := range cs {
		found[c.ID] = c.PID
	}
	if found[did] != dpid || found[cid] != cpid {
		t.Errorf("cgroupfs found docker %s PID %d (want %d), ctr %s PID %d (want %d)", did[:12], found[did], dpid, cid, found[cid], cpid)
	}
}
