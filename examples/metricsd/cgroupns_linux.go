//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// cgroupNSEnv marks a process that enterHostCgroupNS re-executed, so that
// it does not try again.
const cgroupNSEnv = "METRICSD_ENTERED_HOST_CGROUPNS"

// climbs reports whether the cgroup file of a process (/proc/<pid>/cgroup)
// names a cgroup outside the reading thread's cgroup namespace: the kernel
// shows paths relative to the reader's namespace, and one above it as
// "/../..".
func climbs(cgroupFile string) (bool, error) {
	f, err := os.Open(cgroupFile)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		if _, rest, ok := strings.Cut(sc.Text(), ":"); ok {
			if _, path, ok := strings.Cut(rest, ":"); ok && (path == "/.." || strings.HasPrefix(path, "/../")) {
				return true, nil
			}
		}
	}
	return false, sc.Err()
}

// enterHostCgroupNS moves the daemon into the host's cgroup namespace when
// it runs in another one, and returns only when it need not or can not.
//
// /proc/<pid>/cgroup shows a process's cgroup relative to the reader's
// cgroup namespace. A container runtime may give a container a namespace of
// its own (containerd's CRI does so for every unprivileged container on a
// cgroup v2 node, and Kubernetes has no field to ask otherwise), and from
// there every other container's path climbs out of it ("/../../kubepods/
// ...") by a depth that names no directory: no cgroup could be opened, and
// the daemon would report no container at all.
//
// So when root is not "/" and the host's PID 1 (beneath root: the host's
// PID namespace is shared, --pid=host or hostPID) shows a climbing path,
// it enters the cgroup namespace of PID 1, or else of PID 2 (kthreadd, a
// kernel thread: always in the initial namespaces; PID 1 may be out of
// reach of ptrace checks where PID 2 is not), with setns(2), which needs
// CAP_SYS_ADMIN (the network hop needs it too) and CAP_SYS_PTRACE to open
// the namespace, checks that PID 1's path no longer climbs, and
// re-executes itself: a namespace entered by one thread is not the whole
// process's, but execve keeps the calling thread's.
//
// A failure is logged as a warning: the daemon then runs as before and
// says, container by container, which cgroups it can not place.
func enterHostCgroupNS(root string, log *slog.Logger) {
	if root == "" || root == "/" || os.Getenv(cgroupNSEnv) != "" {
		return
	}
	pid1 := filepath.Join(root, "proc/1/cgroup")
	out, err := climbs(pid1)
	if err != nil {
		log.Warn("metricsd: can not tell whether it runs in the host's cgroup namespace", "err", err)
		return
	}
	if !out {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		log.Warn("metricsd: in a cgroup namespace of its own, and can not re-execute itself", "err", err)
		return
	}
	// On a locked thread, not the main one: if entering or executing
	// fails, the goroutine ends locked, and its thread with it.
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		var errs []error
		for _, pid := range []string{"1", "2"} {
			ns := filepath.Join(root, "proc", pid, "ns/cgroup")
			f, err := os.Open(ns)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWCGROUP)
			f.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("setns %s: %w", ns, err))
				continue
			}
			if still, err := climbs(pid1); err != nil || still {
				errs = append(errs, fmt.Errorf("in the namespace of %s, %s still names a cgroup outside it (%v)", ns, pid1, err))
				break // this thread's namespace is now neither: let it go
			}
			log.Info("metricsd: in a cgroup namespace of its own: entered the host's, re-executing", "ns", ns)
			err = syscall.Exec(exe, os.Args, append(os.Environ(), cgroupNSEnv+"=1"))
			errs = append(errs, fmt.Errorf("execve %s: %w", exe, err))
			break
		}
		done <- errors.Join(errs...)
	}()
	log.Warn("metricsd: in a cgroup namespace of its own, and can not enter the host's (it needs CAP_SYS_ADMIN and CAP_SYS_PTRACE); cgroups of other containers may not be found", "err", <-done)
}
