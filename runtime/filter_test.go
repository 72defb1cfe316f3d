package runtime_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/docker"
)

// staticDiscoverer lists fixed containers; the live test below uses the
// real runtimes.
type staticDiscoverer []runtime.Container

func (s staticDiscoverer) Name() string { return "static" }
func (s staticDiscoverer) List(context.Context) ([]runtime.Container, error) {
	return slices.Clone(s), nil
}
func (s staticDiscoverer) Watch(context.Context) (<-chan runtime.Event, error) { return nil, nil }
func (s staticDiscoverer) Close() error                                        { return nil }

// TestFilterRules checks the rule semantics on containers whose names and
// labels hold what a hostile container could choose: regular expression
// metacharacters, newlines, a very long name.
func TestFilterRules(t *testing.T) {
	long := strings.Repeat("a", 1<<16) + "!"
	cs := staticDiscoverer{
		{ID: "1", Name: "web-1", Runtime: "docker", Labels: map[string]string{"tier": "web"}},
		{ID: "2", Name: "web-2", Runtime: "docker", Labels: map[string]string{"tier": "web", "test": ""}},
		{ID: "3", Name: "db", Runtime: "containerd", Namespace: "k8s.io", Labels: map[string]string{"tier": "db", "io.kubernetes.pod.namespace": "kube-system"}},
		{ID: "4", Name: "a.b(c)", Runtime: "containerd", Namespace: "moby"},
		{ID: "5", Name: "x\nweb-9", Runtime: "cgroupfs"},
		{ID: "6", Name: long, Runtime: "cgroupfs"},
		{ID: "7", Name: "star*", Runtime: "docker"},
	}
	for _, tc := range []struct {
		name string
		f    runtime.Filter
		want string // IDs selected
	}{
		{"zero", runtime.Filter{}, "1234567"},
		{"name glob", runtime.Filter{Names: []string{"web-*"}}, "12"},
		{"glob is whole-value, metacharacters literal", runtime.Filter{Names: []string{"a.b(c)", "a.b"}}, "4"},
		{"? is one character", runtime.Filter{Names: []string{"web-?", "d?"}}, "123"},
		{"* spans newlines", runtime.Filter{Names: []string{"*web-9"}}, "5"},
		{"escaped star is literal", runtime.Filter{Names: []string{`star\*`, `web\*`}}, "7"},
		{"long hostile name", runtime.Filter{Names: []string{"*a!"}}, "6"},
		{"exclude name", runtime.Filter{ExcludeNames: []string{"web-*", "*!"}}, "3457"},
		{"label present", runtime.Filter{Labels: []string{"test"}}, "2"},
		{"label value glob", runtime.Filter{Labels: []string{"tier=w*"}}, "12"},
		{"label empty value", runtime.Filter{Labels: []string{"test="}}, "2"},
		{"exclude label", runtime.Filter{ExcludeLabels: []string{"io.kubernetes.pod.namespace=kube-system", "test"}}, "14567"},
		{"runtime", runtime.Filter{Runtimes: []string{"containerd", "cgroupfs"}}, "3456"},
		{"exclude runtime", runtime.Filter{ExcludeRuntimes: []string{"docker"}}, "3456"},
		{"namespace", runtime.Filter{Namespaces: []string{"k8s.io"}}, "3"},
		{"exclude every namespaced container", runtime.Filter{ExcludeNamespaces: []string{"?*"}}, "12567"},
		{"exclude namespace", runtime.Filter{ExcludeNamespaces: []string{"moby"}}, "123567"},
		{"kinds are ANDed, includes of a kind ORed", runtime.Filter{Names: []string{"web-*", "db"}, Runtimes: []string{"docker"}}, "12"},
		{"exclude wins", runtime.Filter{Names: []string{"web-*"}, ExcludeLabels: []string{"test"}}, "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := runtime.NewFiltered(cs, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ids := ""
			for _, c := range got {
				ids += c.ID
			}
			if ids != tc.want {
				t.Errorf("selected %q, want %q", ids, tc.want)
			}
			if tc.f.IsZero() != (tc.name == "zero") {
				t.Errorf("IsZero = %v", tc.f.IsZero())
			}
		})
	}
	for _, bad := range []runtime.Filter{
		{Names: []string{""}},
		{ExcludeNamespaces: []string{""}},
		{Labels: []string{"=web"}},
		{ExcludeLabels: []string{""}},
	} {
		if _, err := runtime.NewFiltered(cs, bad); !errors.Is(err, runtime.ErrBadFilter) {
			t.Errorf("%+v: %v, want ErrBadFilter", bad, err)
		}
	}
}

// TestFilterLive filters real containers of the test dockerd and
// containerd (Docker's and containerd's adapters combined, as Detect
// combines them): List and Watch report exactly the selected ones among
// this test's containers, by name, label, runtime and namespace.
func TestFilterLive(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dk, err := docker.New(ctx, docker.WithHost(v[0]))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := containerd.New(ctx, containerd.WithAddress(v[2]), containerd.WithBackoff(50*time.Millisecond, time.Second))
	if err != nil {
		dk.Close()
		t.Fatal(err)
	}
	all := runtime.NewMulti(dk, ct)
	defer all.Close()

	tag := rttest.Name("flt")
	web := rttest.DockerRun(t, tag+"-web", []string{"tier=web", "run=" + tag})
	dbID := rttest.DockerRun(t, tag+"-db", []string{"tier=db", "run=" + tag})
	nsA, nsB := tag+"-nsa", tag+"-nsb"
	rttest.CtrRun(t, nsA, "job", []string{"tier=batch", "run=" + tag})
	rttest.CtrRun(t, nsB, "job", []string{"tier=batch", "run=" + tag})
	ours := func(cs []runtime.Container) []string {
		var out []string
		for _, c := range cs {
			if c.Labels["run"] == tag {
				out = append(out, c.Runtime+"/"+c.Namespace+"/"+c.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	dWeb, dDB := "docker/moby/"+tag+"-web", "docker/moby/"+tag+"-db"
	cA, cB := "containerd/"+nsA+"/job", "containerd/"+nsB+"/job"
	for _, tc := range []struct {
		name string
		f    runtime.Filter
		want []string
	}{
		{"none", runtime.Filter{}, []string{cA, cB, dDB, dWeb}},
		{"name", runtime.Filter{Names: []string{tag + "-w*"}}, []string{dWeb}},
		{"exclude name", runtime.Filter{ExcludeNames: []string{tag + "-*"}}, []string{cA, cB}},
		{"label", runtime.Filter{Labels: []string{"tier=db", "tier=batch"}}, []string{cA, cB, dDB}},
		{"exclude label", runtime.Filter{ExcludeLabels: []string{"tier=batch"}}, []string{dDB, dWeb}},
		{"runtime", runtime.Filter{Runtimes: []string{"containerd"}}, []string{cA, cB}},
		{"exclude runtime", runtime.Filter{ExcludeRuntimes: []string{"containerd"}}, []string{dDB, dWeb}},
		{"namespace", runtime.Filter{Namespaces: []string{nsA}}, []string{cA}},
		{"exclude namespace", runtime.Filter{ExcludeNamespaces: []string{nsB}}, []string{cA, dDB, dWeb}},
		{"combined", runtime.Filter{Labels: []string{"tier"}, ExcludeNamespaces: []string{"*-nsb"}, ExcludeNames: []string{"*-db"}}, []string{cA, dWeb}},
	} {
		f, err := runtime.NewFiltered(all, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := f.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := ours(cs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: listed %v, want %v", tc.name, got, tc.want)
		}
	}

	// Watch: of two containers started now, only the selected one's
	// started event comes through; the other's stop event does, since a
	// stop may carry too little to judge.
	f, err := runtime.NewFiltered(all, runtime.Filter{Labels: []string{"tier=web"}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	ch, err := f.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := rttest.Record(ch)
	defer func() { wcancel(); <-rec.Done() }()
	web2 := rttest.DockerRun(t, tag+"-web2", []string{"tier=web", "run=" + tag})
	db2 := rttest.DockerRun(t, tag+"-db2", []string{"tier=db", "run=" + tag})
	rec.Wait(t, runtime.EventStarted, web2, 30*time.Second)
	rttest.Docker(t, "rm", "-f", db2)
	rec.Wait(t, runtime.EventRemoved, db2, 30*time.Second)
	if n := rec.Count(runtime.EventStarted, db2); n != 0 {
		t.Errorf("%d started events for the excluded %s", n, db2)
	}
	for _, id := range []string{web, dbID} {
		if n := rec.Count(runtime.EventStarted, id); n > 1 {
			t.Errorf("%d started events for %s", n, id)
		}
	}
	if n := rec.Count(runtime.EventStarted, dbID); n != 0 {
		t.Errorf("the excluded %s reported started (%d) by the watcher's first listing", dbID, n)
	}
}
