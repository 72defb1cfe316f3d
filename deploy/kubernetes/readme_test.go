package kubernetes

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// readmeYAML returns the yaml blocks of the README's Kubernetes section.
func readmeYAML(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n### Kubernetes\n")
	if i < 0 {
		t.Fatal("README.md: no Kubernetes section")
	}
	s = s[i+1:]
	if j := strings.Index(s, "\n### "); j >= 0 {
		s = s[:j]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestReadmePushSecret checks the README's example of push sinks on
// Kubernetes with a Secret: the Secret and the DaemonSet patch decode
// strictly into the k8s.io/api types; the patch names the DaemonSet's
// container and namespace-local Secret, repeats every argument of the
// DaemonSet (a strategic merge patch replaces args whole), mounts the
// Secret read-only where its -remotewrite-password-file points, takes
// the OTLP headers from a key the Secret has, and puts no secret in args;
// and the daemon, built from this tree, accepts the patch's arguments.
func TestReadmePushSecret(t *testing.T) {
	blocks := readmeYAML(t)
	var secret *corev1.Secret
	var patch *appsv1.DaemonSet
	for _, b := range blocks {
		var tm struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(b), &tm); err != nil {
			t.Fatalf("README yaml: %v\n%s", err, b)
		}
		switch {
		case tm.APIVersion == "v1" && tm.Kind == "Secret":
			secret = new(corev1.Secret)
			if err := yaml.UnmarshalStrict([]byte(b), secret); err != nil {
				t.Fatalf("README Secret: strict decoding: %v", err)
			}
		case tm.Kind == "":
			patch = new(appsv1.DaemonSet)
			if err := yaml.UnmarshalStrict([]byte(b), patch); err != nil {
				t.Fatalf("README DaemonSet patch: strict decoding: %v", err)
			}
		}
	}
	if secret == nil || patch == nil {
		t.Fatalf("README's Kubernetes section: want a Secret and a DaemonSet patch in yaml blocks, found %d blocks", len(blocks))
	}
	ds := daemonSet(t)
	if secret.Namespace != ds.Namespace {
		t.Errorf("Secret in namespace %q, the DaemonSet in %q", secret.Namespace, ds.Namespace)
	}
	if len(patch.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("patch: %d containers, want 1", len(patch.Spec.Template.Spec.Containers))
	}
	pc := patch.Spec.Template.Spec.Containers[0]
	dc := ds.Spec.Template.Spec.Containers[0]
	if pc.Name != dc.Name {
		t.Errorf("patch container %q, the DaemonSet's is %q", pc.Name, dc.Name)
	}
	for _, a := range dc.Args {
		if !slices.Contains(pc.Args, a) {
			t.Errorf("patch args lack the DaemonSet's %q (a strategic merge patch replaces args)", a)
		}
	}
	for _, a := range pc.Args {
		for _, v := range secret.StringData {
			if strings.Contains(a, v) {
				t.Errorf("patch arg %q holds a secret", a)
			}
		}
	}
	// The password file: under a read-only mount of a volume of the Secret
	// whose item is the key the Secret has.
	var file string
	for _, a := range pc.Args {
		if v, ok := strings.CutPrefix(a, "-remotewrite-password-file="); ok {
			file = v
		}
	}
	if file == "" {
		t.Fatal("patch: no -remotewrite-password-file")
	}
	found := false
	for _, m := range pc.VolumeMounts {
		if path.Dir(file) != m.MountPath {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("mount %s is not read-only", m.MountPath)
		}
		for _, v := range patch.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil || v.Secret.SecretName != secret.Name {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == path.Base(file) {
					if _, ok := secret.StringData[it.Key]; !ok {
						t.Errorf("volume item key %q is not in the Secret", it.Key)
					}
					found = true
				}
			}
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
				t.Errorf("secret volume mode %v: readable by others", v.Secret.DefaultMode)
			}
		}
	}
	if !found {
		t.Errorf("%s is not a file of a Secret volume %q mounted in the patch", file, secret.Name)
	}
	envOK := false
	for _, e := range pc.Env {
		if e.Name == "METRICSD_OTLP_HEADERS" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Name == secret.Name {
			_, envOK = secret.StringData[e.ValueFrom.SecretKeyRef.Key]
		}
	}
	if !envOK {
		t.Error("patch: no METRICSD_OTLP_HEADERS from a key of the Secret")
	}

	// The daemon parses the flags (and -version then exits): a misspelt
	// flag fails here.
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go to build the daemon")
	}
	bin := filepath.Join(t.TempDir(), "metricsd")
	build := exec.Command("go", "build", "-o", bin, "./examples/metricsd")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, append(slices.Clone(pc.Args), "-version")...).CombinedOutput()
	if err != nil {
		t.Errorf("the daemon refuses the patch's args: %v\n%s", err, out)
	}
}
