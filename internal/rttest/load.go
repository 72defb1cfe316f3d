package rttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// DockerRunCmd starts a detached container from the test image running
// cmd, with extra `docker run` flags; it returns the ID and removes the
// container at cleanup.
func DockerRunCmd(t testing.TB, name string, flags []string, cmd ...string) string {
	t.Helper()
	v := Need(t, EnvDockerHost, EnvImage)
	args := append([]string{"-H", v[0], "run", "-d", "--name", name}, flags...)
	args = append(args, v[1])
	args = append(args, cmd...)
	id := Run(t, "docker", args...)
	t.Cleanup(func() { _, _ = Try("docker", "-H", v[0], "rm", "-f", id) })
	return id
}

// LoopbackTraffic moves kib KiB over the loopback interface inside a
// running busybox container: it serves a file of that size with busybox
// httpd on 127.0.0.1:8080 in the container's own network namespace and
// fetches it with wget there. It fails the test unless wget received every
// byte, and returns the payload size in bytes: the container's lo then
// counted at least that many bytes received and as many sent. Calling it
// again on the same container reuses the running httpd.
func LoopbackTraffic(t testing.TB, id string, kib int) uint64 {
	t.Helper()
	script := fmt.Sprintf(`set -e
mkdir -p /tmp/www
dd if=/dev/zero of=/tmp/www/blob bs=1024 count=%d 2>/dev/null
httpd -p 127.0.0.1:8080 -h /tmp/www 2>/dev/null || true
i=0
until wget -q -O /tmp/got http://127.0.0.1:8080/blob; do i=$((i+1)); [ $i -lt 100 ]; sleep 0.05; done
wc -c </tmp/got
rm -f /tmp/got`, kib)
	out := Docker(t, "exec", id, "sh", "-c", script)
	n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil || n != uint64(kib)*1024 {
		t.Fatalf("loopback traffic in %s: wget got %q bytes, want %d", id, out, kib*1024)
	}
	return n
}

// CPUWork runs a shell loop of n iterations inside a running busybox
// container (about 0.25 s of CPU per 200000 on the test VM), charged to the
// container's cgroup.
func CPUWork(t testing.TB, id string, n int) {
	t.Helper()
	Docker(t, "exec", id, "sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do i=$((i+1)); done`, n))
}

// ShmLoad writes mib MiB to /dev/shm/load inside a running container: tmpfs
// pages the container's memory cgroup is charged for while the file exists.
func ShmLoad(t testing.TB, id string, mib int) {
	t.Helper()
	Docker(t, "exec", id, "dd", "if=/dev/zero", "of=/dev/shm/load", "bs=1048576", fmt.Sprintf("count=%d", mib))
}

// CgroupFile reads one number from a cgroup v1 file of process pid, found
// directly (/proc/<pid>/cgroup, /sys/fs/cgroup/<hierarchy>): e.g.
// ("cpuacct", "cpuacct.usage") or ("memory", "memory.usage_in_bytes"). It
// skips the test on a host without that v1 hierarchy.
func CgroupFile(t testing.TB, pid int, hierarchy, file string) uint64 {
	t.Helper()
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", hierarchy)); err != nil {
		t.Skipf("no cgroup v1 %s hierarchy on this host", hierarchy)
	}
	p := filepath.Join("/sys/fs/cgroup", hierarchy, ProcCgroup(t, pid, hierarchy), file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", p, b, err)
	}
	return n
}

// MemoryUsage reads the memory use of pid's cgroup from the kernel's file:
// v1 memory.usage_in_bytes where a v1 memory hierarchy is mounted, else
// the unified hierarchy's memory.current.
func MemoryUsage(t testing.TB, pid int) uint64 {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		return CgroupFile(t, pid, "memory", "memory.usage_in_bytes")
	}
	p := filepath.Join("/sys/fs/cgroup", ProcCgroup(t, pid, ""), "memory.current")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", p, b, err)
	}
	return n
}

// NetDev is one interface's receive and transmit bytes from
// /proc/<pid>/net/dev, read directly (it shows the network namespace of
// pid).
type NetDev struct{ RxBytes, RxPackets, TxBytes, TxPackets uint64 }

// ProcNetDev reads /proc/<pid>/net/dev and returns the named interface.
func ProcNetDev(t testing.TB, pid int, iface string) NetDev {
	t.Helper()
	p := fmt.Sprintf("/proc/%d/net/dev", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) != iface {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			t.Fatalf("%s: short line %q", p, l)
		}
		n := func(i int) uint64 {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", p, l, err)
			}
			return v
		}
		return NetDev{RxBytes: n(0), RxPackets: n(1), TxBytes: n(8), TxPackets: n(9)}
	}
	t.Fatalf("%s has no interface %q", p, iface)
	return NetDev{}
}
