// Package rttest holds test helpers for the runtime adapters: it reads the
// environment scripts/daemons.sh exports (the private containerd and
// dockerd), serialises the tests of several packages that share those
// daemons with a file lock, runs the docker and ctr CLIs as the independent
// source of truth, and waits by polling.
package rttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Environment variables set by scripts/daemons.sh.
const (
	EnvContainerd = "METRICSD_TEST_CONTAINERD"
	EnvDockerHost = "METRICSD_TEST_DOCKER_HOST"
	EnvImage      = "METRICSD_TEST_IMAGE"
	EnvRootfs     = "METRICSD_TEST_ROOTFS"
	EnvDaemonCtl  = "METRICSD_TEST_DAEMONCTL"
	EnvDaemonDir  = "METRICSD_TEST_DAEMON_DIR"
	// EnvCgroupParent is the cgroup path beneath which the test daemons'
	// containers get their groups (dockerd's --cgroup-parent is
	// <parent>/docker; CtrRun uses <parent>/<ns>/<id>).
	EnvCgroupParent = "METRICSD_TEST_CGROUP_PARENT"
	// EnvPodmanHost is podman system service's Docker-compatible socket
	// (unix://...), EnvPodman a podman CLI wrapper with the service's
	// storage flags, EnvPodmanImage a busybox image in that storage.
	EnvPodmanHost  = "METRICSD_TEST_PODMAN_HOST"
	EnvPodman      = "METRICSD_TEST_PODMAN"
	EnvPodmanImage = "METRICSD_TEST_PODMAN_IMAGE"
)

// Need returns the value of each variable, skipping the test when one is
// unset; under CI=true (where scripts/test.sh must have started every
// daemon) failing it instead, so that a daemon that did not start can not
// pass CI as a skipped test.
func Need(t testing.TB, names ...string) []string {
	t.Helper()
	out := make([]string, len(names))
	for i, n := range names {
		v := os.Getenv(n)
		if v == "" {
			Unavailable(t, "%s is not set: run under scripts/test.sh (which sources scripts/daemons.sh) to test against real daemons", n)
		}
		out[i] = v
	}
	return out
}

// Unavailable skips a test whose daemon is missing, with the reason; under
// CI=true it fails the test instead.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: a daemon test may not skip: "+format, args...)
	}
	t.Skipf(format, args...)
}

// EnvNoServers, set to 1, says this run has no test servers (InfluxDB,
// Prometheus, promtool, VictoriaMetrics, the OTLP receiver) by design: the
// cgroup v2 lane's 6.12 guest (scripts/v2lane-guest.sh) starts no daemon
// and no server. ServerUnavailable then skips even under CI=true.
const EnvNoServers = "METRICSD_TEST_NO_SERVERS"

// ServerUnavailable is Unavailable for a test server (scripts/servers.sh):
// it skips with the reason where EnvNoServers says the run has none, and
// otherwise skips, or under CI=true fails, as Unavailable does.
func ServerUnavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(EnvNoServers) == "1" {
		t.Skipf(EnvNoServers+"=1 (no test servers in this run): "+format, args...)
	}
	Unavailable(t, format, args...)
}

// Lock takes the daemons' lock until the test ends: shared for tests that
// only use the daemons, exclusive for those that kill or restart one, so
// that the packages go test runs in parallel do not see a daemon vanish.
func Lock(t testing.TB, exclusive bool) {
	t.Helper()
	dir := Need(t, EnvDaemonDir)[0]
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("flock: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// Run runs a command with a 2-minute bound and returns its trimmed stdout;
// it fails the test on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Try(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// Try runs a command with a 2-minute bound and returns its trimmed stdout.
func Try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// DaemonCtl runs scripts/daemons.sh's control script: "stop", "kill",
// "start" or "restart", then "containerd" or "dockerd". A test that stops a
// daemon must hold the exclusive Lock and start it again (Restore).
func DaemonCtl(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, Need(t, EnvDaemonCtl)[0], args...)
}

// Restore makes sure the daemon runs when the test ends.
func Restore(t testing.TB, daemon string) {
	t.Helper()
	ctl := Need(t, EnvDaemonCtl)[0]
	t.Cleanup(func() {
		if out, err := Try(ctl, "start", daemon); err != nil {
			t.Errorf("restoring %s: %v %s", daemon, err, out)
			return
		}
		// dockerd reconnects to a restarted containerd by itself, after a
		// while: wait until it can run a container again, so that the
		// tests after this one find both daemons working.
		host, image := os.Getenv(EnvDockerHost), os.Getenv(EnvImage)
		if daemon != "containerd" || host == "" || image == "" {
			return
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			_, err := Try("docker", "-H", host, "run", "--rm", "--network", "none", image, "/bin/true")
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("dockerd can not run containers after containerd restarted: %v", err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// Name returns a unique name with a prefix, valid as a Docker name and a
// containerd ID.
func Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Eventually polls f every 50 ms until it returns nil or timeout passes,
// then fails the test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ProcCgroup reads /proc/<pid>/cgroup directly (not through the cgroup
// package) and returns the path of one hierarchy: a v1 controller name, or
// "" for the unified hierarchy.
func ProcCgroup(t testing.TB, pid int, hierarchy string) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("read cgroup of %d: %v", pid, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if hierarchy == "" && parts[1] == "" {
			return parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == hierarchy && hierarchy != "" {
				return parts[2]
			}
		}
	}
	t.Fatalf("/proc/%d/cgroup has no %q hierarchy", pid, hierarchy)
	return ""
}

// HostCgroupPath is the cgroup path Container.CgroupPath holds on this
// host, read directly: memory on v1/hybrid hosts, unified on v2 (a host
// without /sys/fs/cgroup/memory).
func HostCgroupPath(t testing.TB, pid int) string {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		return ProcCgroup(t, pid, "memory")
	}
	return ProcCgroup(t, pid, "")
}

// BenchContainers is how many containers the List benchmarks run:
// $METRICSD_BENCH_CONTAINERS, else 100.
func BenchContainers() int {
	if n, err := strconv.Atoi(os.Getenv("METRICSD_BENCH_CONTAINERS")); err == nil && n > 0 {
		return n
	}
	return 100
}

// Parallel runs f(i) for i in [0,n) on w goroutines.
func Parallel(n, w int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
