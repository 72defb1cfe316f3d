package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// dockerEnv skips without the test dockerd (scripts/daemons.sh) or root,
// takes the shared daemon lock, and returns the daemon's address.
func dockerEnv(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: reads container cgroups and enters their network namespaces")
	}
	host := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage)[0]
	rttest.Lock(t, false)
	return host
}

// direct is an HTTP client straight to the daemon's unix socket, built
// here rather than with the proxy's transport.
func direct(t *testing.T, host string) (*http.Client, string) {
	t.Helper()
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Skipf("%s=%s: the tests want a unix socket", rttest.EnvDockerHost, host)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, "http://docker"
}

// startProxy serves a Proxy on a free loopback port until the test ends.
func startProxy(t *testing.T, host string, sweep time.Duration) (*Proxy, string) {
	t.Helper()
	p, base, _ := startProxyWith(t, Config{DockerHost: host, Sweep: sweep})
	return p, base
}

// startProxyWith serves a Proxy made with cfg (its Log writes to the test
// log and to the returned buffer, Info and above) on a free loopback port
// until the test ends.
func startProxyWith(t *testing.T, cfg Config) (*Proxy, string, *rttest.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &rttest.Buffer{}
	cfg.Log = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := NewProxy(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go srv.Serve(ln)
	t.Cleanup(func() {
		cancel()
		srv.Close()
		if err := p.Close(); err != nil {
			t.Errorf("proxy close: %v", err)
		}
	})
	return p, "http://" + ln.Addr().String(), logs
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

var plain = &http.Client{Timeout: 30 * time.Second}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", u, err)
	}
	return resp, b
}

// inspectResult is the part of an inspect the tests look at.
type inspectResult struct {
	ID    string `json:"Id"`
	State struct {
		Running bool
		Pid     int
	}
	Metrics *Metrics
}

func inspectVia(t *testing.T, base, path string) (inspectResult, []byte) {
	t.Helper()
	resp, b := get(t, plain, base+path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	var r inspectResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("GET %s: not JSON: %v: %s", path, err, b)
	}
	// Docker streams its inspect (chunked); the proxy sets the length of
	// the answer it rewrote.
	if cl := resp.Header.Get("Content-Length"); r.Metrics != nil && cl != fmt.Sprint(len(b)) {
		t.Errorf("GET %s: Content-Length %q for a %d-byte body", path, cl, len(b))
	}
	return r, b
}

func lo(t *testing.T, m *Metrics) Interface {
	t.Helper()
	if m == nil || m.Network == nil {
		t.Fatalf("no Network in %+v", m)
	}
	for _, it := range m.Network.Interfaces {
		if it.Name == "lo" {
			return it
		}
	}
	t.Fatalf("no lo in %+v", m.Network.Interfaces)
	return Interface{}
}

func val(t *testing.T, what string, p *uint64) uint64 {
	t.Helper()
	if p == nil {
		t.Fatalf("%s absent", what)
	}
	return *p
}

// TestInspectMetrics: an inspect through the proxy is the daemon's answer
// byte for byte plus a Metrics object whose CPU, memory and loopback
// counters agree with the container's cgroup files and /proc/<pid>/net/dev,
// read directly, and with the work and traffic the test made.
func TestInspectMetrics(t *testing.T) {
	host := dockerEnv(t)
	dc, dbase := direct(t, host)
	_, base := startProxy(t, host, time.Minute)
	name := rttest.Name("dproxy-inspect")
	const limit = 64 << 20
	id := rttest.DockerRunCmd(t, name, []string{"--memory", fmt.Sprint(limit)}, "/bin/sleep", "600")
	pid := rttest.DockerPID(t, id)

	// The original fields, unchanged: the proxy's answer minus its
	// Metrics member is the daemon's answer, byte for byte (the inspect of
	// a running container does not change between calls; retried if a
	// direct answer did).
	var r inspectResult
	for try := 0; ; try++ {
		_, d1 := get(t, dc, dbase+"/v1.41/containers/"+id+"/json")
		var pb []byte
		r, pb = inspectVia(t, base, "/v1.41/containers/"+id+"/json")
		_, d2 := get(t, dc, dbase+"/v1.41/containers/"+id+"/json")
		if !bytes.Equal(d1, d2) && try < 5 {
			continue
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(pb, &members); err != nil {
			t.Fatal(err)
		}
		raw, ok := members["Metrics"]
		if !ok {
			t.Fatalf("no Metrics in %s", pb)
		}
		stripped := bytes.Replace(pb, append([]byte(`,"Metrics":`), raw...), nil, 1)
		if !bytes.Equal(stripped, d1) {
			t.Fatalf("inspect through the proxy, Metrics removed, differs from the daemon's:\nproxy:  %s\ndaemon: %s", stripped, d1)
		}
		break
	}
	if r.ID != id || !r.State.Running || r.State.Pid != pid {
		t.Fatalf("inspect: %+v, want id %s pid %d running", r, id, pid)
	}
	t.Logf("Metrics before load: %s", must(json.Marshal(r.Metrics)))
	if len(r.Metrics.Errors) > 0 {
		t.Errorf("Metrics.Errors: %v", r.Metrics.Errors)
	}
	lo0 := lo(t, r.Metrics)

	// CPU and memory load, then loopback traffic: 1 MiB each way.
	rttest.CPUWork(t, id, 200000)
	rttest.ShmLoad(t, id, 16)
	sent := rttest.LoopbackTraffic(t, id, 1024)

	cpuBefore := rttest.CgroupFile(t, pid, "cpuacct", "cpuacct.usage")
	devBefore := rttest.ProcNetDev(t, pid, "lo")
	r, _ = inspectVia(t, base, "/containers/"+name+"/json") // by name, no version prefix
	cpuAfter := rttest.CgroupFile(t, pid, "cpuacct", "cpuacct.usage")
	devAfter := rttest.ProcNetDev(t, pid, "lo")
	memUsage := rttest.CgroupFile(t, pid, "memory", "memory.usage_in_bytes")
	m := r.Metrics
	if m == nil || m.CPU == nil || m.Memory == nil {
		t.Fatalf("Metrics after load: %+v", m)
	}
	t.Logf("Metrics after load: %s", must(json.Marshal(m)))
	if u := val(t, "CPU.UsageNs", m.CPU.UsageNs); u == 0 || u < cpuBefore || u > cpuAfter {
		t.Errorf("CPU.UsageNs %d: want > 0 and within cpuacct.usage read before and after, [%d, %d]", u, cpuBefore, cpuAfter)
	}
	if u := val(t, "CPU.UserNs", m.CPU.UserNs) + val(t, "CPU.SystemNs", m.CPU.SystemNs); u == 0 {
		t.Errorf("CPU.UserNs+SystemNs is 0 after a busy loop")
	}
	if l := val(t, "Memory.LimitBytes", m.Memory.LimitBytes); l != limit || m.Memory.Unlimited {
		t.Errorf("Memory.LimitBytes %d Unlimited %v, want %d (docker run --memory)", l, m.Memory.Unlimited, limit)
	}
	if u := val(t, "Memory.UsageBytes", m.Memory.UsageBytes); u < 16<<20 || u > limit {
		t.Errorf("Memory.UsageBytes %d: want at least the 16 MiB written to /dev/shm and at most the limit %d (memory.usage_in_bytes now %d)", u, limit, memUsage)
	}
	if c := val(t, "Memory.CacheBytes", m.Memory.CacheBytes); c < 16<<20 {
		t.Errorf("Memory.CacheBytes %d: want at least the 16 MiB of /dev/shm (tmpfs is page cache)", c)
	}
	val(t, "Memory.WorkingSetBytes", m.Memory.WorkingSetBytes)
	val(t, "Memory.RSSBytes", m.Memory.RSSBytes)
	if m.IO == nil {
		t.Errorf("no IO")
	}
	lo1 := lo(t, m)
	t.Logf("lo before %+v after %+v (/proc/%d/net/dev around the read: %+v, %+v)", lo0, lo1, pid, devBefore, devAfter)
	if lo1.RxBytes-lo0.RxBytes < sent || lo1.TxBytes-lo0.TxBytes < sent {
		t.Errorf("lo moved rx %d tx %d bytes, want at least the %d sent", lo1.RxBytes-lo0.RxBytes, lo1.TxBytes-lo0.TxBytes, sent)
	}
	if lo1.RxBytes < devBefore.RxBytes || lo1.RxBytes > devAfter.RxBytes || lo1.TxPackets < devBefore.TxPackets || lo1.TxPackets > devAfter.TxPackets {
		t.Errorf("lo %+v outside /proc/%d/net/dev read before and after: %+v, %+v", lo1, pid, devBefore, devAfter)
	}

	// The Docker CLI through the proxy sees the same object.
	out := rttest.Run(t, "docker", "-H", "tcp://"+strings.TrimPrefix(base, "http://"), "inspect", "-f", "{{.Metrics.Memory.LimitBytes}} {{range .Metrics.Network.Interfaces}}{{.Name}}{{end}}", name)
	if out != fmt.Sprintf("%d lo", limit) {
		t.Errorf("docker inspect through the proxy: %q", out)
	}
}

// TestPassThroughIdentical: other calls answer exactly what the daemon
// answers directly: status, headers (but Date) and body bytes.
func TestPassThroughIdentical(t *testing.T) {
	host := dockerEnv(t)
	dc, dbase := direct(t, host)
	_, base := startProxy(t, host, time.Minute)
	name := rttest.Name("dproxy-pass")
	rttest.DockerRun(t, name, []string{"com.example.test=pass"})
	image := os.Getenv(rttest.EnvImage)
	filter := func(k, v string) string {
		b, _ := json.Marshal(map[string][]string{k: {v}})
		return url.QueryEscape(string(b))
	}
	for _, path := range []string{
		"/version",
		"/v1.41/version",
		"/_ping",
		"/v1.41/containers/json?all=1&filters=" + filter("name", name),
		"/containers/json?filters=" + filter("label", "com.example.test=pass"),
		"/v1.41/images/json?filters=" + filter("reference", image),
		"/v1.41/containers/" + rttest.Name("no-such") + "/json", // a 404 error body
	} {
		var ok bool
		var d1, p, d2 []byte
		var dr, pr *http.Response
		for try := 0; try < 5 && !ok; try++ {
			dr, d1 = get(t, dc, dbase+path)
			pr, p = get(t, plain, base+path)
			_, d2 = get(t, dc, dbase+path)
			ok = bytes.Equal(d1, d2)
		}
		if !ok {
			t.Errorf("%s: the daemon's answer changed at every try; last %s / %s", path, d1, d2)
			continue
		}
		if pr.StatusCode != dr.StatusCode || !bytes.Equal(p, d1) {
			t.Errorf("%s: proxy %s %q, daemon %s %q", path, pr.Status, p, dr.Status, d1)
		}
		dh, ph := dr.Header.Clone(), pr.Header.Clone()
		dh.Del("Date")
		ph.Del("Date")
		if fmt.Sprint(dh) != fmt.Sprint(ph) {
			t.Errorf("%s: headers differ:\nproxy:  %v\ndaemon: %v", path, ph, dh)
		}
		t.Logf("%s: %s, %d bytes identical", path, pr.Status, len(p))
	}
}

// lineReader reads a streamed body line by line in a goroutine, so that a
// test can wait for a line with a bound.
func lineReader(body io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func waitLine(t *testing.T, ch <-chan string, what string, match func(string) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before %s", what)
			}
			if match(l) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s within 20 s: the proxy holds the stream back", what)
		}
	}
}

// TestStreams: /events and logs?follow pass through as they happen, each
// item while the response is still open.
func TestStreams(t *testing.T) {
	host := dockerEnv(t)
	_, base := startProxy(t, host, time.Minute)
	name := rttest.Name("dproxy-stream")
	id := rttest.DockerRunCmd(t, name, nil, "sh", "-c",
		`echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second; exec sleep 600`)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	open := func(path string) <-chan string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return lineReader(resp.Body)
	}

	f, _ := json.Marshal(map[string][]string{"container": {id}, "type": {"container"}})
	events := open("/v1.41/events?filters=" + url.QueryEscape(string(f)))
	event := func(action string) func(string) bool {
		return func(l string) bool {
			var e struct{ Action, ID string }
			return json.Unmarshal([]byte(l), &e) == nil && e.Action == action && e.ID == id
		}
	}
	rttest.Docker(t, "pause", id)
	waitLine(t, events, "pause event", event("pause"))
	rttest.Docker(t, "unpause", id)
	waitLine(t, events, "unpause event", event("unpause"))

	// Docker multiplexes logs of a container without a TTY in 8-byte
	// framed chunks; the text is still on its own line.
	logs := open("/v1.41/containers/" + id + "/logs?follow=1&stdout=1")
	waitLine(t, logs, `log line "first"`, func(l string) bool { return strings.HasSuffix(l, "first") })
	rttest.Docker(t, "exec", id, "touch", "/tmp/go")
	waitLine(t, logs, `log line "second"`, func(l string) bool { return strings.HasSuffix(l, "second") })
}

// TestHijack: docker exec and docker run through the program (POST
// /exec/{id}/start and /containers/{id}/attach with Upgrade: tcp, hijacked
// connections) carry output, and stdin with its end (a half close).
func TestHijack(t *testing.T) {
	host := dockerEnv(t)
	// The program on its default kind of listener, with its connection
	// cap and write bound beneath the hijacked connections.
	sock := filepath.Join(t.TempDir(), "hijack.sock")
	startProgram(t, "-listen", "unix://"+sock, "-docker-host", host)
	name := rttest.Name("dproxy-exec")
	rttest.DockerRun(t, name, nil)
	ph := "unix://" + sock
	if out := rttest.Run(t, "docker", "-H", ph, "exec", name, "echo", "hi"); out != "hi" {
		t.Errorf("docker exec echo hi through the proxy printed %q", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "-H", ph, "exec", "-i", name, "sh", "-c", "cat; echo end")
	payload := strings.Repeat("0123456789abcdef", 8192) // 128 KiB
	cmd.Stdin = strings.NewReader(payload)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker exec -i through the proxy: %v", err)
	}
	if string(out) != payload+"end\n" {
		t.Errorf("docker exec -i cat through the proxy: %d bytes back, want the %d sent then \"end\"", len(out), len(payload))
	}

	// docker run -i: create, attach (hijacked), start, wait (a long poll)
	// and remove, all through the proxy; the exit status comes back.
	image := os.Getenv(rttest.EnvImage)
	runName := rttest.Name("dproxy-run-i")
	t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", host, "rm", "-f", runName) })
	run := exec.CommandContext(ctx, "docker", "-H", ph, "run", "--rm", "-i", "--name", runName, image, "sh", "-c", "cat; exit 3")
	run.Stdin = strings.NewReader("piped\n")
	out, err = run.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || string(out) != "piped\n" {
		t.Errorf("docker run -i through the proxy: %v, output %q; want exit status 3 and \"piped\"", err, out)
	}
}

// cgroupFDs counts this process's descriptors on files of the container's
// cgroup (paths with its ID) and on net/dev files (the namespace handles).
func cgroupFDs(t *testing.T, id string) (cg, netdev int) {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", de.Name()))
		if err != nil {
			continue
		}
		if strings.Contains(l, id) && strings.HasPrefix(l, "/sys/fs/cgroup/") {
			cg++
		}
		// "/proc/<pid>/task/<tid>/net/dev", with " (deleted)" once the
		// hop thread's view of it went stale.
		if strings.Contains(l, "/net/dev") {
			netdev++
		}
	}
	return cg, netdev
}

// TestRelease: a container's handles are opened once, kept, and closed
// when an inspect finds it stopped, or by the sweep after it was removed
// without another inspect.
func TestRelease(t *testing.T) {
	host := dockerEnv(t)
	p, base := startProxy(t, host, 100*time.Millisecond)
	_, netdev0 := cgroupFDs(t, "no-such-id")

	a := rttest.DockerRun(t, rttest.Name("dproxy-stop"), nil)
	b := rttest.DockerRun(t, rttest.Name("dproxy-rm"), nil)
	for _, id := range []string{a, b} {
		inspectVia(t, base, "/containers/"+id+"/json")
		inspectVia(t, base, "/containers/"+id+"/json") // cached: no second open
		if !p.cache.cached(id) {
			t.Fatalf("%s not cached after an inspect", id)
		}
		if cg, _ := cgroupFDs(t, id); cg == 0 {
			t.Fatalf("no descriptor on %s's cgroup files while cached", id)
		}
	}
	if _, nd := cgroupFDs(t, "no-such-id"); nd-netdev0 != 2 {
		t.Errorf("%d net/dev descriptors for 2 containers inspected twice, want 2", nd-netdev0)
	}

	// Stopped, then inspected: released at once, no Metrics.
	rttest.Docker(t, "kill", a)
	r, _ := inspectVia(t, base, "/containers/"+a+"/json")
	if r.State.Running || r.Metrics != nil {
		t.Errorf("inspect of a killed container: running %v, Metrics %+v", r.State.Running, r.Metrics)
	}
	if cg, _ := cgroupFDs(t, a); p.cache.cached(a) || cg != 0 {
		t.Errorf("killed container still cached (%v) or %d descriptors open on its cgroup", p.cache.cached(a), cg)
	}

	// Removed with no inspect: the sweep releases it.
	rttest.Docker(t, "rm", "-f", b)
	rttest.Eventually(t, 10*time.Second, func() error {
		if cg, _ := cgroupFDs(t, b); p.cache.cached(b) || cg != 0 {
			return fmt.Errorf("removed container still cached (%v), %d descriptors on its cgroup", p.cache.cached(b), cg)
		}
		return nil
	})
	if _, nd := cgroupFDs(t, "no-such-id"); nd != netdev0 {
		t.Errorf("%d net/dev descriptors left open, want %d", nd, netdev0)
	}
}

// TestRestart: after docker restart (a new init PID, a new cgroup at the
// same path, a new network namespace) an inspect reads the new container,
// and the old handles are closed, not added to.
func TestRestart(t *testing.T) {
	host := dockerEnv(t)
	p, base := startProxy(t, host, time.Minute)
	_, netdev0 := cgroupFDs(t, "no-such-id")
	id := rttest.DockerRun(t, rttest.Name("dproxy-restart"), nil)
	r, _ := inspectVia(t, base, "/containers/"+id+"/json")
	if r.Metrics == nil {
		t.Fatal("no Metrics")
	}
	cg0, _ := cgroupFDs(t, id)
	rttest.LoopbackTraffic(t, id, 64)
	rttest.Docker(t, "restart", "-t", "0", id)
	pid := rttest.DockerPID(t, id)
	if pid == r.State.Pid {
		t.Fatalf("docker restart kept PID %d", pid)
	}
	r, _ = inspectVia(t, base, "/containers/"+id+"/json")
	cpuAfter := rttest.CgroupFile(t, pid, "cpuacct", "cpuacct.usage")
	if r.State.Pid != pid || r.Metrics == nil || r.Metrics.CPU == nil || len(r.Metrics.Errors) > 0 {
		t.Fatalf("after restart: pid %d (docker says %d), Metrics %s", r.State.Pid, pid, must(json.Marshal(r.Metrics)))
	}
	if u := val(t, "CPU.UsageNs", r.Metrics.CPU.UsageNs); u == 0 || u > cpuAfter {
		t.Errorf("CPU.UsageNs %d after restart, want > 0 and at most the new cgroup's cpuacct.usage %d", u, cpuAfter)
	}
	// The new namespace has not seen the 64 KiB sent before the restart.
	if l := lo(t, r.Metrics); l.RxBytes >= 64<<10 {
		t.Errorf("lo after restart %+v: still the old namespace's counters", l)
	}
	if cg, nd := cgroupFDs(t, id); cg != cg0 || nd-netdev0 != 1 || !p.cache.cached(id) {
		t.Errorf("after restart %d cgroup and %d net/dev descriptors open, cached %v; want %d and 1, cached", cg, nd-netdev0, p.cache.cached(id), cg0)
	}
}

// TestRun runs the program: it serves on -listen, proxies, and on cancel
// exits 0 even with a stream and a hijacked connection open.
func TestRun(t *testing.T) {
	host := dockerEnv(t)
	port, err := sinktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr rttest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "tcp://" + addr, "-docker-host", host}, io.Discard, &stderr)
	}()
	rttest.Eventually(t, 10*time.Second, func() error {
		resp, err := plain.Get("http://" + addr + "/_ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	name := rttest.Name("dproxy-run")
	rttest.DockerRun(t, name, nil)
	r, _ := inspectVia(t, "http://"+addr, "/containers/"+name+"/json")
	if r.Metrics == nil || r.Metrics.CPU == nil {
		t.Fatalf("no Metrics through run: %+v", r.Metrics)
	}
	// A stream and an interactive exec stay open while the program stops.
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	execCmd := exec.Command("docker", "-H", "tcp://"+addr, "exec", "-i", name, "cat")
	stdin, _ := execCmd.StdinPipe()
	defer stdin.Close()
	if err := execCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer execCmd.Process.Kill()
	// The daemon starts the exec's process on the hijacked request.
	rttest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(rttest.Docker(t, "top", name), "cat") {
			return errors.New("exec cat not started")
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15 s of cancel")
	}
	// Both ended with the program: the stream's body ends, the exec's
	// connection closes and the CLI exits.
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Error("the /events stream stayed open after run returned")
	}
	waited := make(chan error, 1)
	go func() { waited <- execCmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Error("docker exec -i through the proxy still running after run returned")
	}
	// Asked for TCP, it serves it, saying loudly what that means.
	if out := stderr.String(); !strings.Contains(out, "listening on tcp://"+addr) ||
		!strings.Contains(out, "level=WARN") || !strings.Contains(out, "every local user") {
		t.Errorf("stderr %q: want the listening line and a warning that every local user can reach TCP", out)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestConcurrentInspect: inspects of one container at once all get
// Metrics, and the container's namespace is opened once.
func TestConcurrentInspect(t *testing.T) {
	host := dockerEnv(t)
	_, base := startProxy(t, host, time.Minute)
	_, netdev0 := cgroupFDs(t, "no-such-id")
	id := rttest.DockerRun(t, rttest.Name("dproxy-conc"), nil)
	const n = 8
	errc := make(chan error, n)
	for range n {
		go func() {
			resp, err := plain.Get(base + "/containers/" + id + "/json")
			if err != nil {
				errc <- err
				return
			}
			defer resp.Body.Close()
			var r inspectResult
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				errc <- err
				return
			}
			if r.Metrics == nil || r.Metrics.CPU == nil || r.Metrics.Network == nil || len(r.Metrics.Errors) > 0 {
				errc <- fmt.Errorf("incomplete Metrics %+v", r.Metrics)
				return
			}
			errc <- nil
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	if _, nd := cgroupFDs(t, "no-such-id"); nd-netdev0 != 1 {
		t.Errorf("%d net/dev descriptors opened for one container inspected %d times at once, want 1", nd-netdev0, n)
	}
}

// TestRunUnixSocket: -listen unix:///path serves there, and the socket
// is gone after the program stops.
func TestRunUnixSocket(t *testing.T) {
	host := dockerEnv(t)
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr rttest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "unix://" + sock, "-docker-host", host}, io.Discard, &stderr)
	}()
	rttest.Eventually(t, 10*time.Second, func() error {
		out, err := rttest.Try("docker", "-H", "unix://"+sock, "version", "-f", "{{.Server.APIVersion}}")
		if err != nil {
			return err
		}
		if want := rttest.Docker(t, "version", "-f", "{{.Server.APIVersion}}"); out != want {
			return fmt.Errorf("API version %q through the proxy, %q direct", out, want)
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15 s of cancel")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-bogus"},
		{"-docker-host", "ftp://x"},
		{"-docker-host", "tcp://127.0.0.1:2375"},
		{"-listen", "127.0.0.1:12375"},
		{"-sweep", "0s"},
		{"-max-conns", "0"},
		{"-idle-timeout", "-1s", "-write-timeout", "0s"},
		{"-log-level", "loud"},
		{"stray"},
	} {
		var stderr strings.Builder
		code := run(context.Background(), args, io.Discard, &stderr)
		if code != 2 || strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), "dockerproxy: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr.String())
		}
	}
}

func TestSplice(t *testing.T) {
	for in, want := range map[string]string{
		`{"Id":"x"}` + "\n": `{"Id":"x","Metrics":{"a":1}}` + "\n",
		`{"Id":"x"}`:        `{"Id":"x","Metrics":{"a":1}}`,
		`{ }`:               `{ "Metrics":{"a":1}}`,
	} {
		got, ok := splice([]byte(in), []byte(`{"a":1}`))
		if !ok || string(got) != want {
			t.Errorf("splice(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{``, `[1]`, `}`, "\n"} {
		if got, ok := splice([]byte(in), []byte(`{}`)); ok {
			t.Errorf("splice(%q) = %q, want refusal", in, got)
		}
	}
}

// BenchmarkInspect compares an inspect straight from the daemon with one
// through the proxy (handles cached after the first), and the Metrics read
// alone.
func BenchmarkInspect(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	v := rttest.Need(b, rttest.EnvDockerHost, rttest.EnvImage)
	rttest.Lock(b, false)
	id := rttest.DockerRun(b, rttest.Name("dproxy-bench"), nil)
	path, _ := strings.CutPrefix(v[0], "unix://")
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	dc := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewProxy(ctx, Config{DockerHost: v[0]})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	defer srv.Close()
	fetch := func(b *testing.B, c *http.Client, u string) {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			fetch(b, dc, "http://docker/v1.41/containers/"+id+"/json")
		}
	})
	b.Run("proxy", func(b *testing.B) {
		for b.Loop() {
			fetch(b, http.DefaultClient, "http://"+ln.Addr().String()+"/v1.41/containers/"+id+"/json")
		}
	})
	b.Run("proxy-version", func(b *testing.B) {
		for b.Loop() {
			fetch(b, http.DefaultClient, "http://"+ln.Addr().String()+"/v1.41/version")
		}
	})
	b.Run("direct-version", func(b *testing.B) {
		for b.Loop() {
			fetch(b, dc, "http://docker/v1.41/version")
		}
	})
	pid := 0
	fmt.Sscan(rttest.Docker(b, "inspect", "-f", "{{.State.Pid}}", id), &pid)
	b.Run("metrics-cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m := p.cache.metrics(ctx, id, pid); m == nil || m.CPU == nil {
				b.Fatal("no metrics")
			}
		}
	})
	b.Run("metrics-open-close", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m := p.cache.metrics(ctx, id, pid); m == nil || m.CPU == nil {
				b.Fatal("no metrics")
			}
			p.cache.forget(id)
		}
	})
}
