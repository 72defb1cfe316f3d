package main

import (
	"slices"
	"testing"

	"github.com/metricsd/metricsd/internal/rttest"
)

// TestFilterFlags runs the daemon once against the test dockerd and
// containerd with the filter flags, and checks which of this test's
// containers it reports (by name, label, runtime and namespace).
func TestFilterFlags(t *testing.T) {
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvContainerd, rttest.EnvRootfs, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	tag := rttest.Name("dflt")
	web, db := tag+"-web", tag+"-db"
	rttest.DockerRun(t, web, []string{"tier=web", "run=" + tag})
	rttest.DockerRun(t, db, []string{"tier=db", "run=" + tag})
	nsA, nsB := tag+"-a", tag+"-b"
	rttest.CtrRun(t, nsA, tag+"-job-a", []string{"tier=batch", "run=" + tag})
	rttest.CtrRun(t, nsB, tag+"-job-b", []string{"tier=batch", "run=" + tag})
	jobA, jobB := tag+"-job-a", tag+"-job-b"

	// Both runtimes at once, as -runtime auto finds them.
	t.Setenv("DOCKER_HOST", v[0])
	t.Setenv("CONTAINERD_ADDRESS", v[2])
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{db, jobA, jobB, web}},
		{[]string{"-include-name", tag + "-w*", "-include-name", tag + "-job-?"}, []string{jobA, jobB, web}},
		{[]string{"-exclude-name", "*-db"}, []string{jobA, jobB, web}},
		{[]string{"-include-label", "tier=web"}, []string{web}},
		{[]string{"-exclude-label", "tier=batch", "-exclude-label", "tier=db"}, []string{web}},
		{[]string{"-include-runtime", "containerd"}, []string{jobA, jobB}},
		{[]string{"-exclude-runtime", "containerd"}, []string{db, web}},
		{[]string{"-include-namespace", nsA}, []string{jobA}},
		{[]string{"-include-namespace", "moby"}, []string{db, web}},
		{[]string{"-exclude-namespace", tag + "-*", "-include-label", "run"}, []string{db, web}},
	} {
		args := append([]string{"-once", "-format", "json", "-net", "none", "-runtime", "auto", "-labels", "run"}, tc.args...)
		code, out, errOut := runArgs(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
		}
		var got []string
		for name, ms := range parsePoints(t, out) {
			if p := ms["container_cpu"]; p != nil && p.Tags["container_label_run"] == tag {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: reported %v, want %v", tc.args, got, tc.want)
		}
	}
}
