package cgroup_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/cgtest"
)

// heldOpen reports whether this process holds a descriptor of the file.
func heldOpen(t *testing.T, file string) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == file {
			return true
		}
	}
	return false
}

// blkioFile sums a v1 blkio.throttle file's per-device Read and Write
// rows, as the kernel prints them: the independent reading.
func blkioFile(t *testing.T, file string) (read, write uint64, devices int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] == "Total" {
			continue
		}
		seen[f[0]] = true
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", file, l, err)
		}
		switch f[1] {
		case "Read":
			read += v
		case "Write":
			write += v
		}
	}
	return read, write, len(seen)
}

// TestLiveBlkioIdle: a v1 group that has done no block I/O (and has no
// throttle limit) has no device in either blkio.throttle file, so the Group neither reads nor
// holds open the io_serviced file until the bytes file lists a device:
// its operation totals are Known 0 all the same, as the kernel's file says.
// Once the group does direct I/O, the file is opened and the operations
// are the kernel's.
func TestLiveBlkioIdle(t *testing.T) {
	ctx := context.Background()
	g := cgtest.NewV1(t, v1Controllers...)
	dir := t.TempDir()
	idle := cgtest.Start(t, g, cgtest.Spec{})
	fs := newFS(t)
	grp, err := fs.OpenPID(ctx, idle.Pid, cgroup.All)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	ops := filepath.Join(g.Dir("blkio"), "blkio.throttle.io_serviced_recursive")
	bytesFile := filepath.Join(g.Dir("blkio"), "blkio.throttle.io_service_bytes_recursive")
	if _, err := os.Stat(ops); err != nil {
		t.Skipf("no %s: %v", ops, err)
	}
	var s cgroup.Stats
	for i := 0; i < 3; i++ {
		if err := grp.Stat(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, n := blkioFile(t, ops); n != 0 {
		t.Fatalf("the idle group's %s lists %d devices", ops, n)
	}
	zero := cgroup.Value{State: cgroup.Known}
	if io := s.IO; io.ReadOps != zero || io.WriteOps != zero || io.DiscardOps != zero || io.ReadBytes != zero || io.WriteBytes != zero || len(io.Devices) != 0 {
		t.Errorf("idle group: I/O %+v, want every total Known 0 and no device, as the kernel's files say", io)
	}
	if heldOpen(t, ops) {
		t.Errorf("the idle group's %s is held open", ops)
	}
	if !heldOpen(t, bytesFile) {
		t.Errorf("%s is not held open", bytesFile)
	}

	// Now 8 MiB of direct I/O in the group. Since Linux 6.9 blk-throttle
	// counts I/O only on a device queue with some throttle limit set (see
	// startLoad); setting one makes the group's entry for the device.
	g.Write("blkio", "blkio.throttle.write_bps_device", cgtest.DevOf(t, dir)+" 1099511627776")
	cgtest.Start(t, g, cgtest.Spec{IOBytes: workIO, IODir: dir})
	if err := grp.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	rops, wops, n := blkioFile(t, ops)
	rb, wb, _ := blkioFile(t, bytesFile)
	if n == 0 || wb < workIO || rb < workIO {
		t.Fatalf("the kernel's files after the I/O: %d devices, %d bytes read, %d written", n, rb, wb)
	}
	kv := func(v uint64) cgroup.Value { return cgroup.Value{V: v, State: cgroup.Known} }
	if io := s.IO; io.ReadOps != kv(rops) || io.WriteOps != kv(wops) || io.ReadBytes != kv(rb) || io.WriteBytes != kv(wb) {
		t.Errorf("after I/O: ops read %v write %v, bytes read %v write %v; the kernel's files: %d %d, %d %d", io.ReadOps, io.WriteOps, io.ReadBytes, io.WriteBytes, rops, wops, rb, wb)
	}
	if !heldOpen(t, ops) {
		t.Errorf("%s is not held open once the group has done I/O", ops)
	}
}
