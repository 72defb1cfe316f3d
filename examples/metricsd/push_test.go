package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// TestPushSinks runs the daemon once, on two containers of its own (a
// cgroup tree the test made, -cgroup-subtree), with -sink remotewrite,
// -sink otlp and -sink stdout together, against a real VictoriaMetrics that demands
// basic auth and the OpenTelemetry Collector's OTLP receiver, with every
// secret out of the command line: the remote_write password in a file,
// the OTLP Authorization header in the environment. The same snapshot
// reaches all three: the container count of the JSON lines in
// VictoriaMetrics' metricsd_containers (labelled job and instance, as
// -remotewrite-labels says by default) and in the OTLP receiver's
// resources.
func TestPushSinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup and enter namespaces")
	}
	vmBin, why := sinktest.Binary("METRICSD_TEST_VICTORIAMETRICS")
	if vmBin == "" {
		rttest.Unavailable(t, "%s", "no VictoriaMetrics: "+why)
	}
	otlpBin, why := sinktest.Binary("METRICSD_TEST_OTLPRECEIVER")
	if otlpBin == "" {
		rttest.Unavailable(t, "%s", "no OTLP receiver: "+why)
	}
	dir := t.TempDir()
	vm, err := sinktest.StartVictoriaMetrics(vmBin, dir, "-httpAuth.username=metricsd", "-httpAuth.password=pa55")
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	vm.User, vm.Password = "metricsd", "pa55"
	rcv, err := sinktest.StartOTLPReceiver(otlpBin, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Stop()
	pwFile := filepath.Join(dir, "rw-password")
	if err := os.WriteFile(pwFile, []byte("pa55\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("METRICSD_OTLP_HEADERS", "Authorization=Bearer%20otlp-s3cret")

	// Two containers of the test's own, in a cgroup tree it made: the
	// host's other containers come and go while the test runs.
	tr := rttest.NewTree(t)
	ids := map[string]bool{}
	for i := 0; i < 2; i++ {
		id := fmt.Sprintf("%064x", 0xbeef0+i)
		tr.Spawn("docker/" + id)
		ids[id] = true
	}

	before := time.Now()
	code, out, errOut := runArgs(t, "-once", "-listen", "", "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-format", "json",
		"-sink", "stdout", "-sink", "remotewrite", "-sink", "otlp",
		"-remotewrite-url", vm.WriteURL, "-remotewrite-user", "metricsd", "-remotewrite-password-file", pwFile,
		"-otlp-url", rcv.MetricsURL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}

	// The number of containers in the snapshot: the collector's own point
	// of the JSON lines.
	containers := -1
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p struct {
			Name   string
			Fields map[string]float64
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Name == "metricsd" {
			containers = int(p.Fields["containers"])
		}
	}
	if containers != len(ids) {
		t.Fatalf("the JSON lines' metricsd point says %d containers, want %d:\n%s", containers, len(ids), out)
	}

	host, _ := os.Hostname()
	at := time.Now()
	ctx := t.Context()
	if err := vm.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// VictoriaMetrics makes a new series searchable within a second or
	// so of a force_flush.
	var self []sinktest.Sample
	sinktest.Poll(10*time.Second, func() bool {
		self, err = vm.QueryAt(ctx, `metricsd_containers`, at)
		return err != nil || len(self) > 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(self) != 1 || self[0].Metric["job"] != "metricsd" || self[0].Metric["instance"] != host {
		t.Fatalf("metricsd_containers in VictoriaMetrics: %+v, want one series with job metricsd and instance %s", self, host)
	}
	if int(self[0].Value) != containers {
		t.Errorf("VictoriaMetrics: metricsd_containers %v, the JSON lines %d", self[0].Value, containers)
	}
	mem, err := vm.QueryAt(ctx, `container_memory_usage_bytes`, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mem {
		if !ids[strings.TrimPrefix(m.Metric["id"], tr.Base+"/docker/")] && !ids[m.Metric["id"]] {
			t.Errorf("VictoriaMetrics: a series of another container: %v", m.Metric)
		}
	}
	if len(mem) != len(ids) {
		t.Errorf("VictoriaMetrics: %d containers' memory, want %d: %+v", len(mem), len(ids), mem)
	}

	reqs, err := rcv.Received(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resContainers, selfRes := 0, 0
	for _, r := range reqs {
		for _, rm := range r.ResourceMetrics {
			if id, ok := sinktest.Attr(rm.Resource.Attributes, "container.id"); ok {
				resContainers++
				if !ids[id] {
					t.Errorf("OTLP receiver: container %q is not the test's", id)
				}
			} else if n, _ := sinktest.Attr(rm.Resource.Attributes, "service.name"); n == "metricsd" {
				selfRes++
			}
			if h, _ := sinktest.Attr(rm.Resource.Attributes, "host.name"); h != host {
				t.Errorf("resource without host.name %s", host)
			}
		}
	}
	if resContainers != containers || selfRes != 1 {
		t.Errorf("OTLP receiver: %d containers and %d collector resources, want %d and 1", resContainers, selfRes, containers)
	}
	hs, err := rcv.Headers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if fmt.Sprint(h["Authorization"]) != "[Bearer otlp-s3cret]" {
			t.Errorf("OTLP request headers %v, want the Authorization from $METRICSD_OTLP_HEADERS", h)
		}
	}
	t.Logf("%d containers in all three sinks (%v)", containers, time.Since(before).Round(time.Millisecond))
}

// TestSecretNotInProc runs the daemon as a process of its own (the test
// binary playing it), its remote_write password in a -remotewrite-password-file,
// and once a request has carried that password, reads the daemon's
// /proc/<pid>/cmdline and /proc/<pid>/environ (what ps and anyone with
// ptrace access to it see), and those of any child: the password is in
// neither. The daemon may re-execute itself (cgroupns_linux.go: into the
// host's cgroup namespace, with its arguments and environment), so what
// /proc shows is what the daemon chose, not only what the test passed.
// The receiver is an httptest server that records the Authorization
// header: it is only a witness that the file's password is in use
// (TestPushSinks delivers with the same flags to a real VictoriaMetrics).
func TestSecretNotInProc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup")
	}
	const password = "pa55-5ecret-in-file"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "rw-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("metricsd:"+password))

	tr := rttest.NewTree(t)
	tr.Spawn("docker/" + fmt.Sprintf("%064x", 0x5ec0))
	cmd := exec.Command(os.Args[0], "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-interval", "200ms", "-net", "none", "-listen", "",
		"-sink", "remotewrite", "-remotewrite-url", srv.URL+"/api/v1/write", "-remotewrite-batch", "1",
		"-remotewrite-user", "metricsd", "-remotewrite-password-file", pwFile)
	cmd.Env = append(os.Environ(), "METRICSD_TEST_DAEMON=1")
	var errOut rttest.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	used := sinktest.Poll(20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(auths, wantAuth)
	})
	if !used {
		mu.Lock()
		t.Fatalf("no request with the file's password (Authorization %q)\n%s", auths, errOut.String())
	}
	pids := []int{cmd.Process.Pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), password) {
				t.Errorf("/proc/%d/%s holds the password: %q", pid, f, b)
			}
			// It is the daemon's own, not the test's from before the exec.
			if f == "cmdline" && pid == cmd.Process.Pid && !strings.Contains(string(b), "-remotewrite-password-file\x00"+pwFile) {
				t.Errorf("/proc/%d/cmdline is not the daemon's: %q", pid, b)
			}
		}
	}
}

// TestSecrets: a secret comes from its flag, its -file or its environment
// variable, in that order; a flag and a file both is an error, as are a
// file that cannot be read and a remote_write sink without a URL or with
// a wrong header.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "token")
	os.WriteFile(f, []byte("from-file\r\n"), 0o600)
	t.Setenv("METRICSD_X", "from-env")
	for _, c := range []struct {
		flag, file, want string
	}{
		{"", "", "from-env"},
		{"", f, "from-file"},
		{"from-flag", "", "from-flag"},
	} {
		s := &secret{name: "x", env: "METRICSD_X", flag: c.flag, file: c.file}
		if err := s.resolve(); err != nil || s.value != c.want {
			t.Errorf("%+v: %q %v, want %q", c, s.value, err, c.want)
		}
	}
	for _, s := range []*secret{
		{name: "x", flag: "a", file: f},
		{name: "x", file: filepath.Join(dir, "missing")},
	} {
		if err := s.resolve(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	for _, args := range [][]string{
		{"-sink", "remotewrite"},
		{"-sink", "remotewrite", "-remotewrite-url", "http://127.0.0.1:1/api/v1/write", "-remotewrite-headers", "novalue"},
		{"-sink", "remotewrite", "-remotewrite-url", "http://127.0.0.1:1/api/v1/write", "-remotewrite-bearer-token", "t", "-remotewrite-bearer-token-file", f},
		{"-sink", "otlp", "-otlp-url", "127.0.0.1:4318"},
		{"-influx-token-file", filepath.Join(dir, "missing")},
	} {
		code, _, errOut := runArgs(t, args...)
		if code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, errOut)
		}
	}
}
