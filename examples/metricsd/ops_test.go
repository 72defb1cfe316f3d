package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/internal/rttest"
)

// testDaemonBinary copies the test binary (which plays the daemon under
// METRICSD_TEST_DAEMON, see TestMain) where any user may run it.
func testDaemonBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mdbin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "metricsd")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runDaemon runs the daemon binary once to its end and returns its exit
// status, stdout and stderr.
func runDaemon(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	cmd.Env = append(cmd.Env, "METRICSD_TEST_DAEMON=1")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// warnLines returns the Warn lines of a daemon's stderr that contain s.
func warnLines(errOut, s string) []string {
	var ls []string
	for _, l := range strings.Split(errOut, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, s) {
			ls = append(ls, l)
		}
	}
	return ls
}

// TestOnceFailsAsNonRoot: run as user nobody, -once can not enter the
// containers' network namespaces. It says so at start (the missing
// capabilities), reports the containers with their cgroup figures anyway,
// logs the failure at the default level, and exits 1 with a line saying
// the snapshot is incomplete. It exited 0 with nothing on stderr. The
// container is a process of root's in a group of the test's that the
// cgroup tree's walk recognises (<namespace>/<id>, as ctr makes them).
func TestOnceFailsAsNonRoot(t *testing.T) {
	g := cgtest.NewV1(t, "cpu", "cpuacct", "memory", "pids")
	sleep := exec.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	g.AddPID(sleep.Process.Pid)
	id := path.Base(g.Path)
	cmd := exec.Command(testDaemonBinary(t), "-once", "-runtime", "cgroupfs", "-format", "json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	code, out, errOut := runDaemon(t, cmd)
	if code != 1 {
		t.Errorf("exit %d as nobody, want 1\n%s", code, errOut)
	}
	if len(warnLines(errOut, "CAP_SYS_ADMIN")) != 1 {
		t.Errorf("no start-up warning about the missing capabilities:\n%s", errOut)
	}
	if len(warnLines(errOut, "netns failed")) == 0 || !strings.Contains(errOut, "metricsd: incomplete snapshot:") {
		t.Errorf("the failures are not on stderr:\n%s", errOut)
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p struct {
			Name string
			Tags map[string]string
		}
		if json.Unmarshal(sc.Bytes(), &p) == nil && p.Name == "container_cpu" && p.Tags["id"] == id && p.Tags["runtime_namespace"] == path.Base(path.Dir(g.Path)) {
			found = true
		}
	}
	if !found {
		t.Errorf("the test's container (%s) was not reported with its cgroup figures:\n%s", g.Path, errOut)
	}
}

// TestOnceFailsOutOfDescriptors: with ulimit -n 64 the daemon can open only
// a few of the test containers' cgroups. It warns at the first listing that
// the limit can not hold them, logs the failure once (one cause, however
// many containers), and -once exits 1. It exited 0 having reported 2 of 46.
func TestOnceFailsOutOfDescriptors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read container cgroups")
	}
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage)
	rttest.Lock(t, false)
	for i := range 6 {
		rttest.DockerRun(t, rttest.Name(fmt.Sprintf("fds%d", i)), nil)
	}
	cmd := exec.Command("bash", "-c", `ulimit -n 64 && exec "$0" "$@"`, testDaemonBinary(t),
		"-once", "-runtime", "docker", "-docker-host", v[0], "-format", "json", "-net", "none")
	code, out, errOut := runDaemon(t, cmd)
	if code != 1 {
		t.Errorf("exit %d with ulimit -n 64, want 1\n%s", code, errOut)
	}
	if len(warnLines(errOut, "RLIMIT_NOFILE is too low")) != 1 {
		t.Errorf("no warning that RLIMIT_NOFILE can not hold the containers:\n%s", errOut)
	}
	if ls := warnLines(errOut, `cause="too many open files"`); len(ls) != 1 {
		t.Errorf("%d Warn lines for the one cause, want 1:\n%s", len(ls), errOut)
	}
	if !strings.Contains(errOut, "metricsd: incomplete snapshot:") {
		t.Errorf("no incomplete-snapshot line:\n%s", errOut)
	}
	t.Logf("%d points written", strings.Count(out, "\n"))
}

// TestExplicitEndpointRequired: an endpoint given by flag or environment
// that does not answer ends the daemon at once with the reason (exit 2),
// never a fallback to the cgroup tree.
func TestExplicitEndpointRequired(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"-docker-host", "unix://" + dir + "/docker.sock"}, "", "-docker-host"},
		{[]string{"-containerd-address", dir + "/containerd.sock"}, "", "-containerd-address"},
		{nil, "DOCKER_HOST=unix://" + dir + "/docker.sock", "-docker-host"},
	} {
		var o, e strings.Builder
		if tc.env != "" {
			k, v, _ := strings.Cut(tc.env, "=")
			t.Setenv(k, v)
		}
		code := run(context.Background(), append(tc.args, "-once", "-net", "none"), &o, &e)
		if tc.env != "" {
			os.Unsetenv(strings.Split(tc.env, "=")[0])
		}
		if code != 2 || strings.Count(e.String(), "\n") != 1 || !strings.Contains(e.String(), tc.want) || o.Len() != 0 {
			t.Errorf("%v %s: exit %d, stderr %q, %d bytes out; want 2, one line naming %s, nothing written", tc.args, tc.env, code, e.String(), o.Len(), tc.want)
		}
	}
}

// daemon runs the daemon in-process until the test ends and returns its
// stderr and the address it serves HTTP on, from its start-up line.
func daemon(t *testing.T, args ...string) (errOut *rttest.Buffer, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errOut = &rttest.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(args, "-listen", "127.0.0.1:0"), io.Discard, errOut) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("daemon exit %d\n%s", code, errOut)
		}
	})
	re := regexp.MustCompile(`msg="metricsd: started".* listen=(\S+)`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(errOut.String()); m != nil {
			return errOut, m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("daemon exited %d before its start-up line:\n%s", code, errOut)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line:\n%s", errOut)
		}
	}
}

// httpGet fetches url on a connection of its own, closed after.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStartLineAnd503: at the default log level the daemon writes one line
// at start (runtime, sinks, interval, listen address, tags); /metrics
// answers 503 until the first snapshot (it answered 200 and an empty page);
// a connection beyond -max-conns is answered 503 at once. The interval puts
// the first snapshot hours away.
func TestStartLineAnd503(t *testing.T) {
	interval := 1000 * time.Hour
	if time.Until(time.Now().Truncate(interval).Add(interval)) < time.Hour {
		interval = 999 * time.Hour
	}
	errOut, addr := daemon(t, "-runtime", "cgroupfs", "-net", "none", "-sink", "prometheus", "-interval", interval.String(), "-tag", "env=ci", "-host-tag", "node-t",
		"-max-conns", "2")
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) != 1 {
		t.Errorf("%d lines at start at the default level, want 1:\n%s", len(lines), errOut)
	}
	for _, want := range []string{"level=INFO", "runtime=cgroupfs", "sinks=prometheus", "interval=" + interval.String(), "listen=" + addr, `tags="env=ci,host=node-t"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("start-up line lacks %q: %s", want, lines[0])
		}
	}
	if code, body := httpGet(t, "http://"+addr+"/metrics"); code != http.StatusServiceUnavailable {
		t.Errorf("/metrics before the first snapshot: %d %q, want 503", code, body)
	}

	// The cap: two keep-alive connections served (each got its 200, so
	// each holds a slot: one refused while the server has yet to see the
	// connection above closed is dialled again), a third answered 503.
	request := func(c net.Conn) int {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for held := 0; held < 2; {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if request(c) == http.StatusOK {
			held++
		}
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if code := request(extra); code != http.StatusServiceUnavailable {
		t.Errorf("a connection beyond -max-conns 2: %d, want 503", code)
	}
}

// TestServerBounds: the HTTP server closes a keep-alive connection idle for
// -idle-timeout and one that never sends a request (155 idle connections
// used to exhaust the daemon's descriptors), and serves /metrics once a
// snapshot was taken, with the host tag and -tag labels on the series.
func TestServerBounds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup")
	}
	_, addr := daemon(t, "-runtime", "cgroupfs", "-net", "none", "-sink", "prometheus", "-interval", "200ms",
		"-idle-timeout", "300ms", "-tag", "env=ci", "-host-tag", "node-t")

	// /metrics once a snapshot was taken: 200, tags on every series.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := httpGet(t, "http://"+addr+"/metrics")
		if code == http.StatusOK {
			n := 0
			for _, l := range strings.Split(body, "\n") {
				if l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				n++
				if !strings.Contains(l, `host="node-t"`) || !strings.Contains(l, `env="ci"`) {
					t.Fatalf("series without the global labels: %s", l)
				}
			}
			if n == 0 {
				t.Fatal("/metrics: 200 and no series")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics still %d", code)
		}
	}

	// closed reports whether the server closes c (a read returns EOF); the
	// deadline only ends a test that failed.
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF: closed by the server
	}
	keepAlive, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer keepAlive.Close()
	fmt.Fprintf(keepAlive, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(keepAlive), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	resp.Body.Close()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if !closed(keepAlive) {
		t.Error("an idle keep-alive connection was not closed")
	}
	if !closed(silent) {
		t.Error("a connection that sent nothing was not closed")
	}

}

// TestHostTag: every point of a -once run carries the host tag (the host's
// name by default) and the -tag tags, the daemon's own point included;
// -host-tag "" leaves the host tag out.
func TestHostTag(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup")
	}
	host, _ := os.Hostname()
	for _, tc := range []struct {
		args     []string
		wantHost string
	}{
		{nil, host},
		{[]string{"-host-tag", ""}, ""},
	} {
		var o, e strings.Builder
		run(context.Background(), append(tc.args, "-once", "-runtime", "cgroupfs", "-net", "none", "-format", "json", "-tag", "env=ci"), &o, &e)
		n, self := 0, 0
		sc := bufio.NewScanner(strings.NewReader(o.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var p struct {
				Name string
				Tags map[string]string
			}
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			n++
			if p.Name == "metricsd" {
				self++
			}
			if p.Tags["host"] != tc.wantHost || p.Tags["env"] != "ci" {
				t.Fatalf("%v: point %s tags %v, want host %q and env ci", tc.args, p.Name, p.Tags, tc.wantHost)
			}
		}
		if n == 0 || self != 1 {
			t.Errorf("%v: %d points, %d self points\n%s", tc.args, n, self, e.String())
		}
	}
}

// TestSignalWhileStarting: a signal while the daemon waits for a runtime at
// start (a socket that accepts and never answers) ends it with exit 0 and
// one line, not exit 2 and an error.
func TestSignalWhileStarting(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never answered
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the signal came
	var o, e strings.Builder
	code := run(ctx, []string{"-containerd-address", sock, "-once", "-net", "none"}, &o, &e)
	if code != 0 || e.String() != "metricsd: stopped while starting\n" {
		t.Errorf("exit %d, stderr %q; want 0 and one line", code, e.String())
	}
}
