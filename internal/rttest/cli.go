package rttest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Docker runs the docker CLI against the test daemon.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	host := Need(t, EnvDockerHost)[0]
	return Run(t, "docker", append([]string{"-H", host}, args...)...)
}

// DockerRun starts a detached busybox container running sleep with a name
// and labels (k=v), plus extra `docker run` flags; it returns the ID and
// removes the container at cleanup.
func DockerRun(t testing.TB, name string, labels []string, flags ...string) string {
	t.Helper()
	host, image := Need(t, EnvDockerHost, EnvImage)[0], Need(t, EnvDockerHost, EnvImage)[1]
	args := []string{"-H", host, "run", "-d", "--name", name}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	args = append(args, flags...)
	args = append(args, image, "/bin/sleep", "600")
	id := Run(t, "docker", args...)
	t.Cleanup(func() { _, _ = Try("docker", "-H", host, "rm", "-f", id) })
	return id
}

// DockerPID is the container's PID as `docker inspect` reports it.
func DockerPID(t testing.TB, id string) int {
	t.Helper()
	pid, err := strconv.Atoi(Docker(t, "inspect", "-f", "{{.State.Pid}}", id))
	if err != nil {
		t.Fatalf("docker inspect pid: %v", err)
	}
	return pid
}

// Ctr runs the ctr CLI against the test containerd in a namespace.
func Ctr(t testing.TB, ns string, args ...string) string {
	t.Helper()
	addr := Need(t, EnvContainerd)[0]
	return Run(t, "ctr", append([]string{"--address", addr, "-n", ns}, args...)...)
}

// CtrRun starts a detached busybox container (ctr run --rootfs) running
// sleep with labels (k=v) and extra `ctr run` flags; it returns the task's
// PID as `ctr task ls` shows it, and kills and removes the container at
// cleanup.
func CtrRun(t testing.TB, ns, id string, labels []string, flags ...string) int {
	t.Helper()
	rootfs := Need(t, EnvContainerd, EnvRootfs)[1]
	return ctrRun(t, ns, id, []string{"--rootfs", rootfs}, labels, flags)
}

// CtrRunImage is CtrRun from an image (CtrImport) instead of a rootfs.
func CtrRunImage(t testing.TB, ns, id, image string, labels []string, flags ...string) int {
	t.Helper()
	return ctrRun(t, ns, id, []string{image}, labels, flags)
}

func ctrRun(t testing.TB, ns, id string, source, labels, flags []string) int {
	t.Helper()
	addr := Need(t, EnvContainerd)[0]
	args := []string{"--address", addr, "-n", ns, "run", "-d"}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	args = append(args, "--cgroup", CtrCgroup(t, ns, id))
	args = append(args, flags...)
	args = append(args, source...)
	args = append(args, id, "/bin/sleep", "600")
	Run(t, "ctr", args...)
	t.Cleanup(func() { CtrRemove(addr, ns, id) })
	return CtrPID(t, ns, id)
}

// CtrImport copies the test image from dockerd into a containerd namespace
// (docker save | ctr images import) and returns its reference there.
func CtrImport(t testing.TB, ns string) string {
	t.Helper()
	v := Need(t, EnvContainerd, EnvDockerHost, EnvImage)
	ref := "docker.io/" + v[2]
	if out, _ := Try("ctr", "--address", v[0], "-n", ns, "images", "ls", "-q"); strings.Contains(out, ref) {
		return ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	save := exec.CommandContext(ctx, "docker", "-H", v[1], "save", v[2])
	imp := exec.CommandContext(ctx, "ctr", "--address", v[0], "-n", ns, "images", "import", "-")
	pipe, err := save.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := save.Start(); err != nil {
		t.Fatalf("docker save: %v", err)
	}
	out, err := imp.CombinedOutput()
	if werr := save.Wait(); err != nil || werr != nil {
		t.Fatalf("docker save | ctr images import: %v %v: %s", err, werr, out)
	}
	return ref
}

// CtrCgroup is the cgroup path CtrRun gives a container: beneath the
// parent scripts/daemons.sh chose, "<parent>/<ns>/<id>" (containerd's own
// default, "/<ns>/<id>", would make groups at the top of the tree).
func CtrCgroup(t testing.TB, ns, id string) string {
	return Need(t, EnvCgroupParent)[0] + "/" + ns + "/" + id
}

// CtrRemove kills and deletes a task and removes its container, ignoring
// errors (for cleanups).
func CtrRemove(addr, ns, id string) {
	base := []string{"--address", addr, "-n", ns}
	_, _ = Try("ctr", append(base, "task", "kill", "-s", "KILL", id)...)
	for i := 0; i < 50; i++ {
		if _, err := Try("ctr", append(base, "task", "delete", id)...); err == nil || !strings.Contains(err.Error(), "must be stopped") {
			break
		}
		_, _ = Try("sleep", "0.1")
	}
	_, _ = Try("ctr", append(base, "task", "delete", "-f", id)...)
	_, _ = Try("ctr", append(base, "container", "rm", id)...)
}

// CtrPID is a task's PID as `ctr task ls` shows it.
func CtrPID(t testing.TB, ns, id string) int {
	t.Helper()
	for _, l := range strings.Split(Ctr(t, ns, "task", "ls"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("ctr task ls: %q: %v", l, err)
			}
			return pid
		}
	}
	t.Fatalf("ctr task ls: no task %s in namespace %s", id, ns)
	return 0
}

// Label splits "k=v".
func Label(kv string) (string, string) {
	k, v, _ := strings.Cut(kv, "=")
	return k, v
}

// Labels turns "k=v" strings into a map.
func Labels(kvs ...string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v := Label(kv)
		m[k] = v
	}
	return m
}

// Errorf is fmt.Errorf, for Eventually's conditions.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// PsStart is when a process started, as `ps -o lstart=` prints it (to the
// second, in local time): an independent check of Container.Started.
func PsStart(t testing.TB, pid int) time.Time {
	t.Helper()
	out := Run(t, "ps", "-o", "lstart=", "-p", strconv.Itoa(pid))
	st, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", strings.Join(strings.Fields(out), " "), time.Local)
	if err != nil {
		// ps pads the day with a space; Fields dropped it.
		st, err = time.ParseInLocation("Mon Jan 2 15:04:05 2006", strings.Join(strings.Fields(out), " "), time.Local)
	}
	if err != nil {
		t.Fatalf("ps lstart %q: %v", out, err)
	}
	return st
}
