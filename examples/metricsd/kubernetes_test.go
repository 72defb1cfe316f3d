package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestKubernetesFlags runs the daemon once against the test dockerd and
// containerd (real daemons, no kubelet) with containers that carry a
// kubelet's io.kubernetes.* labels: a would-be kube-apiserver of
// kube-system and a would-be pod sandbox. Without the flags their labels
// are not identity (each is reported under its own name, with no pod tag,
// the sandbox included); with -docker-kubernetes, and with
// -containerd-kubernetes-namespaces naming the test's containerd
// namespace, the workload is reported as kube-apiserver of its pod and the
// sandbox is left out, as a cri-dockerd or CRI node needs. The daemon once
// had no way to ask for either: the options existed only in the library.
func TestKubernetesFlags(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	sandbox := []string{runtime.LabelDockerType + "=podsandbox", runtime.LabelCRIKind + "=sandbox",
		runtime.LabelPodName + "=kube-apiserver-node1", runtime.LabelPodNamespace + "=kube-system", runtime.LabelPodUID + "=0b6e"}
	workload := []string{runtime.LabelDockerType + "=container", runtime.LabelCRIKind + "=container",
		runtime.LabelContainerName + "=kube-apiserver",
		runtime.LabelPodName + "=kube-apiserver-node1", runtime.LabelPodNamespace + "=kube-system", runtime.LabelPodUID + "=0b6e"}
	tag := rttest.Name("k8s")
	dSandbox, dWork := tag+"-dsb", tag+"-dwork"
	dSandboxID := rttest.DockerRun(t, dSandbox, append(sandbox, "run="+tag))
	dWorkID := rttest.DockerRun(t, dWork, append(workload, "run="+tag))
	ns := tag + "-ns"
	cSandbox, cWork := tag+"-csb", tag+"-cwork"
	rttest.CtrRun(t, ns, cSandbox, append(sandbox, "run="+tag))
	rttest.CtrRun(t, ns, cWork, append(workload, "run="+tag))

	// reported maps each of this test's containers found in the output,
	// by ID, to its container_cpu point's tags.
	reported := func(args ...string) map[string]map[string]string {
		t.Helper()
		args = append([]string{"-once", "-format", "json", "-net", "none", "-labels", "run"}, args...)
		code, out, errOut := runArgs(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		got := map[string]map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var p point
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatalf("not a JSON point: %v: %q", err, sc.Text())
			}
			if p.Name == "container_cpu" && p.Tags["container_label_run"] == tag {
				got[p.Tags["id"]] = p.Tags
			}
		}
		return got
	}
	plain := func(how string, got map[string]map[string]string, id, name string) {
		t.Helper()
		tags, ok := got[id]
		if !ok {
			t.Errorf("%s: %s not reported (hidden by its labels): %v", how, name, got)
			return
		}
		if tags["name"] != name || tags["pod"] != "" || tags["namespace"] != "" {
			t.Errorf("%s: %s reported as name %q pod %q namespace %q, want its own name and no pod", how, name, tags["name"], tags["pod"], tags["namespace"])
		}
	}
	pod := func(how string, got map[string]map[string]string, sandboxID, workID string) {
		t.Helper()
		if _, ok := got[sandboxID]; ok {
			t.Errorf("%s: the pod sandbox is reported", how)
		}
		tags, ok := got[workID]
		if !ok {
			t.Fatalf("%s: the workload is not reported: %v", how, got)
		}
		if tags["name"] != "kube-apiserver" || tags["pod"] != "kube-apiserver-node1" || tags["namespace"] != "kube-system" {
			t.Errorf("%s: name %q pod %q namespace %q, want kube-apiserver of kube-system/kube-apiserver-node1", how, tags["name"], tags["pod"], tags["namespace"])
		}
	}

	docker := []string{"-runtime", "docker", "-docker-host", v[0]}
	got := reported(docker...)
	plain("docker", got, dSandboxID, dSandbox)
	plain("docker", got, dWorkID, dWork)
	pod("-docker-kubernetes", reported(append(docker, "-docker-kubernetes")...), dSandboxID, dWorkID)

	containerd := []string{"-runtime", "containerd", "-containerd-address", v[2]}
	got = reported(containerd...)
	plain("containerd", got, cSandbox, cSandbox)
	plain("containerd", got, cWork, cWork)
	pod("-containerd-kubernetes-namespaces", reported(append(containerd, "-containerd-kubernetes-namespaces", "k8s.io,"+ns)...), cSandbox, cWork)

	// -runtime auto with both endpoints given opens both adapters with
	// the flags' options.
	auto := []string{"-runtime", "auto", "-docker-host", v[0], "-containerd-address", v[2]}
	got = reported(auto...)
	plain("auto", got, dWorkID, dWork)
	plain("auto", got, cWork, cWork)
	got = reported(append(auto, "-docker-kubernetes", "-containerd-kubernetes-namespaces", ns)...)
	pod("auto -docker-kubernetes", got, dSandboxID, dWorkID)
	pod("auto -containerd-kubernetes-namespaces", got, cSandbox, cWork)
}
