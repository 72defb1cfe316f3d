package metricsd_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/runtime"
	"golang.org/x/sys/unix"
)

// readOnlyChild is the environment variable that makes
// TestOOMReadOnlyCgroupfs the child half: what the parent made, as JSON.
const readOnlyChild = "METRICSD_TEST_RO_CGROUPFS"

type readOnlySetup struct {
	Path    string // the group's cgroup path
	MemDir  string // its memory directory
	Mount   string // the memory hierarchy's mount point
	Version int
	PID     int    // a sleeper in the group: the container's init
	Fifo    string // written to start the group's memory hog
}

// TestOOMReadOnlyCgroupfs: the Collector in a mount namespace whose cgroupfs
// is read-only, as under systemd's ProtectControlGroups (the shipped unit)
// or a read-only hostPath mount, the fault made for real: the test's child
// process remounts the memory hierarchy read-only in its own mount
// namespace, so the kernel itself refuses the write, and the host's mount
// is left as it was.
//
// On v1 an OOM watch registers through cgroup.event_control, which the
// kernel now refuses with EROFS: the Collector says so once at Warn (a
// fallback the user did not ask for is announced), watches nothing, counts
// no error, and still reads a real OOM kill at the next snapshot, which
// makes the kill's one event for the sinks that take events. On v2 the
// watch is an inotify on memory.events, which a read-only mount does not
// refuse: the kill is watched as usual and nothing is said.
func TestOOMReadOnlyCgroupfs(t *testing.T) {
	if env := os.Getenv(readOnlyChild); env != "" {
		readOnlyChildTest(t, env)
		return
	}
	cgtest.NeedRoot(t)
	g := oomGroup(t)
	sleeper := g.Shell("exec sleep 600")
	fifo := t.TempDir() + "/go"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	hog := g.Shell("read x <" + fifo + "; exec " + oomHog)
	v1, unified, err := cgtest.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	s := readOnlySetup{Path: g.Path, MemDir: g.Dir("memory"), Mount: unified, Version: g.Version, PID: sleeper.Process.Pid, Fifo: fifo}
	if g.Version == 1 {
		s.Mount = v1["memory"]
	}
	env, _ := json.Marshal(s)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOOMReadOnlyCgroupfs$", "-test.v")
	cmd.Env = append(os.Environ(), readOnlyChild+"="+string(env))
	// A private mount namespace for the child only (Go makes its mounts
	// private before the exec: nothing the child does reaches the host).
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestOOMReadOnlyCgroupfs") {
		t.Fatal("the child did not pass")
	}
	err = hog.Wait()
	if ws, ok := hog.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the hog ended with %v, want killed by the OOM killer", err)
	}
	// The host's mount is still writable: the remount stayed in the child.
	file := "memory.max"
	if g.Version == 1 {
		file = "memory.limit_in_bytes"
	}
	g.Write("memory", file, strconv.Itoa(oomLimit))
}

// readOnlyChildTest is the child's half of TestOOMReadOnlyCgroupfs.
func readOnlyChildTest(t *testing.T, env string) {
	var s readOnlySetup
	if err := json.Unmarshal([]byte(env), &s); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", s.Mount, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", s.Mount, err)
	}
	probe := "memory.max"
	if s.Version == 1 {
		probe = "cgroup.event_control"
	}
	f, err := os.OpenFile(s.MemDir+"/"+probe, os.O_WRONLY, 0)
	if f != nil {
		f.Close()
	}
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("opening %s/%s for writing: %v, want EROFS", s.MemDir, probe, err)
	}

	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := runtime.Container{ID: "id-ro", Name: "ro", Runtime: "test", PID: s.PID, CgroupPath: s.Path, State: runtime.StateRunning, NetNS: runtime.NetNS{Host: true}}
	d := &eventing{ch: make(chan runtime.Event)}
	d.set(c)
	rec := newOOMRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithInterval(100*time.Millisecond),
		metricsd.WithSinks(rec), metricsd.WithNetParts(0), metricsd.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	kills := func() uint64 {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.live["ro"]
	}
	until(t, "the container in a snapshot", func() bool { return rec.hasSeen("ro") })
	watching := metricsd.OOMWatching(col)
	if err := os.WriteFile(s.Fifo, []byte("go\n"), 0); err != nil {
		t.Fatal(err)
	}
	until(t, "the OOM kill in a snapshot", func() bool { return kills() >= 1 })
	time.Sleep(300 * time.Millisecond) // a few snapshots more: the count stays 1
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if k := kills(); k != 1 {
		t.Errorf("%d OOM kills in the last snapshot, want 1", k)
	}
	said := strings.Count(logs.String(), "OOM kills are read at each snapshot only")
	t.Logf("watching %d groups; logs:\n%s", watching, logs.String())
	if s.Version == 1 {
		if watching != 0 {
			t.Errorf("watching %d groups with cgroup.event_control read-only, want 0", watching)
		}
		if said != 1 {
			t.Errorf("the refused registration was said %d times at Warn, want once", said)
		}
	} else {
		if watching != 1 {
			t.Errorf("watching %d groups on v2 with a read-only cgroupfs, want 1 (inotify needs no write)", watching)
		}
		if said != 0 {
			t.Errorf("a v2 watch was said to be refused %d times", said)
		}
	}
	if k, n := rec.eventKills("ro"); k != 1 || n != 1 {
		t.Errorf("%d OOM kill events for %d kills, want 1 for 1", n, k)
	}
	for _, st := range []metricsd.Stage{metricsd.StageOpen, metricsd.StageCgroup, metricsd.StageSink} {
		if n := col.Errors(st); n != 0 {
			t.Errorf("%d %v errors", n, st)
		}
	}
}
