package cgroup_test

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
)

// TestHierarchies checks, on the live host, that every hierarchy the FS
// names holds the controllers it says, that Dir resolves the root group of
// each to a directory on a cgroup filesystem (the mount point itself), and
// that Dir refuses what the mount does not show.
func TestHierarchies(t *testing.T) {
	fs, err := cgroup.NewFS(context.Background())
	if err != nil {
		t.Skipf("no cgroup filesystem here: %v", err)
	}
	hs := fs.Hierarchies(cgroup.All)
	if len(hs) == 0 {
		t.Fatalf("no hierarchy on a %v host", fs.Mode())
	}
	var all cgroup.Controllers
	for i, h := range hs {
		all |= h.Controllers
		if len(h.Keys) == 0 || h.Controllers == 0 {
			t.Fatalf("hierarchy %d: %+v", i, h)
		}
		if (h.Keys[0] == "") != (h.Version == 2) || h.Version == 2 && i != len(hs)-1 {
			t.Errorf("hierarchy %d: %+v: the unified one is last, keyed \"\"", i, h)
		}
		for _, k := range h.Keys {
			dir, err := fs.Dir(k, "/")
			if err != nil {
				t.Fatalf("Dir(%q, /): %v", k, err)
			}
			mp, _ := fs.MountPoint(k)
			var st unix.Statfs_t
			if dir != mp || unix.Statfs(dir, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC && st.Type != unix.CGROUP2_SUPER_MAGIC {
				t.Errorf("Dir(%q, /) = %s: want the mount point %s, on a cgroup filesystem", k, dir, mp)
			}
		}
	}
	if all&cgroup.CPU == 0 {
		t.Errorf("no hierarchy for CPU: %+v", hs)
	}
	if fs.Mode() == cgroup.Legacy && all&cgroup.Pressure != 0 || fs.Mode() != cgroup.Legacy && all&cgroup.Pressure == 0 {
		t.Errorf("Pressure in %+v on a %v host", hs, fs.Mode())
	}
	if hs := fs.Hierarchies(cgroup.Memory); len(hs) > 1 || len(hs) == 1 && hs[0].Controllers != cgroup.Memory {
		t.Errorf("Hierarchies(Memory) = %+v", hs)
	}
	if _, err := fs.Dir("no-such-controller", "/"); !errors.Is(err, cgroup.ErrNotExist) {
		t.Errorf("an unmounted hierarchy: %v, want ErrNotExist", err)
	}
	if _, err := fs.Dir(hs[0].Keys[0], "/../x"); !errors.Is(err, cgroup.ErrOutsideMount) {
		t.Errorf("a path above the mount: %v, want ErrOutsideMount", err)
	}
	if _, err := fs.Dir(hs[0].Keys[0], "/a/../../x"); !errors.Is(err, cgroup.ErrInvalidPath) {
		t.Errorf("an unclean path: %v, want ErrInvalidPath", err)
	}
}
