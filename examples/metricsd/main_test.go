package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

func TestMain(m *testing.M) {
	if os.Getenv("METRICSD_TEST_DAEMON") != "" { // play the daemon
		ctx, stop := signalContext()
		defer stop()
		os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if daemonBin != "" { // built once for the package's tests (deploy_test.go)
		os.RemoveAll(filepath.Dir(daemonBin))
	}
	os.Exit(code)
}

func runArgs(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e strings.Builder
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestBadFlagsOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"-bogus"},
		{"-interval", "0"},
		{"-limit-max-age", "-1s"},
		{"-runtime", "podman"},
		{"-sink", "graphite"},
		{"-format", "xml"},
		{"-net", "dev,quic"},
		{"-sink", "influx", "-influx-url", "http://127.0.0.1:1"},
		{"stray"},
		{"-include-runtime", "dokcer"},
		{"-exclude-name", ""},
		{"-include-label", "=web"},
		{"-influx-buffer", "0"},
		{"-influx-batch", "-5"},
		{"-remotewrite-buffer", "0"},
		{"-otlp-buffer", "-1"},
		{"-max-value-len", "0"},
		{"-max-interfaces", "-2"},
	} {
		code, _, errOut := runArgs(t, args...)
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "metricsd: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
	if code, _, errOut := runArgs(t, "-sink", "influx", "-influx-url", "http://127.0.0.1:1"); !strings.Contains(errOut, "unreachable") {
		t.Errorf("unreachable InfluxDB: exit %d %q", code, errOut)
	}
}

// TestOnceJSON runs the daemon once with no container daemon (the cgroup
// tree is the runtime): it exits 0 and every line is a JSON point.
func TestOnceJSON(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup and enter namespaces")
	}
	code, out, errOut := runArgs(t, "-once", "-runtime", "cgroupfs", "-format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		var p struct {
			Name   string
			Tags   map[string]string
			Fields map[string]any
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil || p.Name == "" || len(p.Fields) == 0 {
			t.Fatalf("line %d not a JSON point: %v %q", lines+1, err, sc.Text())
		}
		lines++
	}
	t.Logf("%d points", lines)
}

// TestSIGTERM starts the daemon, lets it write, and stops it with SIGTERM
// (then SIGINT): it flushes and exits 0 each time.
func TestSIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup")
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0], "-runtime", "cgroupfs", "-interval", "200ms", "-net", "none", "-listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "METRICSD_TEST_DAEMON=1")
		var out, errOut rttest.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Signal once a snapshot is out: then the handler is installed
		// (a fixed wait lost that race on a loaded machine, where the
		// race-enabled binary took longer than it to start).
		sinktest.Poll(15*time.Second, func() bool { return snapshotLine.MatchString(out.String()) })
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v: %v\n%s", sig, err, errOut.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: did not exit", sig)
		}
		if !snapshotLine.MatchString(out.String()) {
			t.Errorf("%v: no snapshot written before the signal: %q", sig, out.String())
		}
	}
}

// snapshotLine matches the daemon's own point, which every snapshot has
// (the cgroup tree of a fresh machine may hold no container at all).
var snapshotLine = regexp.MustCompile(`(?m)^metricsd[, ]`)

// TestRuntimeEndpoints: -runtime docker and containerd use -docker-host and
// -containerd-address (default $DOCKER_HOST, $CONTAINERD_ADDRESS); a wrong
// endpoint is a one-line error and exit 2.
func TestRuntimeEndpoints(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read the containers' cgroups")
	}
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvContainerd)
	dockerHost, ctrd := v[0], v[1]
	for _, args := range [][]string{
		{"-runtime", "docker", "-docker-host", dockerHost},
		{"-runtime", "containerd", "-containerd-address", ctrd},
	} {
		code, out, errOut := runArgs(t, append(args, "-once", "-format", "json", "-net", "none")...)
		if code != 0 || !strings.Contains(out, `"name":"metricsd"`) {
			t.Errorf("%v: exit %d, stderr %q, output %.300q", args, code, errOut, out)
		}
	}
	for _, args := range [][]string{
		{"-runtime", "docker", "-docker-host", "unix:///nonexistent/docker.sock"},
		{"-runtime", "containerd", "-containerd-address", "/nonexistent/containerd.sock"},
	} {
		code, _, errOut := runArgs(t, append(args, "-once")...)
		if code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
}

// TestCgroupSubtree: with -runtime cgroupfs -cgroup-subtree, the daemon
// reports the groups beneath that path and nothing else on the host.
func TestCgroupSubtree(t *testing.T) {
	tr := rttest.NewTree(t)
	want := map[string]bool{}
	for i := 0; i < 2; i++ {
		id := fmt.Sprintf("%064x", 0xabc0+i)
		tr.Spawn("docker/" + id)
		want[id] = true
	}
	code, out, errOut := runArgs(t, "-once", "-listen", "", "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p struct {
			Name string
			Tags map[string]string
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("not a JSON point: %v %q", err, sc.Text())
		}
		if id := p.Tags["id"]; p.Name == "container_memory" { // the tree is in the memory hierarchy
			got[id] = true
			if !want[id] {
				t.Errorf("reported %q (%v), outside %s", id, p.Tags, tr.Base)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("reported %v, want %v\n%s\n%s", got, want, out, errOut)
	}
}

// TestOnceHostileInterface: a container (a group beneath -cgroup-subtree
// whose process is in a network namespace the test made) has an interface
// named x\, which line protocol can not end a tag value with, and one named
// with invalid UTF-8. -once writes every point, the names sanitised, and
// exits 0; it exited 1 having left out the container's interfaces.
func TestOnceHostileInterface(t *testing.T) {
	tr := rttest.NewTree(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	ns := fmt.Sprintf("mdonce-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	for _, l := range [][2]string{{`x\`, "p1"}, {"u\xff", "p2"}} {
		if out, err := exec.Command("ip", "-n", ns, "link", "add", l[0], "type", "veth", "peer", "name", l[1]).CombinedOutput(); err != nil {
			t.Fatalf("ip link add %q: %v %s", l[0], err, out)
		}
	}
	id := fmt.Sprintf("%064x", 0xbad1)
	tr.SpawnShell("docker/"+id, "exec ip netns exec "+ns+" sleep 600")
	// The shell has moved itself into the group and become sleep in ns
	// once the namespace's interfaces show in its /proc/PID/net/dev.
	if !sinktest.Poll(10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(tr.Dir("docker/"+id), "cgroup.procs"))
		pid := strings.TrimSpace(string(b))
		dev, _ := os.ReadFile("/proc/" + pid + "/net/dev")
		return pid != "" && strings.Contains(string(dev), `x\:`)
	}) {
		t.Fatal("the workload did not enter the namespace")
	}
	code, out, errOut := runArgs(t, "-once", "-listen", "", "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "container_net,") && strings.Contains(l, id) {
			i := strings.Index(l, ",interface=") + len(",interface=")
			seen[l[i:i+strings.IndexAny(l[i:], ", ")]] = true
		}
	}
	for _, want := range []string{"x\uFFFD", "u\uFFFD", "p1", "p2", "lo"} {
		if !seen[want] {
			t.Errorf("interface %q not written; written %v\n%s", want, seen, errOut)
		}
	}

	// -max-interfaces bounds them, in the kernel's order; -max-value-len
	// cuts the id tag.
	code, out, errOut = runArgs(t, "-once", "-listen", "", "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base,
		"-format", "json", "-max-interfaces", "2", "-max-value-len", "20")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var p struct {
			Name string
			Tags map[string]string
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("%v: %q", err, l)
		}
		if p.Name == "container_net" && p.Tags["id"] == id[:20] {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d interfaces written with -max-interfaces 2 (id cut to 20 bytes), want 2\n%s", n, out)
	}
}

// TestInfoOnly: with -info-only each container has one container_info
// point carrying its tags, and its other points carry the id tag alone
// (and the global ones).
func TestInfoOnly(t *testing.T) {
	tr := rttest.NewTree(t)
	id := fmt.Sprintf("%064x", 0xabd0)
	tr.Spawn("docker/" + id)
	code, out, errOut := runArgs(t, "-once", "-listen", "", "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-format", "json", "-net", "none", "-info-only")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	infos, others := 0, 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p struct {
			Name string
			Tags map[string]string
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("not a JSON point: %v %q", err, sc.Text())
		}
		if p.Tags["id"] != id {
			continue
		}
		if p.Name == "container_info" {
			infos++
			if p.Tags["runtime"] == "" {
				t.Errorf("container_info without the runtime tag: %v", p.Tags)
			}
			continue
		}
		others++
		for k := range p.Tags {
			if k != "id" && k != "host" {
				t.Errorf("%s carries %s=%s with -info-only", p.Name, k, p.Tags[k])
			}
		}
	}
	if infos != 1 || others == 0 {
		t.Errorf("%d container_info points and %d others for %s, want 1 and some\n%s", infos, others, id, out)
	}
}
