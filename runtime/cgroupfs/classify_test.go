package cgroupfs

import (
	"strings"
	"testing"

	"github.com/metricsd/metricsd/runtime"
)

const hexID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		path     string
		ok       bool
		kind, id string
		name, ns string
		podUID   string
	}{
		{path: "/docker/" + hexID, ok: true, kind: KindDocker, id: hexID},
		{path: "/system.slice/docker-" + hexID + ".scope", ok: true, kind: KindDocker, id: hexID},
		{path: "/machine.slice/libpod-" + hexID + ".scope", ok: true, kind: KindPodman, id: hexID},
		{path: "/machine.slice/libpod-conmon-" + hexID + ".scope"},
		{path: "/libpod_parent/libpod-" + hexID, ok: true, kind: KindPodman, id: hexID},
		{path: "/k8s.io/abc-123", ok: true, kind: KindContainerd, id: "abc-123", ns: "k8s.io"},
		{path: "/default/web", ok: true, kind: KindContainerd, id: "web", ns: "default"},
		{path: "/kubepods/burstable/pod1234-5678/" + hexID, ok: true, kind: KindKubernetes, id: hexID, podUID: "1234-5678"},
		{path: "/kubepods/pod1234-5678/" + hexID, ok: true, kind: KindKubernetes, id: hexID, podUID: "1234-5678"},
		{path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12_34.slice/cri-containerd-" + hexID + ".scope",
			ok: true, kind: KindKubernetes, id: hexID, podUID: "12-34"},
		{path: "/system.slice/crio-" + hexID + ".scope", ok: true, kind: KindCRIO, id: hexID},
		{path: "/system.slice/ssh.service", ok: true, kind: KindSystemd, id: "ssh.service", name: "ssh"},
		{path: "/system.slice/system-getty.slice/getty@tty1.service", ok: true, kind: KindSystemd, id: "getty@tty1.service", name: "getty@tty1"},
		// Rootless Podman and Docker, beneath a user's systemd manager.
		{path: "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + hexID + ".scope", ok: true, kind: KindPodman, id: hexID},
		{path: "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + hexID + ".scope", ok: true, kind: KindDocker, id: hexID},
		// Not containers.
		{path: "/user.slice/user-1000.slice/user@1000.service"},
		{path: "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service"},
		{path: "/"},
		{path: "/docker"},
		{path: "/docker/notahexid"},
		{path: "/docker/" + hexID + "/child", ok: false},
		{path: "/system.slice"},
		{path: "/user.slice/user-0.slice"},
		{path: "/init.scope"},
		{path: "/system.slice/docker-nothex.scope"},
		{path: "/kubepods/burstable"},
		{path: "/kubepods/burstable/pod1234"},
		{path: "/a/b/c"},
		{path: "/-bad/x"},
		{path: "/ns/.."},
		{path: "/ns/a..b"},
		{path: "/ns/a b"},
	} {
		c, ok := Classify(tc.path)
		if ok != tc.ok {
			t.Errorf("Classify(%q) ok = %v, want %v (%+v)", tc.path, ok, tc.ok, c)
			continue
		}
		if !ok {
			continue
		}
		name := tc.name
		if name == "" {
			name = tc.id
		}
		if c.ID != tc.id || c.Name != name || c.Labels[LabelKind] != tc.kind || c.Namespace != tc.ns || c.Runtime != Name {
			t.Errorf("Classify(%q) = ID %q name %q kind %q ns %q runtime %q; want %q %q %q %q", tc.path,
				c.ID, c.Name, c.Labels[LabelKind], c.Namespace, c.Runtime, tc.id, name, tc.kind, tc.ns)
		}
		uid := ""
		if c.Pod != nil {
			uid = c.Pod.UID
		}
		if uid != tc.podUID {
			t.Errorf("Classify(%q) pod UID %q, want %q", tc.path, uid, tc.podUID)
		}
	}
}

// FuzzClassify checks that whatever a path holds, a recognised container's
// ID and namespace are safe to put in a path.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"/docker/" + hexID, "/k8s.io/x", "/system.slice/a.service", "/kubepods/pod1/x", "/../x", "/a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, ok := Classify(p)
		if !ok {
			return
		}
		if err := runtime.CheckID(c.ID); err != nil {
			t.Fatalf("Classify(%q): ID %q: %v", p, c.ID, err)
		}
		if c.Namespace != "" && runtime.CheckID(c.Namespace) != nil {
			t.Fatalf("Classify(%q): namespace %q invalid", p, c.Namespace)
		}
		if strings.ContainsAny(c.ID+c.Namespace, "/\x00") {
			t.Fatalf("Classify(%q): separator in %q %q", p, c.ID, c.Namespace)
		}
	})
}
