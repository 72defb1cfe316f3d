package docker

import (
	"context"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestKubernetesTrust: on a plain Docker (real dockerd, no kubelet), a
// container that labels itself a pod sandbox is not hidden, and one that
// labels itself kube-apiserver of kube-system is reported under its own
// Docker name, without a pod: their io.kubernetes.* labels stay labels.
// Both once took the identity they claimed, in List and in Watch's started
// events alike. WithKubernetes(true), for a Docker a kubelet drives through
// cri-dockerd, takes the labels as identity.
func TestKubernetesTrust(t *testing.T) {
	rttest.Lock(t, false)
	d := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := d.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	defer func() { wcancel(); <-rec.Done() }()
	hiderName, poserName := rttest.Name("hider"), rttest.Name("poser")
	hider := rttest.DockerRun(t, hiderName, []string{runtime.LabelDockerType + "=podsandbox", runtime.LabelPodName + "=x", runtime.LabelPodNamespace + "=default"})
	poser := rttest.DockerRun(t, poserName, []string{runtime.LabelContainerName + "=kube-apiserver",
		runtime.LabelPodName + "=kube-apiserver-node1", runtime.LabelPodNamespace + "=kube-system", runtime.LabelPodUID + "=0b6e"})
	check := func(how string, c runtime.Container, name string) {
		t.Helper()
		if c.Name != name || c.Pod != nil {
			t.Errorf("%s: name %q pod %+v, want %q and no pod", how, c.Name, c.Pod, name)
		}
		if c.Labels[runtime.LabelPodName] == "" {
			t.Errorf("%s: the labels were dropped: %v", how, c.Labels)
		}
	}
	for _, w := range []struct{ id, name string }{{hider, hiderName}, {poser, poserName}} {
		ev := rec.Wait(t, runtime.EventStarted, w.id, 30*time.Second)
		check("Watch", ev.Container, w.name)
	}
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ id, name string }{{hider, hiderName}, {poser, poserName}} {
		c, ok := find(cs, w.id)
		if !ok {
			t.Errorf("List: %s hidden", w.name)
			continue
		}
		check("List", c, w.name)
	}

	// A kubelet-driven Docker, by option.
	k := connect(t, WithKubernetes(true))
	cs, err = k.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find(cs, hider); ok {
		t.Error("WithKubernetes: a pod sandbox is listed")
	}
	if c, ok := find(cs, poser); !ok || c.Name != "kube-apiserver" || c.Pod == nil || c.Pod.Namespace != "kube-system" || c.Pod.Name != "kube-apiserver-node1" {
		t.Errorf("WithKubernetes: %+v (found %v), want the Kubernetes identity", c, ok)
	}
}
