//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestClimbs: a /proc/<pid>/cgroup read from inside a cgroup namespace
// shows a cgroup above it as "/..": that, on any hierarchy line, is what
// makes the daemon enter the host's namespace. (deploy/kubernetes's
// TestDaemonSetInDocker runs the daemon in a cgroup namespace of its own
// for real.)
func TestClimbs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    bool
	}{
		{"0::/init.scope\n", false},
		{"12:pids:/\n11:memory:/user.slice\n0::/\n", false},
		{"0::/../../..\n", true},
		{"12:pids:/\n11:memory:/../../kubepods\n", true},
		{"1:name=systemd:/..docker\n", false}, // a cgroup named "..docker" (a container may name its own)
		{"0::/..\n", true},
		{"garbage\n", false},
	} {
		f := filepath.Join(dir, "cgroup")
		if err := os.WriteFile(f, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := climbs(f); err != nil || got != tc.want {
			t.Errorf("%q: climbs = %v, %v; want %v", tc.content, got, err, tc.want)
		}
	}
	if _, err := climbs(filepath.Join(dir, "absent")); err == nil {
		t.Error("climbs of an absent file: no error")
	}
	// This process's own view of PID 1 (the host's namespace here).
	if got, err := climbs("/proc/1/cgroup"); err != nil || got {
		t.Logf("/proc/1/cgroup climbs = %v, %v (the test runs in a cgroup namespace of its own?)", got, err)
	}
}
