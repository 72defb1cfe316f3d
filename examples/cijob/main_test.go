package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary plays three parts: cijob itself (first argument
// "cijob-main"), the shim cijob re-executes, and the job (CIJOB_TEST_BURN,
// inherited through cijob), which allocates
// memory, burns CPU and reports its own getrusage figures: the truth cijob's
// summary is checked against.
func TestMain(m *testing.M) {
	if shimming() {
		shim()
	}
	if len(os.Args) > 1 && os.Args[1] == "cijob-main" {
		os.Exit(run(os.Args[2:], os.Stderr))
	}
	if os.Getenv("CIJOB_TEST_BURN") != "" {
		os.Exit(burn())
	}
	os.Exit(m.Run())
}

type truth struct {
	CPUSeconds  float64
	AllocBytes  int
	MaxRSSBytes int64 // the job's peak resident set (larger than AllocBytes under -race)
}

var keep []byte

func burn() int {
	mib, _ := strconv.Atoi(os.Getenv("CIJOB_TEST_MEM_MIB"))
	keep = make([]byte, mib<<20)
	for i := 0; i < len(keep); i += 4096 {
		keep[i] = 1
	}
	d, _ := time.ParseDuration(os.Getenv("CIJOB_TEST_BURN"))
	if os.Getenv("CIJOB_TEST_SLEEP") != "" {
		time.Sleep(d)
	} else {
		var ru unix.Rusage
		for {
			unix.Getrusage(unix.RUSAGE_SELF, &ru)
			if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= d {
				break
			}
			for i := 0; i < 1e6; i++ {
				keep[i%len(keep)]++
			}
		}
	}
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	b, _ := json.Marshal(truth{CPUSeconds: float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, AllocBytes: len(keep), MaxRSSBytes: ru.Maxrss << 10})
	os.WriteFile(os.Getenv("CIJOB_TEST_TRUTH"), b, 0o600)
	code, _ := strconv.Atoi(os.Getenv("CIJOB_TEST_EXIT"))
	return code
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cijob makes cgroups (CI runs as root)")
	}
}

// jobGroups lists the cgroup directories cijob made that still exist.
func jobGroups(t *testing.T) []string {
	m, _ := filepath.Glob("/sys/fs/cgroup/*/metricsd-cijob-*")
	n, _ := filepath.Glob("/sys/fs/cgroup/metricsd-cijob-*")
	return append(m, n...)
}

func within(t *testing.T, name string, got, want, frac float64) {
	t.Helper()
	if got < want*(1-frac) || got > want*(1+frac) {
		t.Errorf("%s = %.3f, want %.3f within %.0f%%", name, got, want, frac*100)
	}
}

// TestFigures runs a job that allocates 200 MiB and burns 1.5 s of CPU, and
// checks cijob's figures against what the job measured of itself.
func TestFigures(t *testing.T) {
	needRoot(t)
	before := len(jobGroups(t))
	dir := t.TempDir()
	t.Setenv("CIJOB_TEST_BURN", "1500ms")
	t.Setenv("CIJOB_TEST_MEM_MIB", "200")
	t.Setenv("CIJOB_TEST_EXIT", "3")
	t.Setenv("CIJOB_TEST_TRUTH", filepath.Join(dir, "truth.json"))
	var stderr strings.Builder
	code := run([]string{"-json", filepath.Join(dir, "sum.json"), "--", os.Args[0], "-test.run=^$"}, &stderr)
	os.Unsetenv("CIJOB_TEST_BURN")
	if code != 3 {
		t.Errorf("exit status %d, want the job's 3\n%s", code, stderr.String())
	}
	var tr truth
	var sum Summary
	for name, v := range map[string]any{"truth.json": &tr, "sum.json": &sum} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stderr.String())
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s", stderr.String())
	if sum.CPUSeconds == nil || sum.UserSeconds == nil || sum.SystemSeconds == nil || sum.PeakMemoryBytes == nil || sum.PeakPids == nil {
		t.Fatalf("missing figures: %+v", sum)
	}
	within(t, "cpu seconds", *sum.CPUSeconds, tr.CPUSeconds, 0.10)
	within(t, "user+system seconds", *sum.UserSeconds+*sum.SystemSeconds, tr.CPUSeconds, 0.10)
	within(t, "peak memory", float64(*sum.PeakMemoryBytes), float64(tr.MaxRSSBytes), 0.10)
	if *sum.PeakMemoryBytes < uint64(tr.AllocBytes) {
		t.Errorf("peak memory %d below the %d bytes the job allocated and touched", *sum.PeakMemoryBytes, tr.AllocBytes)
	}
	if sum.WallSeconds < 1.5 || *sum.PeakPids < 1 || sum.ExitCode != 3 || sum.Samples < 2 {
		t.Errorf("wall %.2f peak pids %d exit %d samples %d", sum.WallSeconds, *sum.PeakPids, sum.ExitCode, sum.Samples)
	}
	if !strings.Contains(stderr.String(), "cijob: exit 3, wall ") {
		t.Errorf("summary line: %q", stderr.String())
	}
	if n := len(jobGroups(t)); n != before {
		t.Errorf("job cgroups left behind: %v", jobGroups(t))
	}
}

// TestSIGINT interrupts cijob while its job sleeps: the job gets the signal,
// cijob exits with the job's status and removes the cgroup.
func TestSIGINT(t *testing.T) {
	needRoot(t)
	before := len(jobGroups(t))
	cmd := exec.Command(os.Args[0], "cijob-main", "-json", filepath.Join(t.TempDir(), "s.json"), "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CIJOB_TEST_BURN=30s", "CIJOB_TEST_SLEEP=1",
		"CIJOB_TEST_MEM_MIB=1", "CIJOB_TEST_TRUTH="+filepath.Join(t.TempDir(), "t.json"))
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the job is in its group, then interrupt cijob.
	deadline := time.Now().Add(10 * time.Second)
	for len(jobGroups(t)) == before {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cijob made no cgroup in 10 s\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the shim exec the job
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	code := exitCode(err)
	if !strings.Contains(out.String(), "cijob: exit 130,") {
		t.Errorf("no summary for the interrupted job: %q", out.String())
	}
	if code != 128+int(syscall.SIGINT) {
		t.Errorf("exit status %d, want %d (the job died of SIGINT)\n%s", code, 128+int(syscall.SIGINT), out.String())
	}
	if n := len(jobGroups(t)); n != before {
		t.Errorf("job cgroups left behind after SIGINT: %v", jobGroups(t))
	}
}

func TestUsage(t *testing.T) {
	var stderr strings.Builder
	if code := run(nil, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: cijob") {
		t.Errorf("no command: exit %d, %q", code, stderr.String())
	}
	if code := run([]string{"--", "/no/such/command"}, &stderr); code != 127 {
		t.Errorf("missing command: exit %d", code)
	}
}
