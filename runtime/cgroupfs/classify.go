package cgroupfs

import (
	"strings"

	"github.com/metricsd/metricsd/runtime"
)

// Classify tells whether a cgroup path (as /proc/<pid>/cgroup shows it, e.g.
// "/docker/<id>") looks like a container or a service, and returns what the
// path says about it: ID, Name, Runtime ("cgroupfs"), the LabelKind label,
// the containerd Namespace and, for Kubernetes, the Pod's UID. IDs and
// names are validated (runtime.CheckID): a path element that is not a valid
// ID is not recognised.
func Classify(path string) (runtime.Container, bool) {
	els := strings.Split(strings.Trim(path, "/"), "/")
	if len(els) == 0 || els[0] == "" {
		return runtime.Container{}, false
	}
	last := els[len(els)-1]
	parent := ""
	if len(els) >= 2 {
		parent = els[len(els)-2]
	}
	mk := func(kind, id string) runtime.Container {
		return runtime.Container{ID: id, Name: id, Runtime: Name, Labels: map[string]string{LabelKind: kind}}
	}
	inKube, inUser := false, false
	for _, e := range els[:len(els)-1] {
		if e == "kubepods" || strings.HasPrefix(e, "kubepods") {
			inKube = true
		}
		if userManager(e) {
			inUser = true
		}
	}
	// systemd-driver scopes: <prefix><id>.scope
	if id, ok := strings.CutSuffix(last, ".scope"); ok {
		for _, s := range []struct{ prefix, kind string }{
			{"docker-", KindDocker},
			{"libpod-", KindPodman},
			{"cri-containerd-", KindContainerd},
			{"crio-", KindCRIO},
		} {
			rest, ok := strings.CutPrefix(id, s.prefix)
			if !ok {
				continue
			}
			if strings.HasPrefix(rest, "conmon-") || runtime.CheckID(rest) != nil {
				return runtime.Container{}, false
			}
			if s.kind == KindDocker || s.kind == KindPodman {
				if !runtime.ValidHexID(rest) {
					return runtime.Container{}, false
				}
			}
			kind := s.kind
			if inKube {
				kind = KindKubernetes
			}
			c := mk(kind, rest)
			if inKube {
				c.Pod = podFromElement(parent)
			}
			return c, true
		}
		return runtime.Container{}, false
	}
	switch {
	case parent == "docker" && len(els) == 2 && runtime.ValidHexID(last):
		return mk(KindDocker, last), true
	case parent == "libpod_parent" && strings.HasPrefix(last, "libpod-") && runtime.ValidHexID(strings.TrimPrefix(last, "libpod-")):
		return mk(KindPodman, strings.TrimPrefix(last, "libpod-")), true
	case inKube && strings.HasPrefix(parent, "pod") && runtime.CheckID(last) == nil && !strings.Contains(last, ".slice"):
		c := mk(KindKubernetes, last)
		c.Pod = podFromElement(parent)
		return c, true
	case userManager(last) || inUser && strings.HasSuffix(last, ".service"):
		// A user's systemd manager is a tree of that user's units, where
		// rootless Podman and Docker put their containers: walked into,
		// not reported; the user's own services are not reported either
		// (their names would clash with the system's).
		return runtime.Container{}, false
	case strings.HasSuffix(last, ".service") && runtime.CheckID(last) == nil:
		c := mk(KindSystemd, last)
		c.Name = strings.TrimSuffix(last, ".service")
		return c, true
	case len(els) == 2 && isNamespace(parent) && runtime.CheckID(last) == nil && !systemdUnit(last):
		c := mk(KindContainerd, last)
		c.Namespace = parent
		return c, true
	}
	return runtime.Container{}, false
}

// podFromElement reads a pod UID from "pod<uid>" or
// "kubepods-<qos>-pod<uid_with_underscores>.slice".
func podFromElement(e string) *runtime.Pod {
	e = strings.TrimSuffix(e, ".slice")
	i := strings.LastIndex(e, "pod")
	if i < 0 || i+3 >= len(e) {
		return nil
	}
	uid := strings.ReplaceAll(e[i+3:], "_", "-")
	if runtime.CheckID(uid) != nil {
		return nil
	}
	return &runtime.Pod{UID: uid}
}

// userManager reports whether e is a user's systemd manager,
// "user@<uid>.service".
func userManager(e string) bool {
	return strings.HasPrefix(e, "user@") && strings.HasSuffix(e, ".service")
}

func systemdUnit(e string) bool {
	for _, s := range []string{".slice", ".scope", ".service", ".mount", ".socket"} {
		if strings.HasSuffix(e, s) {
			return true
		}
	}
	return false
}

// isNamespace reports whether e can be a containerd namespace and is not
// one of the well-known non-containerd top-level groups.
func isNamespace(e string) bool {
	switch e {
	case "docker", "libpod_parent", "kubepods", "machine", "user", "system", "lxc", "init":
		return false
	}
	if systemdUnit(e) || strings.HasPrefix(e, "kubepods") {
		return false
	}
	// containerd: [A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*, at most 76 bytes.
	if e == "" || len(e) > 76 {
		return false
	}
	prevSep := true
	for i := 0; i < len(e); i++ {
		c := e[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			prevSep = false
		case c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}
