package runtime

import (
	"fmt"
	"strings"
)

// Kubernetes label keys that kubelets (dockershim, CRI runtimes) set on the
// containers they make.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
	// LabelDockerType is dockershim's "podsandbox" / "container" marker.
	LabelDockerType = "io.kubernetes.docker.type"
	// LabelCRIKind is containerd CRI's "sandbox" / "container" marker.
	LabelCRIKind = "io.cri-containerd.kind"
)

// PodFromLabels returns the Kubernetes pod a container belongs to, from its
// io.kubernetes.* labels; nil when it carries none of the pod labels. A
// sandbox ("pause") container, marked by dockershim's or the CRI's kind
// label, has Sandbox set. Values are taken as they are.
func PodFromLabels(labels map[string]string) *Pod {
	name, okName := labels[LabelPodName]
	ns, okNS := labels[LabelPodNamespace]
	uid, okUID := labels[LabelPodUID]
	if !okName && !okNS && !okUID {
		return nil
	}
	p := &Pod{Name: name, Namespace: ns, UID: uid, Container: labels[LabelContainerName]}
	if labels[LabelDockerType] == "podsandbox" || labels[LabelCRIKind] == "sandbox" {
		p.Sandbox = true
	}
	return p
}

// ValidHexID reports whether id is a Docker-style container ID: 64
// lower-case hex digits.
func ValidHexID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckID checks a container ID, name or namespace before it is used in a
// path or a request: 1 to 255 bytes of letters, digits, '_', '-', '.', ':'
// or '@' (what Docker, containerd and systemd allow), not "." or "..", and
// no path separator, NUL or other control or space character.
func CheckID(id string) error {
	if id == "" || len(id) > 255 {
		return fmt.Errorf("runtime: invalid ID %q: length %d", id, len(id))
	}
	if id == "." || id == ".." || strings.Contains(id, "..") {
		return fmt.Errorf("runtime: invalid ID %q: dot-dot", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == '+':
		default:
			return fmt.Errorf("runtime: invalid ID %q: byte %q", id, c)
		}
	}
	return nil
}
