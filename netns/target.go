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
	kind  targetKind
	pid   int
	start uint64
	path  string
	h     vns.NsHandle
	of    string // a Ref's: what its namespace was identified from
}

// TargetPID names the network namespace of process pid, read through
// <root>/proc/<pid>/ns/net where root is the Pool's WithRoot. It trusts the
// number: if the process has exited and its PID was given to another, it
// names that other's namespace. TargetProcess does not.
func TargetPID(pid int) Target { return Target{kind: targetPID, pid: pid} }

// TargetProcess names the network namespace of process pid while pid names
// the process that started at startTicks (clock ticks since boot: field 22
// of /proc/<pid>/stat, what runtime.ProcStartTicks returns). Opening it opens
// <root>/proc/<pid> once, checks the start time through that directory and
// opens ns/net relative to it, so a PID reused by another process since the
// caller learnt it fails with ErrNotExist instead of naming the other
// process's namespace. startTicks 0 checks nothing (TargetPID).
func TargetProcess(pid int, startTicks uint64) Target {
	return Target{kind: targetPID, pid: pid, start: startTicks}
}

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
		if t.start != 0 {
			return "pid " + strconv.Itoa(t.pid) + " started at tick " + strconv.FormatUint(t.start, 10)
		}
		return "pid " + strconv.Itoa(t.pid)
	case targetPath:
		return "path " + t.path
	case targetHandle:
		if t.of != "" {
			return t.of + " (identified, fd " + strconv.Itoa(int(t.h)) + ")"
		}
		return "handle fd " + strconv.Itoa(int(t.h))
	}
	return "no target"
}
