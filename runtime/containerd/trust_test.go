package containerd

import (
	"context"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestKubernetesTrust: real containerd. The same Kubernetes labels (a pod
// sandbox; a workload claiming to be kube-apiserver of kube-system) are
// identity in the CRI's namespace, k8s.io, and mere labels in any other:
// there the would-be sandbox is listed and the would-be kube-apiserver keeps
// its own name, without a pod. Both once took what they claimed in every
// namespace. WithKubernetesNamespaces("*") trusts every namespace.
func TestKubernetesTrust(t *testing.T) {
	rttest.Lock(t, false)
	d := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	other := rttest.Name("plain")
	sandboxLabels := []string{runtime.LabelCRIKind + "=sandbox", runtime.LabelPodName + "=x", runtime.LabelPodNamespace + "=default", runtime.LabelPodUID + "=u1"}
	poserLabels := []string{runtime.LabelCRIKind + "=container", runtime.LabelContainerName + "=kube-apiserver",
		runtime.LabelPodName + "=kube-apiserver-node1", runtime.LabelPodNamespace + "=kube-system", runtime.LabelPodUID + "=u2"}
	sb, poser := rttest.Name("sb"), rttest.Name("poser")
	for _, ns := range []string{other, KubernetesNamespace} {
		rttest.CtrRun(t, ns, sb, sandboxLabels)
		rttest.CtrRun(t, ns, poser, poserLabels)
	}
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := find(cs, other, sb); !ok || c.Pod != nil || c.Name != sb {
		t.Errorf("%s/%s: %+v (listed %v), want listed under its ID, no pod", other, sb, c, ok)
	}
	if c, ok := find(cs, other, poser); !ok || c.Pod != nil || c.Name != poser {
		t.Errorf("%s/%s: %+v (listed %v), want listed under its ID, no pod", other, poser, c, ok)
	}
	if _, ok := find(cs, KubernetesNamespace, sb); ok {
		t.Errorf("the sandbox in %s is listed", KubernetesNamespace)
	}
	if c, ok := find(cs, KubernetesNamespace, poser); !ok || c.Pod == nil || c.Name != "kube-apiserver" || c.Pod.Namespace != "kube-system" {
		t.Errorf("%s/%s: %+v (listed %v), want its Kubernetes identity", KubernetesNamespace, poser, c, ok)
	}
	all := connect(t, WithKubernetesNamespaces("*"))
	cs, err = all.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, other, sb); ok {
		t.Errorf("WithKubernetesNamespaces(*): the sandbox in %s is listed", other)
	}
	if c, ok := find(cs, other, poser); !ok || c.Pod == nil || c.Name != "kube-apiserver" {
		t.Errorf("WithKubernetesNamespaces(*): %s/%s: %+v", other, poser, c)
	}
}
