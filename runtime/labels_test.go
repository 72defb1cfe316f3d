package runtime

import (
	"strings"
	"testing"
)

func TestPodFromLabels(t *testing.T) {
	if p := PodFromLabels(map[string]string{"app": "x"}); p != nil {
		t.Errorf("no pod labels: %+v", p)
	}
	p := PodFromLabels(map[string]string{LabelPodName: "web", LabelPodNamespace: "prod", LabelPodUID: "u", LabelContainerName: "nginx"})
	if p == nil || p.Name != "web" || p.Namespace != "prod" || p.UID != "u" || p.Container != "nginx" || p.Sandbox {
		t.Errorf("workload: %+v", p)
	}
	for _, l := range []map[string]string{
		{LabelPodName: "web", LabelDockerType: "podsandbox"},
		{LabelPodUID: "u", LabelCRIKind: "sandbox"},
	} {
		if p := PodFromLabels(l); p == nil || !p.Sandbox {
			t.Errorf("sandbox %v: %+v", l, p)
		}
	}
	// Odd values are kept as they are.
	if p := PodFromLabels(map[string]string{LabelPodName: "a b/../c\x00"}); p == nil || p.Name != "a b/../c\x00" {
		t.Errorf("odd value: %+v", p)
	}
}

func TestCheckID(t *testing.T) {
	for _, ok := range []string{"abc", "0123456789abcdef", "k8s.io", "web-1_x", "a:b@c", strings.Repeat("a", 255)} {
		if err := CheckID(ok); err != nil {
			t.Errorf("CheckID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a..b", "a b", "a\x00", "a\n", "/", strings.Repeat("a", 256), "ü"} {
		if err := CheckID(bad); err == nil {
			t.Errorf("CheckID(%q) accepted", bad)
		}
	}
	if !ValidHexID(strings.Repeat("ab", 32)) || ValidHexID(strings.Repeat("AB", 32)) || ValidHexID("abc") || ValidHexID(strings.Repeat("g", 64)) {
		t.Error("ValidHexID")
	}
}

func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"abc", "..", "a/b", "k8s.io"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckID(s) != nil {
			return
		}
		if strings.ContainsAny(s, "/\\\x00 ") || strings.Contains(s, "..") || s == "." {
			t.Fatalf("CheckID accepted %q", s)
		}
	})
}
