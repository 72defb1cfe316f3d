package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// e2eContainer is one container of the end-to-end test and the load the
// test put on it, with figures read directly (cgroup files, /proc/<pid>/
// net/dev) once the load was done.
type e2eContainer struct {
	name, id string
	pid      int
	limit    uint64 // docker run --memory
	shm      uint64 // bytes written to /dev/shm
	sent     uint64 // bytes moved over lo (each way)
	cpu      uint64 // cpuacct.usage after the load
	lo       rttest.NetDev
}

// TestEndToEnd is the end-to-end test: three busybox containers
// in the test dockerd (started with --bridge=none, so loopback is their
// only interface; the third also runs with --network none) with known CPU,
// memory and loopback load; the daemon run once with -format json reports
// each by name with CPU > 0, memory within its limit and lo counters at
// least the traffic made, all matching the cgroup files and net/dev read
// directly; then the same containers are found in a real InfluxDB (-sink
// influx) and a real Prometheus (scraping -sink prometheus).
//
// The loopback traffic inside a --bridge=none container is what cAdvisor
// and the Docker stats API do not report (../shared/DESIGN.md): here it
// must be there, as interface lo.
func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read container cgroups and enter their network namespaces")
	}
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage)
	rttest.Lock(t, false)
	// -runtime auto finds the test dockerd through DOCKER_HOST (-runtime
	// docker always uses /var/run/docker.sock), and no containerd unless
	// one is at the default socket.
	t.Setenv("DOCKER_HOST", v[0])
	if a, ok := os.LookupEnv("CONTAINERD_ADDRESS"); ok {
		os.Unsetenv("CONTAINERD_ADDRESS")
		t.Cleanup(func() { os.Setenv("CONTAINERD_ADDRESS", a) })
	}

	// The servers start while the containers are loaded.
	promPort, err := sinktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var servers sync.WaitGroup
	var influxd *sinktest.Influxd
	var prom *sinktest.Prometheus
	var influxErr, promErr error
	influxBin, influxWhy := sinktest.Binary("METRICSD_TEST_INFLUXD")
	promBin, promWhy := sinktest.Binary("METRICSD_TEST_PROMETHEUS")
	// Cleanups run last first: the servers stop (registered below), then
	// the threads that started them may go.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	if influxBin != "" {
		dir := t.TempDir()
		onKeptThread(&servers, release, func() { influxd, influxErr = sinktest.StartInfluxd(influxBin, dir, sinktest.InfluxdConfig{}) })
	}
	if promBin != "" {
		dir := t.TempDir()
		onKeptThread(&servers, release, func() {
			prom, promErr = sinktest.StartPrometheus(promBin, dir, fmt.Sprintf("127.0.0.1:%d", promPort), time.Second)
		})
	}
	t.Cleanup(func() {
		servers.Wait()
		if influxd != nil {
			influxd.Stop()
		}
		if prom != nil {
			prom.Stop()
		}
	})

	cs := []*e2eContainer{
		{name: rttest.Name("e2e-a"), limit: 64 << 20, shm: 8 << 20, sent: 256 << 10},
		{name: rttest.Name("e2e-b"), limit: 96 << 20, shm: 16 << 20, sent: 512 << 10},
		{name: rttest.Name("e2e-c"), limit: 128 << 20, shm: 24 << 20, sent: 1024 << 10},
	}
	for i, c := range cs {
		flags := []string{"--memory", fmt.Sprint(c.limit)}
		if i == 2 {
			flags = append(flags, "--network", "none")
		}
		c.id = rttest.DockerRunCmd(t, c.name, flags, "/bin/sleep", "600")
		c.pid = rttest.DockerPID(t, c.id)
	}
	for _, c := range cs {
		rttest.CPUWork(t, c.id, 100000)
		rttest.ShmLoad(t, c.id, int(c.shm>>20))
		if got := rttest.LoopbackTraffic(t, c.id, int(c.sent>>10)); got != c.sent {
			t.Fatalf("%s: sent %d, want %d", c.name, got, c.sent)
		}
		c.cpu = rttest.CgroupFile(t, c.pid, "cpuacct", "cpuacct.usage")
		c.lo = rttest.ProcNetDev(t, c.pid, "lo")
		if c.lo.RxBytes < c.sent || c.lo.TxBytes < c.sent {
			t.Fatalf("%s: /proc/%d/net/dev lo %+v after sending %d bytes", c.name, c.pid, c.lo, c.sent)
		}
	}
	// The containers are idle now (sleep): their counters stay put, so
	// what the daemon reports must lie between the direct reads above and
	// those at check time.
	check := func(t *testing.T, c *e2eContainer, cpuNs, memUsage, memLimit, rx, tx float64) {
		t.Helper()
		if cpuNow := rttest.CgroupFile(t, c.pid, "cpuacct", "cpuacct.usage"); cpuNs <= 0 || cpuNs < float64(c.cpu)*(1-1e-9) || cpuNs > float64(cpuNow)*(1+1e-9) {
			t.Errorf("%s: CPU %.0f ns, want > 0 and within cpuacct.usage [%d, %d]", c.name, cpuNs, c.cpu, cpuNow)
		}
		if memLimit != float64(c.limit) {
			t.Errorf("%s: memory limit %.0f, want %d (docker run --memory)", c.name, memLimit, c.limit)
		}
		if memUsage < float64(c.shm) || memUsage > memLimit {
			t.Errorf("%s: memory usage %.0f, want at least the %d bytes in /dev/shm and within the limit %.0f", c.name, memUsage, c.shm, memLimit)
		}
		now := rttest.ProcNetDev(t, c.pid, "lo")
		if rx < float64(c.sent) || tx < float64(c.sent) || rx < float64(c.lo.RxBytes) || rx > float64(now.RxBytes) || tx < float64(c.lo.TxBytes) || tx > float64(now.TxBytes) {
			t.Errorf("%s: lo rx %.0f tx %.0f bytes, want at least the %d sent and within /proc/%d/net/dev %+v .. %+v", c.name, rx, tx, c.sent, c.pid, c.lo, now)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	t.Run("once-json", func(t *testing.T) {
		var out, errOut strings.Builder
		start := time.Now()
		code := run(ctx, []string{"-once", "-format", "json", "-runtime", "auto"}, &out, &errOut)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		t.Logf("metricsd -once -format json: %v, %d bytes", time.Since(start).Round(time.Millisecond), out.Len())
		pts := parsePoints(t, out.String())
		for _, c := range cs {
			got := pts[c.name]
			if got == nil {
				t.Errorf("%s (%s) not in the output", c.name, c.id)
				continue
			}
			cpu, mem := got["container_cpu"], got["container_memory"]
			if cpu == nil || mem == nil {
				t.Errorf("%s: no container_cpu or container_memory point: %v", c.name, got)
				continue
			}
			if cpu.Tags["id"] != c.id || cpu.Tags["runtime"] != "docker" {
				t.Errorf("%s: tags %v, want id %s runtime docker", c.name, cpu.Tags, c.id)
			}
			var ifaces []string
			for k := range got {
				if name, ok := strings.CutPrefix(k, "container_net/"); ok {
					ifaces = append(ifaces, name)
				}
			}
			if len(ifaces) != 1 || ifaces[0] != "lo" {
				t.Errorf("%s: interfaces %v, want lo alone (--bridge=none)", c.name, ifaces)
				continue
			}
			lo := got["container_net/lo"]
			check(t, c, cpu.f(t, "usage_ns"), mem.f(t, "usage_bytes"), mem.f(t, "limit_bytes"), lo.f(t, "rx_bytes"), lo.f(t, "tx_bytes"))
		}
		// For contrast, what the Docker stats API (Telegraf's and OTel's
		// source) says of the same container's network.
		c := cs[2]
		if nets, err := dockerStatsNetworks(ctx, v[0], c.id); err != nil {
			t.Logf("docker stats API: %v", err)
		} else {
			t.Logf("%s moved %d bytes over lo; the Docker stats API's networks for it: %s", c.name, c.sent, nets)
		}
	})

	t.Run("influx", func(t *testing.T) {
		if influxBin == "" {
			rttest.Unavailable(t, "%s", influxWhy)
		}
		servers.Wait()
		if influxErr != nil {
			t.Fatalf("influxd: %v", influxErr)
		}
		if err := influxd.Exec(ctx, "CREATE DATABASE e2e"); err != nil {
			t.Fatal(err)
		}
		var out, errOut strings.Builder
		code := run(ctx, []string{"-once", "-runtime", "auto", "-sink", "influx", "-influx-url", influxd.URL, "-influx-db", "e2e"}, &out, &errOut)
		if code != 0 {
			t.Fatalf("exit %d: %s\ninfluxd log:\n%s", code, errOut.String(), influxd.Log())
		}
		ours := map[string]bool{}
		for _, c := range cs {
			ours[c.name] = true
		}
		query := func(q string) map[string]map[string]float64 {
			t.Helper()
			ss, err := influxd.Query(ctx, "e2e", q)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]map[string]float64{}
			for _, s := range ss {
				if !ours[s.Tags["name"]] {
					continue // another test's container
				}
				if len(s.Values) != 1 {
					t.Fatalf("%s: series %v has %d rows, want 1 (one snapshot)", q, s.Tags, len(s.Values))
				}
				m := map[string]float64{}
				for i, col := range s.Columns {
					if col != "time" {
						m[col] = num(t, s.Values[0][i])
					}
				}
				byName[s.Tags["name"]] = m
			}
			return byName
		}
		cpu := query(`SELECT "usage_ns" FROM "container_cpu" GROUP BY "name"`)
		mem := query(`SELECT "usage_bytes", "limit_bytes" FROM "container_memory" GROUP BY "name"`)
		lo := query(`SELECT "rx_bytes", "tx_bytes" FROM "container_net" WHERE "interface" = 'lo' GROUP BY "name"`)
		for _, c := range cs {
			if cpu[c.name] == nil || mem[c.name] == nil || lo[c.name] == nil {
				t.Errorf("%s not in InfluxDB: cpu %v memory %v lo %v", c.name, cpu[c.name], mem[c.name], lo[c.name])
				continue
			}
			check(t, c, cpu[c.name]["usage_ns"], mem[c.name]["usage_bytes"], mem[c.name]["limit_bytes"], lo[c.name]["rx_bytes"], lo[c.name]["tx_bytes"])
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		if promBin == "" {
			rttest.Unavailable(t, "%s", promWhy)
		}
		dctx, stop := context.WithCancel(ctx)
		defer stop()
		var errOut rttest.Buffer
		done := make(chan int, 1)
		listen := fmt.Sprintf("127.0.0.1:%d", promPort)
		go func() {
			done <- run(dctx, []string{"-runtime", "auto", "-sink", "prometheus", "-listen", listen, "-interval", "500ms"}, &strings.Builder{}, &errOut)
		}()
		servers.Wait()
		if promErr != nil {
			stop()
			<-done
			t.Fatalf("prometheus: %v", promErr)
		}
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = c.name
		}
		sel := `{name=~"` + strings.Join(names, "|") + `"}`
		queries := map[string]string{
			"cpu":   `container_cpu_usage_seconds_total` + sel,
			"usage": `container_memory_usage_bytes` + sel,
			"limit": `container_spec_memory_limit_bytes` + sel,
			"rx":    `container_network_receive_bytes_total` + strings.Replace(sel, "{", `{interface="lo",`, 1),
			"tx":    `container_network_transmit_bytes_total` + strings.Replace(sel, "{", `{interface="lo",`, 1),
		}
		got := map[string]map[string]float64{} // query -> name -> value
		start := time.Now()
		rttest.Eventually(t, 30*time.Second, func() error {
			for k, q := range queries {
				ss, err := prom.Query(ctx, q)
				if err != nil {
					return err
				}
				got[k] = map[string]float64{}
				for _, s := range ss {
					got[k][s.Metric["name"]] = s.Value
				}
				if len(got[k]) != len(cs) {
					return fmt.Errorf("%s: %d of %d containers in Prometheus (metricsd stderr: %q)", q, len(got[k]), len(cs), errOut.String())
				}
			}
			return nil
		})
		t.Logf("all containers' series in Prometheus after %v", time.Since(start).Round(time.Millisecond))
		for _, c := range cs {
			check(t, c, got["cpu"][c.name]*1e9, got["usage"][c.name], got["limit"][c.name], got["rx"][c.name], got["tx"][c.name])
		}
		stop()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("daemon exit %d after cancel: %s", code, errOut.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatal("daemon did not stop within 15 s of cancel")
		}
	})
}

// onKeptThread runs start (which starts a server process) on a goroutine
// locked to its OS thread, marks wg done, and keeps that thread until
// release is closed. sinktest starts its servers with Pdeathsig, which the
// kernel sends when the thread that forked the child exits, and every
// netns.Pool hop goroutine stays locked to the thread it ran on so that Go
// terminates that thread when the pool closes (each run of the daemon
// closes one): a server forked from a thread a hop goroutine later took
// would be killed with it. Measured here: 97 of 160 children started with
// Pdeathsig from ordinary goroutines died when a 2-thread pool closed, none
// with the pool left open.
func onKeptThread(wg *sync.WaitGroup, release <-chan struct{}, start func()) {
	wg.Add(1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start()
		wg.Done()
		<-release
	}()
}

// dockerStatsNetworks returns the "networks" member of a one-shot Docker
// stats answer ("null" when absent).
func dockerStatsNetworks(ctx context.Context, host, id string) (string, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return "", fmt.Errorf("%s is not a unix socket", host)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/v1.41/containers/"+id+"/stats?stream=false&one-shot=true", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st struct{ Networks json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", err
	}
	if st.Networks == nil {
		return "null", nil
	}
	return string(st.Networks), nil
}

// point is one JSON line of the stdout sink.
type point struct {
	Name   string
	Tags   map[string]string
	Fields map[string]json.Number
}

func (p *point) f(t *testing.T, field string) float64 {
	t.Helper()
	n, ok := p.Fields[field]
	if !ok {
		t.Fatalf("%s %v has no field %s: %v", p.Name, p.Tags, field, p.Fields)
	}
	v, err := n.Float64()
	if err != nil {
		t.Fatalf("%s %s: %v", p.Name, field, err)
	}
	return v
}

// parsePoints groups JSON lines by container name, then by measurement
// (container_net by "container_net/<interface>").
func parsePoints(t *testing.T, out string) map[string]map[string]*point {
	t.Helper()
	byName := map[string]map[string]*point{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		p := new(point)
		if err := json.Unmarshal(sc.Bytes(), p); err != nil {
			t.Fatalf("not a JSON point: %v: %q", err, sc.Text())
		}
		name := p.Tags["name"]
		if name == "" {
			continue // the daemon's own point, or a container without a name
		}
		key := p.Name
		if p.Name == "container_net" {
			key += "/" + p.Tags["interface"]
		}
		if byName[name] == nil {
			byName[name] = map[string]*point{}
		}
		byName[name][key] = p
	}
	return byName
}

// num converts a value InfluxDB returned (a json.Number) to a float.
func num(t *testing.T, v any) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
	if err != nil || math.IsNaN(f) {
		t.Fatalf("not a number: %v", v)
	}
	return f
}
