package cgroup

import (
	"strings"

	"github.com/metricsd/metricsd/internal/parse"
)

// Paths maps a hierarchy to a group's path in it, as /proc/<pid>/cgroup
// shows them: v1 controllers by name ("cpu", "cpuacct", "memory", "blkio",
// "pids", "hugetlb", "name=systemd"; a line for "cpu,cpuacct" gives both
// keys) and the unified (cgroup v2) hierarchy under the empty key "".
// Paths are relative to the reader's cgroup namespace, so they may start with
// "/.." for groups outside it.
type Paths map[string]string

// deletedSuffix ends the unified hierarchy's line of /proc/<pid>/cgroup when
// the process's group there has been removed (proc_cgroup_show prints it
// for a dead cgroup on the default hierarchy only): the process has exited
// and its group went before it was reaped.
const deletedSuffix = " (deleted)"

// parseProcCgroup parses a /proc/<pid>/cgroup file ("hierarchy-ID:controller
// list:path" per line, see cgroups(7)). deleted reports a unified line
// ending in " (deleted)", which the path keeps: a group's name may end so
// too, and only the process's state tells which (see processPaths).
func parseProcCgroup(b []byte) (p Paths, deleted bool, err error) {
	p = make(Paths)
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = parse.Line(b)
		if len(parse.TrimSpace(line)) == 0 {
			continue
		}
		_, rest, ok := parse.Cut(line, ':')
		if !ok {
			return nil, false, errAt(n, parse.ErrSyntax)
		}
		ctrls, path, ok := parse.Cut(rest, ':')
		if !ok || len(path) == 0 || path[0] != '/' {
			return nil, false, errAt(n, parse.ErrSyntax)
		}
		if len(ctrls) == 0 {
			p[""] = string(path)
			deleted = strings.HasSuffix(p[""], deletedSuffix)
			continue
		}
		for _, c := range strings.Split(string(ctrls), ",") {
			p[c] = string(path)
		}
	}
	return p, deleted, nil
}

// relativeTo returns the directory, relative to a mount of the hierarchy
// whose root is mountRoot, that holds the group at path; both are relative to
// the same cgroup namespace and may begin with ".." components. The result
// is "." for the mount root itself.
func relativeTo(mountRoot, path string) (string, error) {
	if strings.IndexByte(path, 0) >= 0 || !strings.HasPrefix(path, "/") {
		return "", ErrInvalidPath
	}
	rootUp, rootRest := splitUp(mountRoot)
	pathUp, pathRest := splitUp(path)
	for _, c := range pathRest {
		if c == ".." || c == "." {
			return "", ErrInvalidPath
		}
	}
	// Both name a directory by climbing from the namespace root and then
	// descending; they are comparable only when they climb equally far.
	if rootUp != pathUp || len(pathRest) < len(rootRest) {
		return "", ErrOutsideMount
	}
	for i, c := range rootRest {
		if pathRest[i] != c {
			return "", ErrOutsideMount
		}
	}
	rel := pathRest[len(rootRest):]
	if len(rel) == 0 {
		return ".", nil
	}
	return strings.Join(rel, "/"), nil
}

// splitUp splits a cgroup path into its leading ".." count and the rest of
// its non-empty components.
func splitUp(p string) (up int, rest []string) {
	for _, c := range strings.Split(p, "/") {
		switch {
		case c == "" || c == ".":
		case c == ".." && len(rest) == 0:
			up++
		default:
			rest = append(rest, c)
		}
	}
	return up, rest
}
