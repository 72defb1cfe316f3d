package netns

import (
	"strconv"

	vns "github.com/vishvananda/netns"
)

// ID identifies a network namespace: the device and inode of its nsfs file.
// Two containers with the same ID share one namespace (a Kubernetes pod,
// docker --net=container:), so one Handle serves both.
type ID struct {
	Dev, Ino uint64
}

// IsZero reports whether id is the zero ID (no namespace).
func (id ID) IsZero() bool { return id == ID{} }

// String formats id as "net:[ino]" like the ns symlinks, plus the device.
func (id ID) String() string {
	return "net:[" + strconv.FormatUint(id.Ino, 10) + "]@" + strconv.FormatUint(id.Dev, 10)
}

type targetKind uint8

const (
	targetNone targetKind = iota
	targetPID
	targetPath
	targetHandle
)

// Target names a network namespace to open: by process, by path, or by a
// vishvananda/netns handle.
type Target struct {
	kind targetKind
	pid  int
	path string
	h    vns.NsHandle
}

// TargetPID names the network namespace of process pid, read through
// <root>/proc/<pid>/ns/net where root is the Pool's WithRoot.
func TargetPID(pid int) Target { return Target{kind: targetPID, pid: pid} }

// TargetPath names a namespace by a file that refers to it, such as
// /run/netns/NAME or /run/docker/netns/ID. The path is used as given (the
// Pool's root is not prefixed).
func TargetPath(path string) Target { return Target{kind: targetPath, path: path} }

// TargetHandle names the namespace an open vishvananda/netns handle refers
// to. The caller keeps ownership of h and may close it once Open returns.
func TargetHandle(h vns.NsHandle) Target { return Target{kind: targetHandle, h: h} }

// String describes the target for logs and errors.
func (t Target) String() string {
	switch t.kind {
	case targetPID:
		return "pid " + strconv.Itoa(t.pid)
	case targetPath:
		return "path " + t.path
	case targetHandle:
		return "handle fd " + strconv.Itoa(int(t.h))
	}
	return "no target"
}
