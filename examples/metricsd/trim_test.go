//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// rssFileKB is the process's resident file-backed pages (RssFile).
func rssFileKB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestTrimBinary: after trimBinary the test binary's own resident file
// pages (its code and read-only data, most of them mapped by the tests run
// so far and by the kernel's fault-around) are at most half of what they
// were, and the function still runs afterwards (its own code faults back).
func TestTrimBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("MADV_PAGEOUT of a file needs its owner or CAP_FOWNER; run as root")
	}
	before := rssFileKB(t)
	n := trimBinary()
	if n == 0 {
		t.Skip("no mapping paged out (a kernel before 5.4?)")
	}
	after := rssFileKB(t)
	t.Logf("RssFile %d kB -> %d kB, %d kB of mappings paged out", before, after, n>>10)
	if after > before/2 {
		t.Errorf("RssFile %d kB -> %d kB: want at most half", before, after)
	}
}

// exeMappedKB sums, over the read-only mappings of a process's executable,
// their size and their resident pages (/proc/<pid>/smaps).
func exeMappedKB(t *testing.T, pid int) (size, rss int) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && strings.HasSuffix(l, " "+exe) && f[1][1] != 'w'
			continue
		}
		if !in || len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Size:":
			size += n
		case "Rss:":
			rss += n
		}
	}
	return size, rss
}

// TestDaemonTrimsBinary: the static daemon, a few snapshots after start,
// keeps resident at most a third of its executable's code and read-only
// data. Without the trim, start-up and the kernel's fault-around leave ~90%
// of them resident for good.
func TestDaemonTrimsBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read every cgroup and to page out the binary")
	}
	cmd := exec.Command(daemonBinary(t), "-runtime", "cgroupfs", "-interval", "200ms", "-net", "none", "-listen", "")
	var out, errOut rttest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if !sinktest.Poll(15*time.Second, func() bool { return len(snapshotLine.FindAllString(out.String(), -1)) >= 5 }) {
		t.Fatalf("fewer than 5 snapshots in 15 s; stderr:\n%s", errOut.String())
	}
	size, rss := exeMappedKB(t, cmd.Process.Pid)
	t.Logf("executable's read-only mappings: %d kB, %d kB resident", size, rss)
	if size == 0 || rss > size/3 {
		t.Errorf("%d kB of the executable's %d kB resident after 5 snapshots: want at most a third", rss, size)
	}
}
