package cgroup

import (
	"fmt"
	"path/filepath"
	"slices"
)

// Hierarchy is a mounted hierarchy that an FS reads controllers from (see
// Mode): what a program that makes groups (cgroup/job) needs in order to
// make them where the FS will read them.
type Hierarchy struct {
	// Keys are the keys of Paths that name a group's path in this
	// hierarchy: the v1 controllers it holds that the FS reads
	// ("cpu", "cpuacct" when co-mounted), or "" alone for the unified one.
	Keys []string
	// Version is 1 for a v1 hierarchy, 2 for the unified one.
	Version int
	// Controllers are the requested controllers the FS reads from it. The
	// unified hierarchy of a hybrid host holds Pressure (and any controller
	// not mounted as v1).
	Controllers Controllers
}

// Hierarchies lists the hierarchies the FS reads the controllers c from,
// v1 ones first in the order CPU (cpu, cpuacct), Memory, IO, Pids, Hugetlb,
// then the unified one (for Pressure, on v2 and hybrid hosts, and for any
// controller it holds). Controllers mounted nowhere are left out.
func (f *FS) Hierarchies(c Controllers) []Hierarchy {
	var hs []Hierarchy
	var points []string // the v1 mount point of hs[i]
	var unified Controllers
	add := func(name string, ctl Controllers) {
		m, v2 := f.hierarchy(name)
		switch {
		case m == nil:
			return
		case v2:
			unified |= ctl
			return
		}
		if i := slices.Index(points, m.point); i >= 0 {
			if !slices.Contains(hs[i].Keys, name) {
				hs[i].Keys = append(hs[i].Keys, name)
			}
			hs[i].Controllers |= ctl
			return
		}
		points = append(points, m.point)
		hs = append(hs, Hierarchy{Keys: []string{name}, Version: 1, Controllers: ctl})
	}
	for _, x := range []struct {
		ctl   Controllers
		names []string
	}{
		{CPU, []string{"cpu", "cpuacct"}},
		{Memory, []string{"memory"}},
		{IO, []string{"blkio"}},
		{Pids, []string{"pids"}},
		{Hugetlb, []string{"hugetlb"}},
	} {
		if c&x.ctl != 0 {
			for _, n := range x.names {
				add(n, x.ctl)
			}
		}
	}
	if c&Pressure != 0 && f.unified != nil {
		unified |= Pressure
	}
	if unified != 0 {
		hs = append(hs, Hierarchy{Keys: []string{""}, Version: 2, Controllers: unified})
	}
	return hs
}

// Dir returns the directory that holds the group at path in the hierarchy
// of key (a key of Paths: a v1 controller name, or "" for the unified
// hierarchy), beneath the FS's host root; the group need not exist. The
// path is relative to the reader's cgroup namespace, as in Paths. A path
// that the mount does not show (outside a bind-mounted subtree, or above
// the namespace's root) gives an error matching ErrOutsideMount; an unclean
// one, ErrInvalidPath; a hierarchy not mounted, ErrNotExist.
func (f *FS) Dir(key, path string) (string, error) {
	var m *mount
	if key == "" {
		m = f.unified
	} else if v1, ok := f.v1[key]; ok {
		m = &v1
	}
	if m == nil {
		return "", fmt.Errorf("cgroup: hierarchy %q: %w: not mounted", key, ErrNotExist)
	}
	rel, err := relativeTo(m.root, path)
	if err != nil {
		return "", fmt.Errorf("cgroup: %q in %s (mount root %s): %w", path, m.point, m.root, err)
	}
	return filepath.Join(m.point, rel), nil
}
