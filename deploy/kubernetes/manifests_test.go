package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest document.
type object struct {
	file string
	kind string
	obj  any
}

// load decodes every YAML document of every manifest in this directory
// strictly (sigs.k8s.io/yaml: an unknown or duplicated field is an error)
// into the k8s.io/api type of its apiVersion and kind; a kind this test
// does not know fails.
func load(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			var tm struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				obj = new(corev1.Namespace)
			case "apps/v1 DaemonSet":
				obj = new(appsv1.DaemonSet)
			default:
				t.Fatalf("%s #%d: %s %s: a kind this test does not check", f, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s #%d (%s): strict decoding: %v", f, i, tm.Kind, err)
			}
			out = append(out, object{file: f, kind: tm.Kind, obj: obj})
		}
	}
	return out
}

func daemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	var ds []*appsv1.DaemonSet
	for _, o := range load(t) {
		if d, ok := o.obj.(*appsv1.DaemonSet); ok {
			ds = append(ds, d)
		}
	}
	if len(ds) != 1 {
		t.Fatalf("%d DaemonSets, want 1", len(ds))
	}
	return ds[0]
}

// imageName is the image deploy/docker/build.sh tags by default:
// metricsd/metricsd:<the first version heading of CHANGELOG.md>.
func imageName(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docker/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^image=\$\{IMAGE:-([^}$]+)\$version\}$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("../docker/build.sh: no image=${IMAGE:-<name>:$version} line")
	}
	cl, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	v := regexp.MustCompile(`(?m)^## ([0-9][0-9.]*)`).FindSubmatch(cl)
	if v == nil {
		t.Fatal("CHANGELOG.md: no version heading")
	}
	return string(m[1]) + string(v[1])
}

// unitCaps is the CapabilityBoundingSet of deploy/systemd's unit, in the
// Kubernetes spelling (SYS_ADMIN): what examples/metricsd's TestCapabilities
// measured the daemon needs.
func unitCaps(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../systemd/metricsd.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindAllSubmatch(b, -1)
	if len(m) != 1 {
		t.Fatalf("the unit has %d CapabilityBoundingSet lines, want 1", len(m))
	}
	var caps []string
	for _, c := range strings.Fields(string(m[0][1])) {
		caps = append(caps, strings.TrimPrefix(c, "CAP_"))
	}
	slices.Sort(caps)
	return caps
}

// TestManifests decodes every manifest strictly and checks what the
// DaemonSet must have: the host's PID namespace; every host path mounted
// read-only, the node's /proc and /sys/fs/cgroup beneath the image's
// -host-root /host and containerd's socket where -runtime containerd looks;
// root with every capability dropped but exactly those the systemd unit
// keeps, no privilege escalation, a read-only root file system and the
// runtime's seccomp profile; readiness on /readyz and liveness on /healthz
// at the metrics port; requests and limits for CPU and memory; the scrape
// annotations naming that port and /metrics with -sink prometheus on; no
// service account token (it calls no Kubernetes API, so there is no RBAC);
// the image deploy/docker/build.sh tags; and the namespace it lives in.
func TestManifests(t *testing.T) {
	objs := load(t)
	namespaces := map[string]bool{}
	for _, o := range objs {
		if n, ok := o.obj.(*corev1.Namespace); ok {
			namespaces[n.Name] = true
		}
	}
	ds := daemonSet(t)
	if !namespaces[ds.Namespace] {
		t.Errorf("DaemonSet namespace %q is not among the manifests' namespaces %v", ds.Namespace, namespaces)
	}
	spec := ds.Spec.Template.Spec
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels %v", k, v, ds.Spec.Template.Labels)
		}
	}
	if !spec.HostPID {
		t.Error("hostPID is not set: container PIDs from containerd are host PIDs")
	}
	if spec.HostNetwork || spec.HostIPC {
		t.Error("hostNetwork or hostIPC set: not needed")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false: the daemon calls no Kubernetes API")
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("%d containers, %d init containers; want 1, 0", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	if want := imageName(t); c.Image != want {
		t.Errorf("image %q, want %q (what deploy/docker/build.sh tags)", c.Image, want)
	}

	// Host paths: all read-only; the three the daemon reads.
	hostPaths := map[string]string{} // volume -> host path
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
			if v.HostPath.Type == nil || *v.HostPath.Type == corev1.HostPathUnset {
				t.Errorf("hostPath volume %s has no type: a missing path would be made, empty", v.Name)
			}
		}
	}
	mounted := map[string]string{} // host path -> mount path
	for _, m := range c.VolumeMounts {
		hp, ok := hostPaths[m.Name]
		if !ok {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("host path %s is mounted at %s writable", hp, m.MountPath)
		}
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			t.Errorf("host path %s mounted with bidirectional propagation", hp)
		}
		mounted[hp] = m.MountPath
	}
	for hp, want := range map[string]string{
		"/proc":                           "/host/proc",
		"/sys/fs/cgroup":                  "/host/sys/fs/cgroup",
		"/run/containerd/containerd.sock": "/run/containerd/containerd.sock",
	} {
		if mounted[hp] != want {
			t.Errorf("host path %s mounted at %q, want %q", hp, mounted[hp], want)
		}
	}
	if len(mounted) != 3 {
		t.Errorf("host paths mounted: %v; want those three only", mounted)
	}

	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("no securityContext with capabilities")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("runAsUser is not 0: as another user the containerd socket refuses the daemon")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged: every capability and device")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("seccompProfile is not RuntimeDefault")
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	var add []string
	for _, a := range sc.Capabilities.Add {
		add = append(add, string(a))
	}
	slices.Sort(add)
	if want := unitCaps(t); !slices.Equal(add, want) {
		t.Errorf("capabilities add %v, want the systemd unit's bounding set %v", add, want)
	}

	// The port, the probes and the scrape annotations agree.
	var port int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if port == 0 {
		t.Fatal("no container port named metrics")
	}
	probe := func(what string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP probe", what)
			return
		}
		if p.HTTPGet.Path != path || (p.HTTPGet.Port != intstr.FromString("metrics") && p.HTTPGet.Port != intstr.FromInt32(port)) {
			t.Errorf("%s: %s on %s, want %s on the metrics port", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
		}
	}
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	ann := ds.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != fmt.Sprint(port) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v, want scrape true, port %d, path /metrics", ann, port)
	}
	if !slices.Contains(c.Args, "-sink=prometheus") {
		t.Errorf("args %v: no -sink=prometheus, so no /metrics to scrape", c.Args)
	}
	if !slices.Contains(c.Args, "-runtime=containerd") {
		t.Errorf("args %v: want -runtime=containerd (the socket mounted)", c.Args)
	}

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("%s: request %v, limit %v; want both", r, okReq, okLim)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: request %s above limit %s", r, req.String(), lim.String())
		}
	}
	// The measured cost (docs/BENCHMARKS.md): ~20 MB resident for 33
	// containers; the limit must leave room for more.
	if mem := c.Resources.Limits[corev1.ResourceMemory]; mem.Value() < 64<<20 {
		t.Errorf("memory limit %s: below 64Mi, less than three times the measured 20 MB", mem.String())
	}
}

// dockerHost is the test dockerd (scripts/daemons.sh), or "" with the reason.
func testDaemons(t *testing.T) (dockerHost, containerd, rootfs, cgroupParent string) {
	t.Helper()
	get := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			msg := k + " is not set: run under scripts/test.sh (which starts a test dockerd and containerd)"
			if os.Getenv("CI") == "true" {
				t.Fatal("CI=true: a daemon test may not skip: " + msg)
			}
			t.Skip(msg)
		}
		return v
	}
	return get("METRICSD_TEST_DOCKER_HOST"), get("METRICSD_TEST_CONTAINERD"), get("METRICSD_TEST_ROOTFS"), get("METRICSD_TEST_CGROUP_PARENT")
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// dockerRunArgs translates the DaemonSet's pod and container spec into
// `docker run` flags, as a kubelet with containerd would set the container
// up: the host's PID namespace, a cgroup namespace of its own (what the
// CRI gives an unprivileged container on a cgroup v2 node; here, on a
// cgroup v1 or hybrid host, asked for explicitly), the user, the
// capabilities, no new privileges, the read-only root, the CPU and memory
// limits, the environment (GOMEMLIMIT from limits.memory), every hostPath
// mount read-only (hostPaths maps a host path to the test's own, for
// containerd's socket), and the arguments. The pod network is replaced by
// the host's with -listen on a loopback port, since the test dockerd has
// no bridge.
func dockerRunArgs(t *testing.T, ds *appsv1.DaemonSet, name string, hostPaths map[string]string, listen string) []string {
	t.Helper()
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	args := []string{"run", "-d", "--name", name, "--cgroupns=private", "--network=host"}
	if spec.HostPID {
		args = append(args, "--pid=host")
	}
	sc := c.SecurityContext
	if sc.RunAsUser != nil {
		user := fmt.Sprint(*sc.RunAsUser)
		if sc.RunAsGroup != nil {
			user += fmt.Sprintf(":%d", *sc.RunAsGroup)
		}
		args = append(args, "--user", user)
	}
	for _, d := range sc.Capabilities.Drop {
		args = append(args, "--cap-drop", string(d))
	}
	for _, a := range sc.Capabilities.Add {
		args = append(args, "--cap-add", string(a))
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		args = append(args, "--read-only")
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatal("the translation knows the RuntimeDefault seccomp profile only (docker's default)")
	}
	lim := c.Resources.Limits
	args = append(args, "--memory", fmt.Sprint(lim.Memory().Value()), "--cpus", fmt.Sprintf("%.3f", float64(lim.Cpu().MilliValue())/1000))
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			args = append(args, "-e", e.Name+"="+e.Value)
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			args = append(args, "-e", fmt.Sprintf("%s=%d", e.Name, lim.Memory().Value()))
		default:
			t.Fatalf("env %s: a source the translation does not know", e.Name)
		}
	}
	vols := map[string]*corev1.HostPathVolumeSource{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v.HostPath
	}
	for _, m := range c.VolumeMounts {
		hp := vols[m.Name]
		if hp == nil {
			t.Fatalf("mount %s: not a hostPath volume; the translation knows no other", m.Name)
		}
		src := hp.Path
		if p, ok := hostPaths[src]; ok {
			src = p
		}
		opt := ""
		if m.ReadOnly {
			opt = ":ro"
		}
		args = append(args, "-v", src+":"+m.MountPath+opt)
	}
	args = append(args, c.Image)
	args = append(args, c.Args...)
	return append(args, "-listen="+listen, "-interval=1s")
}

// TestDaemonSetInDocker runs the DaemonSet's container, translated to
// `docker run` (dockerRunArgs), on the test dockerd with the image
// deploy/docker/build.sh builds from this tree and the test containerd's
// socket in place of the node's, and checks that /readyz becomes ready and
// that /metrics reports a container of the test containerd's k8s.io
// namespace by name, with its loopback traffic: the mounts, the two
// capabilities and the user are enough, also from a cgroup namespace of
// its own, inside the memory and CPU limits.
func TestDaemonSetInDocker(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the test daemons, a container sharing the host's PID namespace)")
	}
	host, ctrd, rootfs, parent := testDaemons(t)
	ds := daemonSet(t)

	build := exec.Command("sh", "../docker/build.sh")
	build.Env = append(os.Environ(), "DOCKER_HOST="+host)
	var buildErr bytes.Buffer
	build.Stderr = &buildErr
	out, err := build.Output()
	if err != nil {
		t.Fatalf("../docker/build.sh: %v\n%s", err, buildErr.String())
	}
	if got, want := strings.TrimSpace(string(out)), ds.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(got, "\n"+want) && got != want {
		t.Fatalf("build.sh built %q, the DaemonSet runs %q", got, want)
	}

	// A CRI-like container: namespace k8s.io, its cgroup beneath the test
	// daemons' parent, traffic over its loopback.
	id := fmt.Sprintf("dsjob-%d", time.Now().UnixNano()%1e9)
	cg := parent + "/k8s.io/" + id
	run(t, "ctr", "--address", ctrd, "-n", "k8s.io", "run", "-d", "--cgroup", cg, "--rootfs", rootfs, id,
		"/bin/sh", "-c", `mkdir -p /dev/shm/www && dd if=/dev/zero of=/dev/shm/www/blob bs=1024 count=300 2>/dev/null
httpd -p 127.0.0.1:8080 -h /dev/shm/www
i=0; until wget -q -O /dev/null http://127.0.0.1:8080/blob; do i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.05; done
exec sleep 600`)
	t.Cleanup(func() {
		for _, a := range [][]string{{"task", "kill", "-s", "KILL", id}, {"task", "delete", "-f", id}, {"container", "rm", id}} {
			exec.Command("ctr", append([]string{"--address", ctrd, "-n", "k8s.io"}, a...)...).Run()
		}
	})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	name := fmt.Sprintf("metricsd-ds-%d", time.Now().UnixNano()%1e9)
	args := dockerRunArgs(t, ds, name, map[string]string{"/run/containerd/containerd.sock": ctrd}, listen)
	t.Logf("docker %s", strings.Join(args, " "))
	run(t, "docker", append([]string{"-H", host}, args...)...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "-H", host, "logs", "--tail", "30", name).CombinedOutput()
			t.Logf("the DaemonSet container's log:\n%s", logs)
		}
		exec.Command("docker", "-H", host, "rm", "-f", name).Run()
	})

	get := func(path string) (int, string) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + listen + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cpu := regexp.MustCompile(`(?m)^container_cpu_usage_seconds_total\{[^}]*name="` + regexp.QuoteMeta(id) + `"[^}]*runtime_namespace="k8s.io"[^}]*\} `)
	lo := regexp.MustCompile(`(?m)^container_network_receive_bytes_total\{[^}]*interface="lo"[^}]*name="` + regexp.QuoteMeta(id) + `"[^}]*\} ([0-9.e+]+)$`)
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		code, body := get("/readyz")
		mcode, metrics := get("/metrics")
		var rx float64
		if m := lo.FindStringSubmatch(metrics); m != nil {
			fmt.Sscan(m[1], &rx)
		}
		// The container serves itself 300 KiB over its loopback (busybox
		// httpd and wget) as it starts.
		if code == 200 && mcode == 200 && cpu.MatchString(metrics) && rx >= 300<<10 {
			break
		}
		last = fmt.Sprintf("/readyz %d %q; /metrics %d, %s found: %v, lo received %.0f bytes (want 300 KiB)", code, body, mcode, id, cpu.MatchString(metrics), rx)
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %s", last)
		}
		time.Sleep(time.Second)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}
