package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// The deployment files this package's tests check (paths from the package
// directory, where go test runs).
const (
	unitPath    = "../../deploy/systemd/metricsd.service"
	buildScript = "../../deploy/docker/build.sh"
)

var (
	daemonOnce sync.Once
	daemonBin  string
	daemonErr  error
)

// daemonBinary builds the daemon once per test process, static as it is
// deployed, and returns its path.
func daemonBinary(t *testing.T) string {
	t.Helper()
	daemonOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mdbin")
		if err != nil {
			daemonErr = err
			return
		}
		daemonBin = filepath.Join(dir, "metricsd")
		cmd := exec.Command("go", "build", "-o", daemonBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			daemonErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if daemonErr != nil {
		t.Fatal(daemonErr)
	}
	return daemonBin
}

// unitSettings returns the values of a key in deploy/systemd's unit, in
// order (a key may be given several times).
func unitSettings(t *testing.T, key string) []string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// unitCaps is the unit's CapabilityBoundingSet, as setpriv spells
// capabilities ("sys_admin").
func unitCaps(t *testing.T) []string {
	t.Helper()
	sets := unitSettings(t, "CapabilityBoundingSet")
	if len(sets) != 1 {
		t.Fatalf("%s: %d CapabilityBoundingSet lines, want 1", unitPath, len(sets))
	}
	var caps []string
	for _, c := range strings.Fields(sets[0]) {
		caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	slices.Sort(caps)
	return caps
}

// capRun is one run of the daemon with -once under setpriv: which
// capabilities it kept (bounding set, and ambient ones when not root), its
// exit code, and what it reported of the container named name.
type capRun struct {
	code   int
	cgroup bool // a container_cpu point for it
	net    bool // a container_net point for its lo
	errOut string
}

// runWithCaps runs bin -once with only caps (setpriv spelling) in its
// bounding set; as uid (0 for root), with them ambient when uid is not 0.
func runWithCaps(t *testing.T, bin string, uid int, caps []string, name string, args ...string) capRun {
	t.Helper()
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	sp := []string{"--bounding-set", set, "--inh-caps", "-all", "--no-new-privs"}
	if uid != 0 {
		list := strings.TrimPrefix(strings.ReplaceAll(set, "-all,", ""), "-all")
		if list == "" {
			list = "-all"
		}
		sp = []string{"--reuid", fmt.Sprint(uid), "--regid", fmt.Sprint(uid), "--clear-groups",
			"--bounding-set", set, "--inh-caps", list, "--ambient-caps", list}
	}
	cmd := exec.Command("setpriv", append(append(sp, "--", bin, "-once", "-format", "json", "-log-level", "debug"), args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := capRun{errOut: errOut.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("setpriv %v: %v", sp, err)
		}
		r.code = ee.ExitCode()
	}
	pts := parsePoints(t, out.String())[name]
	r.cgroup = pts["container_cpu"] != nil
	r.net = pts["container_net/lo"] != nil
	return r
}

// TestCapabilities measures which capabilities the daemon needs, running
// it with -once under setpriv with capability sets cut down, against a
// container of the test dockerd and one of the test containerd, and checks
// the answer is the unit's CapabilityBoundingSet (which deploy/kubernetes's
// test holds the DaemonSet to, and the README's docker run adds):
//
//   - root with the unit's set (CAP_SYS_ADMIN, CAP_SYS_PTRACE) reads the
//     containers' cgroups and network namespaces;
//   - without CAP_SYS_PTRACE, opening /proc/<pid>/ns/net of the container's
//     process fails (EACCES: the process has capabilities the daemon lacks,
//     so ptrace access is refused), without CAP_SYS_ADMIN setns(2) fails
//     (EPERM); either way no namespace is read: the container is reported
//     with its cgroup figures, its network unavailable, and -once exits 1
//     (the snapshot is incomplete);
//   - root with no capability at all still reads cgroups and both runtime
//     sockets (-net none): root owns them, so CAP_DAC_READ_SEARCH and
//     CAP_DAC_OVERRIDE add nothing;
//   - as another user (nobody) with the unit's set ambient, the runtime
//     socket (mode 0660) refuses the connection, and CAP_DAC_READ_SEARCH
//     does not help (connecting needs write permission): only
//     CAP_DAC_OVERRIDE, or the socket's group, would.
func TestCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop capabilities with setpriv")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	unit := unitCaps(t)
	if want := []string{"sys_admin", "sys_ptrace"}; !slices.Equal(unit, want) {
		t.Errorf("the unit's CapabilityBoundingSet is %v; this test measured %v", unit, want)
	}
	bin := daemonBinary(t)
	name := rttest.Name("caps")
	rttest.DockerRun(t, name, nil)
	ctrName := rttest.Name("capsc")
	rttest.CtrRun(t, "metricsd-caps", ctrName, nil)
	docker := []string{"-runtime", "docker", "-docker-host", v[0]}
	containerd := []string{"-runtime", "containerd", "-containerd-address", v[2]}

	without := func(c string) []string {
		return slices.DeleteFunc(slices.Clone(unit), func(x string) bool { return x == c })
	}
	for _, tc := range []struct {
		what        string
		uid         int
		caps        []string
		rt          []string
		name        string
		net         bool
		code        int    // 2: no start
		cgroup, lo  bool   // reported
		errContains string // in the log
		cgroupAny   bool
	}{
		{"root, the unit's set, docker", 0, unit, docker, name, true, 0, true, true, "", false},
		{"root, the unit's set, containerd", 0, unit, containerd, ctrName, true, 0, true, true, "", false},
		{"root, the unit's set + DAC_READ_SEARCH", 0, append(slices.Clone(unit), "dac_read_search"), docker, name, true, 0, true, true, "", false},
		{"root without SYS_PTRACE", 0, without("sys_ptrace"), docker, name, true, 1, true, false, "ns/net: permission denied", false},
		{"root without SYS_ADMIN", 0, without("sys_admin"), docker, name, true, 1, true, false, "setns: operation not permitted", false},
		{"root, no capability, -net none, docker", 0, nil, docker, name, false, 0, true, false, "", false},
		{"root, no capability, -net none, containerd", 0, nil, containerd, ctrName, false, 0, true, false, "", false},
		{"nobody, the unit's set", 65534, unit, docker, name, true, 2, false, false, "permission denied", false},
		{"nobody, the unit's set + DAC_READ_SEARCH", 65534, append(slices.Clone(unit), "dac_read_search"), docker, name, true, 2, false, false, "permission denied", false},
		{"nobody, the unit's set + DAC_OVERRIDE", 65534, append(slices.Clone(unit), "dac_override"), docker, name, true, 0, true, true, "", false},
	} {
		args := slices.Clone(tc.rt)
		if !tc.net {
			args = append(args, "-net", "none")
		}
		r := runWithCaps(t, bin, tc.uid, tc.caps, tc.name, args...)
		t.Logf("%-42s exit %d, cgroup %v, net %v", tc.what, r.code, r.cgroup, r.net)
		if r.code != tc.code || (r.cgroup != tc.cgroup && !tc.cgroupAny) || r.net != tc.lo || !strings.Contains(r.errOut, tc.errContains) {
			t.Errorf("%s: exit %d, cgroup %v, net %v; want exit %d, cgroup %v, net %v and %q in the log:\n%s",
				tc.what, r.code, r.cgroup, r.net, tc.code, tc.cgroup, tc.lo, tc.errContains, r.errOut)
		}
	}
}

// syscallFilter expands the unit's SystemCallFilter lines, applied in
// order as systemd does (the first an allow list; a later "~" line removes,
// a later plain one adds), into the set of allowed system calls, using
// systemd-analyze syscall-filter for the @groups.
func syscallFilter(t *testing.T) map[string]bool {
	t.Helper()
	var expand func(name string, seen map[string]bool) []string
	expand = func(name string, seen map[string]bool) []string {
		if !strings.HasPrefix(name, "@") {
			return []string{name}
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		out, err := exec.Command("systemd-analyze", "syscall-filter", name).Output()
		if err != nil {
			t.Fatalf("systemd-analyze syscall-filter %s: %v", name, err)
		}
		var calls []string
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" || l == name || strings.HasPrefix(l, "#") {
				continue
			}
			calls = append(calls, expand(strings.Fields(l)[0], seen)...)
		}
		return calls
	}
	allowed := map[string]bool{}
	lines := unitSettings(t, "SystemCallFilter")
	if len(lines) == 0 || strings.HasPrefix(lines[0], "~") {
		t.Fatalf("%s: SystemCallFilter must start with an allow list, got %q", unitPath, lines)
	}
	for _, l := range lines {
		deny := strings.HasPrefix(l, "~")
		for _, n := range strings.Fields(strings.TrimPrefix(l, "~")) {
			for _, c := range expand(n, map[string]bool{}) {
				allowed[c] = !deny
			}
		}
	}
	for c, ok := range allowed {
		if !ok {
			delete(allowed, c)
		}
	}
	return allowed
}

// TestSystemdUnit checks deploy/systemd/metricsd.service by machine:
//
//   - systemd-analyze verify accepts it without a word (it needs no systemd
//     running: only the unit file and the binary it names, here rewritten
//     to a real one);
//   - systemd-analyze security --offline rates its exposure at most 2.5;
//   - the daemon, run for a few seconds under strace the way the unit runs
//     it (its default arguments, the unit's capability bounding set, no new
//     privileges) on the test dockerd with a container, every network part
//     and its /metrics scraped, makes only system calls the unit's
//     SystemCallFilter allows, opens only sockets of the
//     RestrictAddressFamilies families, enters only network namespaces
//     (RestrictNamespaces=net) and creates none, opens no file for writing
//     (ProtectSystem=strict), and maps no memory writable and executable at
//     once (MemoryDenyWriteExecute).
func TestSystemdUnit(t *testing.T) {
	for _, tool := range []string{"systemd-analyze", "strace", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (scripts/test.sh installs systemd, strace and util-linux)", tool)
		}
	}
	bin := daemonBinary(t)
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	const execPath = "/usr/local/bin/metricsd"
	if !strings.Contains(string(unit), "ExecStart="+execPath+" ") {
		t.Fatalf("%s: ExecStart does not run %s", unitPath, execPath)
	}
	dir := t.TempDir()
	local := filepath.Join(dir, "metricsd.service")
	if err := os.WriteFile(local, []byte(strings.ReplaceAll(string(unit), execPath, bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", local).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=25", local).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security --offline: exposure above 2.5 (%v):\n%s", err, out)
	} else if i := strings.LastIndex(string(out), "Overall exposure level"); i >= 0 {
		t.Logf("systemd-analyze security: %s", strings.TrimSpace(string(out[i:])))
	}

	if os.Geteuid() != 0 {
		t.Skip("the strace run needs root (namespaces of other processes)")
	}
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage)
	rttest.Lock(t, false)
	rttest.DockerRun(t, rttest.Name("unit"), nil)
	envArgs := unitSettings(t, "Environment")
	if len(envArgs) != 1 || !strings.HasPrefix(envArgs[0], `"METRICSD_ARGS=`) {
		t.Fatalf("%s: Environment = %q, want one METRICSD_ARGS", unitPath, envArgs)
	}
	args := strings.Fields(strings.Trim(strings.TrimPrefix(envArgs[0], `"METRICSD_ARGS=`), `"`))
	port, err := sinktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	args = append(args, "-listen", listen, "-interval", "500ms", "-net", "all", "-runtime", "docker", "-docker-host", v[0])
	bounding := "-all"
	for _, c := range unitCaps(t) {
		bounding += ",+" + c
	}
	trace := filepath.Join(dir, "strace.txt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "strace", append([]string{"-f", "-qq", "-o", trace,
		"setpriv", "--bounding-set", bounding, "--inh-caps", "-all", "--no-new-privs", "--", bin}, args...)...)
	var errOut rttest.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + listen
	waitStatus(t, base+"/readyz", 200, "ok", 30*time.Second)
	for range 3 {
		if code, body := get(base + "/metrics"); code != 200 || !strings.Contains(body, "container_network_receive_bytes_total") {
			t.Errorf("/metrics under strace: %d, %.200q", code, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// strace -o FILE PROG blocks fatal signals: stop the daemon itself,
	// its child (setpriv exec'd it).
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	var daemon int
	if _, serr := fmt.Sscan(string(kids), &daemon); err != nil || serr != nil {
		cmd.Process.Kill()
		t.Fatalf("the daemon under strace: children %q: %v %v", kids, err, serr)
	}
	if err := syscall.Kill(daemon, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("strace metricsd: %v\n%s", err, errOut.String())
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	allowed := syscallFilter(t)
	families := map[string]bool{}
	for _, f := range unitSettings(t, "RestrictAddressFamilies") {
		for _, fam := range strings.Fields(f) {
			families[fam] = true
		}
	}
	callRE := regexp.MustCompile(`^\d+\s+([a-z0-9_]+)\(`)
	socketRE := regexp.MustCompile(`\bsocket\((AF_[A-Z0-9]+)`)
	// No closing parenthesis: strace -f splits a call another thread
	// interrupts into "setns(12, CLONE_NEWNET <unfinished ...>".
	setnsRE := regexp.MustCompile(`\bsetns\(\d+, ([A-Z_|0-9]+)`)
	writeOpenRE := regexp.MustCompile(`\bopen(at2?)?\(.*\b(O_WRONLY|O_RDWR|O_CREAT)\b`)
	wxRE := regexp.MustCompile(`\b(mmap|mprotect)\(.*(PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE|PROT_READ\|PROT_WRITE\|PROT_EXEC)`)
	calls := map[string]int{}
	setns := 0
	started := false // setpriv's own calls come before it execs the daemon
	for _, l := range strings.Split(string(b), "\n") {
		if !started {
			started = strings.Contains(l, `execve("`+bin+`"`)
			continue
		}
		if m := callRE.FindStringSubmatch(l); m != nil {
			calls[m[1]]++
		}
		if m := socketRE.FindStringSubmatch(l); m != nil && !families[m[1]] {
			t.Errorf("socket family %s, not in RestrictAddressFamilies: %s", m[1], l)
		}
		if m := setnsRE.FindStringSubmatch(l); m != nil {
			setns++
			if m[1] != "CLONE_NEWNET" {
				t.Errorf("setns with %s (RestrictNamespaces=net): %s", m[1], l)
			}
		}
		if strings.Contains(l, "unshare(") || (strings.Contains(l, "clone") && strings.Contains(l, "CLONE_NEW")) {
			t.Errorf("a namespace created (RestrictNamespaces=net allows none): %s", l)
		}
		// The one write: registering for a v1 group's OOM notifications
		// (a line to its cgroup.event_control). Under the unit,
		// ProtectControlGroups refuses it, and the daemon reads OOM kills
		// at each snapshot instead (said once at Warn).
		if writeOpenRE.MatchString(l) && !strings.Contains(l, `"cgroup.event_control", O_WRONLY|`) {
			t.Errorf("a file opened for writing (ProtectSystem=strict): %s", l)
		}
		if wxRE.MatchString(l) {
			t.Errorf("memory mapped writable and executable (MemoryDenyWriteExecute): %s", l)
		}
	}
	if !started {
		t.Fatalf("no execve of %s in the trace", bin)
	}
	var denied []string
	for c := range calls {
		if !allowed[c] {
			denied = append(denied, c)
		}
	}
	slices.Sort(denied)
	if len(denied) > 0 {
		t.Errorf("system calls the unit's SystemCallFilter does not allow: %v", denied)
	}
	if setns == 0 {
		t.Errorf("no setns in the trace: the daemon entered no namespace, so the run proves little")
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "setns") || strings.Contains(l, "/ns/net") {
				t.Logf("trace: %s", l)
			}
		}
	}
	t.Logf("%d distinct system calls in the trace, %d setns", len(calls), setns)
}
