// Package pidreuse makes a PID be reused on demand, for tests: a private PID
// namespace (unshare --pid --fork --mount-proc) whose init is a shell the
// test drives, and a host root, Root, under which /proc is that namespace's.
// A library pointed at Root (its WithRoot options) sees the namespace's PIDs;
// since only the test's shell forks there, writing ns_last_pid before a fork
// gives the child exactly the PID the test chose: deterministically the PID
// of a process that has just exited.
package pidreuse

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NS is a private PID namespace driven by a test.
type NS struct {
	// Root is a host root prefix whose proc/ is the namespace's procfs and
	// whose other paths (sys/fs/cgroup) are the host's: /proc/<init>/root.
	Root string
	// Init is the host PID of the namespace's init (the shell).
	Init int

	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	seq int
}

// New starts the namespace; it skips the test unless it runs as root with
// unshare(1) installed. The namespace and everything in it is killed at
// cleanup.
func New(t testing.TB) *NS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a private PID namespace (CI runs as root)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) from util-linux")
	}
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "sh")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	n := &NS{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(n.stop)
	// The shell is unshare's only child.
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	for i := 0; ; i++ {
		b, _ := os.ReadFile(children)
		if f := strings.Fields(string(b)); len(f) == 1 {
			n.Init, _ = strconv.Atoi(f[0])
			break
		}
		if i == 200 {
			t.Fatalf("unshare started no shell (%s)", children)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.Root = fmt.Sprintf("/proc/%d/root", n.Init)
	if got := n.Do("echo $$"); got != "1" {
		t.Fatalf("namespace init says its PID is %q, want 1", got)
	}
	return n
}

// Do runs a shell command line in the namespace's init shell and returns
// what it printed, trimmed.
func (n *NS) Do(line string) string {
	n.t.Helper()
	n.seq++
	end := fmt.Sprintf("--end-%d--", n.seq)
	if _, err := fmt.Fprintf(n.in, "%s\necho %s\n", line, end); err != nil {
		n.t.Fatalf("namespace shell: %v", err)
	}
	var b strings.Builder
	for {
		l, err := n.out.ReadString('\n')
		if err != nil {
			n.t.Fatalf("namespace shell: %v (after %q)", err, b.String())
		}
		if strings.TrimSpace(l) == end {
			return strings.TrimSpace(b.String())
		}
		b.WriteString(l)
	}
}

// Spawn starts `sleep 600` in the namespace: first moved into each cgroup
// whose cgroup.procs file is given (host paths), in a network namespace of
// its own when newNet. It returns the process's PID in the namespace (the
// PID beneath Root/proc).
func (n *NS) Spawn(newNet bool, procsFiles ...string) int {
	n.t.Helper()
	return n.spawn(0, newNet, procsFiles)
}

// SpawnAt is Spawn with a chosen PID, which must be free (Kill the process
// that had it first): ns_last_pid is set to pid-1 just before the fork. It
// first waits two clock ticks (20 ms), so that the new process's start time
// (in ticks) differs from that of a process that had the PID just before:
// a reuse within one tick is not told apart by start time.
func (n *NS) SpawnAt(pid int, newNet bool, procsFiles ...string) {
	n.t.Helper()
	time.Sleep(20 * time.Millisecond)
	if got := n.spawn(pid, newNet, procsFiles); got != pid {
		n.t.Fatalf("spawned PID %d, want %d", got, pid)
	}
}

func (n *NS) spawn(pid int, newNet bool, procsFiles []string) int {
	n.t.Helper()
	var b strings.Builder
	if pid > 0 {
		fmt.Fprintf(&b, "echo %d > /proc/sys/kernel/ns_last_pid; ", pid-1)
	}
	if newNet {
		b.WriteString("unshare -n ")
	}
	b.WriteString(`sh -c 'for f in "$@"; do echo $$ > "$f" || exit 1; done; exec sleep 600' sh`)
	for _, f := range procsFiles {
		b.WriteString(" " + strconv.Quote(f))
	}
	b.WriteString(" & echo $!")
	out := n.Do(b.String())
	got, err := strconv.Atoi(out)
	if err != nil {
		n.t.Fatalf("spawn: %q", out)
	}
	// Wait until it runs sleep (moved into its cgroups, namespace made).
	for i := 0; ; i++ {
		b, _ := os.ReadFile(fmt.Sprintf("%s/proc/%d/cmdline", n.Root, got))
		if strings.HasPrefix(string(b), "sleep\x00") {
			return got
		}
		if i == 500 {
			n.t.Fatalf("process %d did not start sleep (cmdline %q)", got, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill kills a process of the namespace and reaps it: its PID is free when
// Kill returns.
func (n *NS) Kill(pid int) {
	n.t.Helper()
	n.Do(fmt.Sprintf("kill -9 %d; wait %d 2>/dev/null", pid, pid))
	if _, err := os.Stat(fmt.Sprintf("%s/proc/%d", n.Root, pid)); err == nil {
		n.t.Fatalf("process %d still exists after kill and wait", pid)
	}
}

// HostPID is the host PID of a process of the namespace (its NSpid line).
func (n *NS) HostPID(pid int) int {
	n.t.Helper()
	// /proc/<host pid>/status lists the PIDs in every namespace; find ours
	// among the init's children.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.Init, n.Init))
	if err != nil {
		n.t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		st, err := os.ReadFile("/proc/" + f + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
				ids := strings.Fields(v)
				if len(ids) == 2 && ids[1] == strconv.Itoa(pid) {
					h, _ := strconv.Atoi(ids[0])
					return h
				}
			}
		}
	}
	n.t.Fatalf("no process %d in the namespace", pid)
	return 0
}

func (n *NS) stop() {
	n.in.Close()
	// Killing the namespace's init kills every process in it.
	if n.Init > 0 {
		_ = syscall.Kill(n.Init, syscall.SIGKILL)
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}
