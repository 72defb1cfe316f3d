package cgroupfs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/runtime"
)

// TestRescanIncremental lists real groups again and again with one
// Discoverer, which keeps what it learned of each directory between scans
// (keyed by path and inode), and checks each listing against what the test
// changed in between: a group added, a group removed, a group removed and
// made again at its path without its cpu-hierarchy twin (no longer a
// containerd container: a classification kept by path alone would still
// list it), and a group renamed (listed under its new name only, with its
// process).
func TestRescanIncremental(t *testing.T) {
	tr := rttest.NewTree(t)
	ctx := context.Background()
	idA, idB, idC, idD := hexID, strings.Repeat("ab", 32), strings.Repeat("cd", 32), strings.Repeat("ef", 32)
	pidA := tr.Spawn("docker/" + idA)
	d, err := New(ctx, WithSubtree(tr.Base))
	if err != nil {
		t.Fatal(err)
	}
	list := func(step string) map[string]runtime.Container {
		t.Helper()
		cs, err := d.List(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return byKey(cs)
	}
	expect := func(step string, got map[string]runtime.Container, want map[string]int) {
		t.Helper()
		for k, pid := range want {
			c, ok := got[k]
			if !ok {
				t.Errorf("%s: %s not listed (listed %d)", step, k, len(got))
				continue
			}
			if c.PID != pid {
				t.Errorf("%s: %s PID %d, want %d", step, k, c.PID, pid)
			}
			if direct := rttest.HostCgroupPath(t, pid); c.CgroupPath != direct {
				t.Errorf("%s: %s CgroupPath %q, /proc/%d/cgroup says %q", step, k, c.CgroupPath, pid, direct)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %s listed, want only %v", step, k, want)
			}
		}
	}
	expect("first", list("first"), map[string]int{idA: pidA})

	// Added.
	pidB := tr.Spawn("docker/" + idB)
	expect("added", list("added"), map[string]int{idA: pidA, idB: pidB})

	// Removed.
	tr.Kill(pidB)
	tr.Remove("docker/" + idB)
	expect("removed", list("removed"), map[string]int{idA: pidA})

	// A containerd-shaped group counts where the cpu hierarchy has it too
	// (v1); made again without it, it is not a container any more.
	if tr.Mirror("cpu", "k8s.io/web") && tr.Mount != "/sys/fs/cgroup" {
		pidW := tr.Spawn("k8s.io/web")
		expect("containerd", list("containerd"), map[string]int{idA: pidA, "k8s.io/web": pidW})
		tr.Kill(pidW)
		tr.Remove("k8s.io/web")
		if err := syscall.Rmdir(filepath.Join("/sys/fs/cgroup/cpu", tr.Path("k8s.io/web"))); err != nil {
			t.Fatal(err)
		}
		pidW = tr.Spawn("k8s.io/web") // the memory hierarchy's alone
		expect("made again", list("made again"), map[string]int{idA: pidA})
		tr.Kill(pidW)
	} else {
		t.Log("no v1 cpu hierarchy beside the one walked: the made-again step is a v1 matter")
	}

	// Renamed (cgroup v1 allows rename(2) within a parent; v2 does not).
	pidC := tr.Spawn("docker/" + idC)
	expect("before rename", list("before rename"), map[string]int{idA: pidA, idC: pidC})
	from, to := tr.Dir("docker/"+idC), tr.Dir("docker/"+idD)
	if err := os.Rename(from, to); err != nil {
		if tr.Mount == "/sys/fs/cgroup" && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EINVAL)) {
			t.Logf("rename on cgroup v2: %v (v2 has no rename)", err)
			return
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Rename(to, from) }) // before the tree's cleanup
	expect("renamed", list("renamed"), map[string]int{idA: pidA, idD: pidC})
	if err := os.Rename(to, from); err != nil {
		t.Fatal(err)
	}
	expect("renamed back", list("renamed back"), map[string]int{idA: pidA, idC: pidC})
}

// TestRescanPIDReused: between two scans a group's process exits and its
// PID goes to a process in another group, then to a new process in the
// first group. Each listing must name the group the PID is in now, with the
// start time of the process that has it now: never the first group with the
// impostor, nor a start time kept from before. The PIDs are reused for real
// in a private PID namespace (ns_last_pid); since cgroup.procs gives PIDs
// in its reader's namespace, the test runs itself there (unshare --pid),
// with the Discoverer.
func TestRescanPIDReused(t *testing.T) {
	if os.Getenv("METRICSD_TEST_IN_PIDNS") == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root: a PID namespace and real cgroups (CI runs as root)")
		}
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("needs unshare(1) from util-linux")
		}
		cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", os.Args[0], "-test.run=^TestRescanPIDReused$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "METRICSD_TEST_IN_PIDNS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a PID namespace of its own:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestRescanPIDReused") {
			t.Fatalf("the test in its PID namespace did not pass: %v", err)
		}
		return
	}
	tr := rttest.NewTree(t)
	idA, idB := hexID, strings.Repeat("ab", 32)
	tr.Group("docker/" + idA)
	tr.Group("docker/" + idB)
	procs := func(id string) string { return filepath.Join(tr.Dir("docker/"+id), "cgroup.procs") }
	ctx := context.Background()
	d, err := New(ctx, WithSubtree(tr.Base))
	if err != nil {
		t.Fatal(err)
	}
	var live *exec.Cmd
	// spawn starts sleep with PID want (any when 0) and moves it into the
	// group: ns_last_pid is set just before the fork, which the Go
	// runtime's own threads may race (then it kills it and tries again).
	spawn := func(want int, id string) int {
		t.Helper()
		time.Sleep(20 * time.Millisecond) // two clock ticks: another start time
		for range 200 {
			if want > 0 {
				if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(want-1)), 0); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("sleep", "600")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if want > 0 && cmd.Process.Pid != want {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				continue
			}
			if err := os.WriteFile(procs(id), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
				t.Fatal(err)
			}
			live = cmd
			return cmd.Process.Pid
		}
		t.Fatalf("no process got PID %d in 200 tries", want)
		return 0
	}
	kill := func() {
		_ = live.Process.Kill()
		_ = live.Wait() // reaped: its PID is free
	}
	t.Cleanup(func() {
		if live != nil {
			kill()
		}
	})
	step := func(name, wantID string, pid int) uint64 {
		t.Helper()
		cs, err := d.List(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if wantID == "" {
			if len(cs) != 0 {
				t.Errorf("%s: listed %+v, want nothing", name, cs)
			}
			return 0
		}
		start, err := runtime.ProcStartTicks(ctx, "/", pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].ID != wantID || cs[0].PID != pid || cs[0].PIDStart != start || cs[0].State != runtime.StateRunning {
			t.Errorf("%s: listed %+v, want only %s running PID %d started at tick %d", name, cs, wantID[:8], pid, start)
		}
		return start
	}
	pid := spawn(0, idA)
	first := step("first", idA, pid)
	kill()
	step("exited", "", 0)
	spawn(pid, idB)
	step("reused in another group", idB, pid)
	kill()
	spawn(pid, idA)
	if again := step("reused in the first group", idA, pid); again == first {
		t.Fatalf("the reused PID's start time %d equals the first process's: the test can not tell them apart", again)
	}
}
