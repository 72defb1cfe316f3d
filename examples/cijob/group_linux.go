package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
)

// jobGroup is the cgroup made for one job: a directory per hierarchy.
type jobGroup struct {
	path  string   // cgroup path, "/metricsd-cijob-<hex>"
	dirs  []string // its directory in every hierarchy
	procs []string // their cgroup.procs files
}

// newJobGroup makes the job's group at the top of every hierarchy cijob
// reads: cpu, cpuacct, memory, blkio and pids on v1; the unified hierarchy
// on v2 (whose root must delegate those controllers, as systemd's does).
func newJobGroup(fs *cgroup.FS) (*jobGroup, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	j := &jobGroup{path: "/metricsd-cijob-" + hex.EncodeToString(rnd[:])}
	hier := []string{"cpu", "cpuacct", "memory", "blkio", "pids"}
	if fs.Mode() == cgroup.Unified {
		hier = []string{""}
	}
	for _, h := range hier {
		mp, ok := fs.MountPoint(h)
		if !ok {
			continue
		}
		dir := filepath.Join(mp, j.path)
		if err := os.Mkdir(dir, 0o755); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue // co-mounted with a hierarchy already done (cpu,cpuacct)
			}
			j.remove()
			return nil, err
		}
		j.dirs = append(j.dirs, dir)
		j.procs = append(j.procs, filepath.Join(dir, "cgroup.procs"))
	}
	if len(j.dirs) == 0 {
		return nil, fmt.Errorf("no cgroup hierarchy to use (mode %v)", fs.Mode())
	}
	return j, nil
}

// pidsPeak reads pids.peak (Linux 6.1+ on v2, 6.x on v1) where present.
func (j *jobGroup) pidsPeak() (uint64, bool) {
	for _, d := range j.dirs {
		if b, err := os.ReadFile(filepath.Join(d, "pids.peak")); err == nil {
			if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

// remove kills what the job left running in its group (v2 cgroup.kill, else
// each listed process), then removes the group's directories.
func (j *jobGroup) remove() error {
	var errs []error
	for _, d := range j.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0); err != nil {
			if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
						unix.Kill(pid, unix.SIGKILL)
					}
				}
			}
		}
	}
	for _, d := range j.dirs {
		var err error
		for i := 0; i < 100; i++ { // killed tasks leave the group asynchronously
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
