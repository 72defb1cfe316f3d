package metricsd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/docker"
)

// The live OOM tests' containers: 32 MiB of memory and no swap, and two
// ways to be killed. "child" runs sleep as its init, and the test then runs
// dd in it (docker exec, ctr task exec), which the OOM killer kills: the
// container lives on. "init" runs a shell that becomes dd when the test
// sends it SIGUSR1: the OOM killer kills the container's init, the runtime
// removes its group right after.
const (
	liveOOMHog    = "dd if=/dev/zero of=/dev/null bs=64M count=1"
	liveOOMInit   = "trap 'exec " + liveOOMHog + "' USR1; while :; do sleep 0.1; done"
	liveOOMLimit  = "33554432"
	liveOOMPeriod = 200 * time.Millisecond
)

// liveOOM runs the Collector (Run, every sink) on disc and has the runtime
// make the two containers, through start (which returns the container's
// name as the runtime reports it), execHog (the hog in the child) and
// killInit (SIGUSR1 to the init, then whatever the runtime needs to let the
// group go). Each kill must be counted exactly once, with the container's
// name, in every sink.
func liveOOM(t *testing.T, disc runtime.Discoverer, start func(name string, init string) string, execHog func(name string), killInit func(name string)) {
	sinks := newOOMSinks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(disc), metricsd.WithInterval(liveOOMPeriod),
		metricsd.WithSinks(sinks.sinks...), metricsd.WithNetParts(0))
	if err != nil {
		disc.Close()
		t.Fatal(err)
	}
	defer col.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- col.Run(runCtx) }()

	child := start(rttest.Name("oomchild"), "sleep 600")
	victim := start(rttest.Name("oominit"), liveOOMInit)
	until(t, "both containers in a snapshot", func() bool { return sinks.rec.hasSeen(child) && sinks.rec.hasSeen(victim) })
	// The daemon's other containers (other tests' running meanwhile) come
	// and go: the watches' release is checked where the test owns every
	// container (TestOOMWatchReleased, TestRunOOMKills).

	execHog(child)
	killInit(victim)
	until(t, "the init's departure in a snapshot", func() bool { _, n := sinks.rec.departedCount(victim); return n > 0 })
	until(t, "the child's kill in a snapshot", func() bool {
		sinks.rec.mu.Lock()
		defer sinks.rec.mu.Unlock()
		return sinks.rec.live[child] == 1
	})
	time.Sleep(3 * liveOOMPeriod) // a few snapshots more: none may count again
	sinks.scrape(t)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, n := sinks.rec.departedCount(victim); n != 1 {
		t.Errorf("the init's container was in %d snapshots' Departed, want 1", n)
	}
	for _, name := range []string{child, victim} {
		for _, c := range sinks.check(t, name, 1) {
			t.Logf("%s: %v", name, c)
		}
	}
	for _, s := range []metricsd.Stage{metricsd.StageCgroup, metricsd.StageSink} {
		if n := col.Errors(s); n != 0 {
			t.Errorf("%d %v errors", n, s)
		}
	}
}

// TestLiveOOMDocker: real OOM kills in Docker containers (scripts/daemons.sh's
// dockerd), of a process exec'd in a container and of a container's init,
// each counted exactly once, with the container's name, in every sink.
func TestLiveOOMDocker(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage)
	host, image := v[0], v[1]
	rttest.Lock(t, false)
	ctx := context.Background()
	disc, err := docker.New(ctx, docker.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	start := func(name, init string) string {
		id := rttest.Run(t, "docker", "-H", host, "run", "-d", "--name", name, "--memory", liveOOMLimit, "--memory-swap", liveOOMLimit,
			"--network", "none", image, "/bin/sh", "-c", init)
		t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", host, "rm", "-f", id) })
		return name
	}
	execHog := func(name string) {
		out, err := rttest.Try("docker", "-H", host, "exec", name, "/bin/sh", "-c", liveOOMHog)
		t.Logf("docker exec %s: %v %s", liveOOMHog, err, out)
		if err == nil || !strings.Contains(err.Error(), "137") {
			t.Fatalf("the hog was not killed: %v", err)
		}
	}
	killInit := func(name string) {
		rttest.Run(t, "docker", "-H", host, "kill", "-s", "USR1", name)
		until(t, name+" exited", func() bool {
			out, _ := rttest.Try("docker", "-H", host, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
			return strings.HasPrefix(out, "exited")
		})
		t.Logf("%s: %s", name, rttest.Run(t, "docker", "-H", host, "inspect", "-f", "{{.State.Status}} exit {{.State.ExitCode}} OOMKilled={{.State.OOMKilled}}", name))
	}
	liveOOM(t, disc, start, execHog, killInit)
}

// TestLiveOOMContainerd: the same in containerd containers (ctr run in a
// namespace of the test's own); the init's task is deleted as soon as it
// has stopped, which removes its group.
func TestLiveOOMContainerd(t *testing.T) {
	v := rttest.Need(t, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)
	addr, rootfs := v[0], v[1]
	rttest.Lock(t, false)
	ns := rttest.Name("oom")
	ctx := context.Background()
	disc, err := containerd.New(ctx, containerd.WithAddress(addr), containerd.WithNamespaces(ns))
	if err != nil {
		t.Fatal(err)
	}
	ctr := func(args ...string) []string { return append([]string{"--address", addr, "-n", ns}, args...) }
	start := func(id, init string) string {
		rttest.Run(t, "ctr", ctr("run", "-d", "--memory-limit", liveOOMLimit, "--cgroup", rttest.CtrCgroup(t, ns, id),
			"--rootfs", rootfs, id, "/bin/sh", "-c", init)...)
		t.Cleanup(func() { rttest.CtrRemove(addr, ns, id) })
		return id // a plain containerd container is named by its ID
	}
	execHog := func(id string) {
		out, err := rttest.Try("ctr", ctr("task", "exec", "--exec-id", "hog", id, "/bin/sh", "-c", liveOOMHog)...)
		t.Logf("ctr task exec %s: %v %s", liveOOMHog, err, out)
		if err == nil || !strings.Contains(err.Error(), "137") {
			t.Fatalf("the hog was not killed: %v", err)
		}
	}
	killInit := func(id string) {
		rttest.Run(t, "ctr", ctr("task", "kill", "-s", "USR1", id)...)
		var status string
		until(t, id+" stopped", func() bool {
			out, _ := rttest.Try("ctr", ctr("task", "ls")...)
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) == 3 && f[0] == id {
					status = f[2]
				}
			}
			return status == "STOPPED"
		})
		// ctr deletes the task (and runc the group) right away; the exit
		// status is the kill's.
		out := rttest.Run(t, "ctr", ctr("task", "delete", id)...)
		t.Logf("ctr task delete %s: %s", id, out)
		if !strings.Contains(out, "137") && out != "" {
			t.Logf("exit status %q", out)
		}
	}
	liveOOM(t, disc, start, execHog, killInit)
}
