package job

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
)

// Job is a command started in a group of its own by Start. Wait returns its
// Totals. Signal the command through cmd.Process, as with exec.Cmd.
type Job struct {
	cmd  *exec.Cmd
	cfg  config
	fs   *cgroup.FS
	made []made // the job's directories, one per hierarchy
	grp  *cgroup.Group
	// notMetered is why the job runs outside a group of its own (matches
	// ErrNotMetered); nil when it runs in one.
	notMetered error
	// missing are the figures the group can not give, found at Start.
	missing []*MissingError
	start   time.Time
	version int
	path    string // Totals.Path

	stopCtx func() bool
	ctx     context.Context
	// mu orders killing the group (from the context's AfterFunc too) and
	// removing it.
	mu      sync.Mutex
	removed bool
	// lack are the controllers the job's group lacks (checkControllers).
	lack     cgroup.Controllers
	waitOnce sync.Once
	totals   *Totals
	waitErr  error
}

// made is the job's directory in one hierarchy.
type made struct {
	cgroup.Hierarchy
	path string // the group's cgroup path there
	dir  string // its directory
}

// Run is Start followed by Wait.
func Run(ctx context.Context, cmd *exec.Cmd, opts ...Option) (*Totals, error) {
	j, err := Start(ctx, cmd, opts...)
	if err != nil {
		return nil, err
	}
	return j.Wait()
}

// Start makes the job's group, starts cmd in it and returns without
// waiting. When no group can be made it starts cmd anyway, unmetered, and
// Wait's error will match ErrNotMetered. Start fails, running nothing, when
// an option is wrong, a limit asked for can not be set or the command can
// not be placed in the group that holds it, cmd was started
// already or sets SysProcAttr.Ptrace, UseCgroupFD or CgroupFD itself, or
// cmd.Start fails; it then leaves no group behind.
//
// The context bounds the whole job: when it ends, every process in the
// group is killed (the command alone, when unmetered), and Wait returns
// what they used.
func Start(ctx context.Context, cmd *exec.Cmd, opts ...Option) (*Job, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cmd == nil {
		return nil, errors.New("job: nil command")
	}
	if cmd.Process != nil {
		return nil, errors.New("job: command already started")
	}
	if a := cmd.SysProcAttr; a != nil && (a.Ptrace || a.UseCgroupFD || a.CgroupFD != 0) {
		return nil, errors.New("job: the command sets SysProcAttr.Ptrace, UseCgroupFD or CgroupFD, which Start needs to place it")
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	j := &Job{cmd: cmd, cfg: cfg, ctx: ctx}
	if err := j.makeGroup(ctx); err != nil {
		j.removeGroup()
		return nil, err
	}
	if err := j.startCommand(); err != nil {
		j.removeGroup()
		return nil, err
	}
	j.stopCtx = context.AfterFunc(ctx, j.killAll)
	return j, nil
}

// Group is the job's open group, for reading its figures while it runs
// (Group.Stat); nil when the job is not metered. Wait closes it.
func (j *Job) Group() *cgroup.Group { return j.grp }

// Path is the job's group (see Totals.Path); "" when not metered.
func (j *Job) Path() string {
	if j.grp == nil {
		return ""
	}
	return j.path
}

// makeGroup makes the job's directories, applies the limits and opens the
// Group. It returns an error only for what must stop the job from running
// (a limit that can not be set); a group that can not be made leaves the
// job unmetered (j.notMetered).
func (j *Job) makeGroup(ctx context.Context) error {
	log := j.cfg.log
	fs := j.cfg.fs
	if fs == nil {
		var err error
		if fs, err = cgroup.NewFS(ctx, cgroup.WithLogger(log)); err != nil {
			j.notMetered = notMetered(err)
			return j.needLimits()
		}
	}
	j.fs = fs
	if !j.cfg.parentSet && fs.Root() != "/" {
		return fmt.Errorf("job: an FS with the host root %s needs WithParent: this process's own group can not be found there", fs.Root())
	}
	hs := fs.Hierarchies(cgroup.CPU | cgroup.Memory | cgroup.IO | cgroup.Pids | cgroup.Pressure)
	if len(hs) == 0 {
		j.notMetered = notMetered(fmt.Errorf("no cgroup hierarchy holds the cpu, memory, io or pids controller (%v host)", fs.Mode()))
		return j.needLimits()
	}
	var covered cgroup.Controllers
	for _, h := range hs {
		covered |= h.Controllers
	}
	if lack := (cgroup.CPU | cgroup.Memory | cgroup.IO | cgroup.Pids) &^ covered; lack != 0 {
		j.lack |= lack
		j.missing = append(j.missing, &MissingError{Figures: figures(lack), Err: fmt.Errorf("no mounted cgroup hierarchy holds the controller (%v host)", fs.Mode())})
	}
	var own cgroup.Paths
	if !j.cfg.parentSet {
		var err error
		if own, err = fs.PIDPaths(ctx, os.Getpid()); err != nil {
			j.notMetered = notMetered(fmt.Errorf("finding this process's own group: %w", err))
			return j.needLimits()
		}
	}
	name := j.cfg.name
	if name == "" {
		var rnd [6]byte
		rand.Read(rnd[:])
		name = "metricsd-job-" + hex.EncodeToString(rnd[:])
	}
	var failed []error
	for _, h := range hs {
		m, err := j.mkdir(h, own, name)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("job: the job's group exists already, and is not the job's to share: %w", err)
		}
		if err != nil {
			failed = append(failed, err)
			j.missing = append(j.missing, &MissingError{Figures: figures(h.Controllers), Err: err})
			continue
		}
		j.made = append(j.made, m)
		log.Debug("job: group made", "dir", m.dir)
	}
	if len(j.made) == 0 {
		j.missing, j.lack = nil, 0
		j.notMetered = notMetered(errors.Join(failed...))
		return j.needLimits()
	}
	if err := j.applyLimits(); err != nil {
		return err
	}
	j.checkControllers()
	j.activateBlkio()
	p := cgroup.Paths{}
	j.version = 2
	for _, m := range j.made {
		for _, k := range m.Keys {
			p[k] = m.path
		}
		if m.Version == 1 {
			j.version = 1
		}
		if j.path == "" && m.Controllers&cgroup.CPU != 0 {
			j.path = m.path
		}
	}
	if j.path == "" {
		j.path = j.made[0].path
	}
	g, err := fs.OpenPaths(ctx, p, cgroup.CPU|cgroup.Memory|cgroup.IO|cgroup.Pids|cgroup.Pressure)
	if err != nil {
		return fmt.Errorf("job: opening the job's group: %w", err)
	}
	j.grp = g
	return nil
}

// notMeteredError is the error of a job that ran unmetered: it matches
// ErrNotMetered and its cause.
type notMeteredError struct{ err error }

func notMetered(cause error) error { return &notMeteredError{cause} }

func (e *notMeteredError) Error() string {
	return "job: " + ErrNotMetered.Error() + ": " + e.err.Error()
}
func (e *notMeteredError) Is(target error) bool { return target == ErrNotMetered }
func (e *notMeteredError) Unwrap() error        { return e.err }

// needLimits fails an unmetered job that asked for limits: they are a
// promise to the caller, kept or refused.
func (j *Job) needLimits() error {
	if j.cfg.cpu > 0 || j.cfg.memory > 0 || j.cfg.pids > 0 {
		return fmt.Errorf("job: the limits asked for can not be set, so the command is not run: %w", j.notMetered.(*notMeteredError).err)
	}
	return nil
}

// mkdir makes the job's directory in one hierarchy, under the parent
// WithParent named or the default one.
func (j *Job) mkdir(h cgroup.Hierarchy, own cgroup.Paths, name string) (made, error) {
	key := h.Keys[0]
	parent := j.cfg.parent
	if !j.cfg.parentSet {
		o, ok := own[key]
		if !ok {
			return made{}, fmt.Errorf("this process has no group in the %s hierarchy (/proc/self/cgroup)", hierName(key))
		}
		parent = j.defaultParent(key, o, h.Version)
	}
	p := path.Join(parent, name)
	dir, err := j.fs.Dir(key, p)
	if err != nil {
		return made{}, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return made{}, err
	}
	return made{Hierarchy: h, path: p, dir: dir}, nil
}

// defaultParent is where the job's group goes in a hierarchy when the
// caller names no parent: beside the group this process is in (own), so
// that on v2 that group's processes do not keep the job's group from having
// controllers ("no internal processes"). The root, or the top of a subtree
// delegated to this process (systemd marks it with the xattr
// trusted.delegate or user.delegate, or this process may not write to its
// parent), is its own parent: the job's group goes inside it, where on v2
// it has only the controllers that group already gives its children (see
// checkControllers).
func (j *Job) defaultParent(key, own string, version int) string {
	if own == "/" || strings.HasPrefix(own, "/..") {
		return own
	}
	parent := path.Dir(own)
	if version == 2 {
		if dir, err := j.fs.Dir(key, own); err == nil && delegated(dir) {
			return own
		}
	}
	if dir, err := j.fs.Dir(key, parent); err != nil || unix.Access(dir, unix.W_OK) != nil {
		return own
	}
	return parent
}

// delegated says whether systemd marked dir as the top of a delegated
// subtree.
func delegated(dir string) bool {
	var b [8]byte
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		if n, err := unix.Getxattr(dir, attr, b[:]); err == nil && n > 0 && b[0] == '1' {
			return true
		}
	}
	return false
}

// figures names the Totals fields that controllers give.
func figures(c cgroup.Controllers) []string {
	var f []string
	if c&cgroup.CPU != 0 {
		f = append(f, "CPU")
	}
	if c&cgroup.Memory != 0 {
		f = append(f, "MemoryPeak", "OOMKills")
	}
	if c&cgroup.IO != 0 {
		f = append(f, "IO")
	}
	if c&cgroup.Pids != 0 {
		f = append(f, "PidsPeak", "ForkFailures")
	}
	if c&cgroup.Pressure != 0 {
		f = append(f, "Pressure")
	}
	return f
}

func hierName(key string) string {
	if key == "" {
		return "unified (cgroup v2)"
	}
	return "v1 " + key
}

// dirOf returns the job's directory holding controller c's files, and
// whether it is a v2 one.
func (j *Job) dirOf(c cgroup.Controllers) (string, int, bool) {
	for _, m := range j.made {
		if m.Controllers&c != 0 {
			return m.dir, m.Version, true
		}
	}
	return "", 0, false
}

// applyLimits writes the limits asked for.
func (j *Job) applyLimits() error {
	type limit struct {
		ctl   cgroup.Controllers
		name  string
		files func(v2 bool) [][2]string
	}
	var ls []limit
	if j.cfg.cpu > 0 {
		quota := strconv.FormatInt(int64(j.cfg.cpu*cpuPeriodUsec), 10)
		ls = append(ls, limit{cgroup.CPU, "CPU", func(v2 bool) [][2]string {
			if v2 {
				return [][2]string{{"cpu.max", quota + " " + strconv.Itoa(cpuPeriodUsec)}}
			}
			return [][2]string{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriodUsec)}, {"cpu.cfs_quota_us", quota}}
		}})
	}
	if j.cfg.memory > 0 {
		v := strconv.FormatUint(j.cfg.memory, 10)
		ls = append(ls, limit{cgroup.Memory, "memory", func(v2 bool) [][2]string {
			if v2 {
				return [][2]string{{"memory.max", v}}
			}
			return [][2]string{{"memory.limit_in_bytes", v}}
		}})
	}
	if j.cfg.pids > 0 {
		v := strconv.FormatUint(j.cfg.pids, 10)
		ls = append(ls, limit{cgroup.Pids, "pids", func(bool) [][2]string { return [][2]string{{"pids.max", v}} }})
	}
	for _, l := range ls {
		dir, version, ok := j.dirOf(l.ctl)
		if !ok {
			return fmt.Errorf("job: the %s limit can not be set: no group in the hierarchy of that controller (%v)", l.name, j.missingFor(l.ctl))
		}
		if l.ctl == cgroup.CPU && version == 1 {
			// cpu and cpuacct may be two hierarchies: the limit is cpu's.
			for _, m := range j.made {
				if m.Version == 1 && contains(m.Keys, "cpu") {
					dir = m.dir
				}
			}
		}
		for _, f := range l.files(version == 2) {
			if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0); err != nil {
				if errors.Is(err, os.ErrNotExist) && version == 2 {
					err = fmt.Errorf("%w (the parent's cgroup.subtree_control does not enable the controller)", err)
				}
				return fmt.Errorf("job: the %s limit can not be set: %w", l.name, err)
			}
		}
	}
	return nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// missingFor says why no group exists for controller c.
func (j *Job) missingFor(c cgroup.Controllers) error {
	for _, m := range j.missing {
		for _, f := range figures(c) {
			if contains(m.Figures, f) {
				return m.Err
			}
		}
	}
	return errors.New("no hierarchy holds it")
}

// checkControllers records, on cgroup v2, the controllers the job's group
// lacks because its parent does not enable them for its children: their
// figures will be Unavailable. cpu.stat's usage, user and system times and
// the pressure files are in every v2 group; memory, io and pids are not.
func (j *Job) checkControllers() {
	for _, m := range j.made {
		if m.Version != 2 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.dir, "cgroup.controllers"))
		if err != nil {
			j.missing = append(j.missing, &MissingError{Figures: figures(m.Controllers &^ (cgroup.CPU | cgroup.Pressure)), Err: err})
			continue
		}
		have := strings.Fields(string(b))
		var lack cgroup.Controllers
		var names []string
		for _, x := range []struct {
			ctl  cgroup.Controllers
			name string
		}{{cgroup.Memory, "memory"}, {cgroup.IO, "io"}, {cgroup.Pids, "pids"}} {
			if m.Controllers&x.ctl != 0 && !contains(have, x.name) {
				lack |= x.ctl
				names = append(names, x.name)
			}
		}
		j.lack |= lack
		if lack != 0 {
			j.missing = append(j.missing, &MissingError{Figures: figures(lack),
				Err: fmt.Errorf("the parent of %s does not enable the %s controller(s) in its cgroup.subtree_control", m.path, strings.Join(names, ", "))})
		}
	}
}

// activateBlkio makes v1 block I/O countable: since Linux 6.9 blk-throttle
// counts a disk's I/O (blkio.throttle.io_service_bytes and io_serviced, all
// that v1 has left besides BFQ's) only once some group has configured a
// throttle rule on it. Writing "MAJ:MIN 0" (no limit) to the job's own
// read_bps_device activates it and sets nothing. A disk that refuses it
// (a loop device with no file) is skipped.
func (j *Job) activateBlkio() {
	for _, m := range j.made {
		if m.Version != 1 || m.Controllers&cgroup.IO == 0 {
			continue
		}
		disks, _ := os.ReadDir(filepath.Join(j.fs.Root(), "sys/block"))
		ok := 0
		for _, d := range disks {
			dev, err := os.ReadFile(filepath.Join(j.fs.Root(), "sys/block", d.Name(), "dev"))
			if err != nil {
				continue
			}
			if os.WriteFile(filepath.Join(m.dir, "blkio.throttle.read_bps_device"), append(bytes.TrimSpace(dev), " 0"...), 0) == nil {
				ok++
			}
		}
		if ok == 0 {
			j.cfg.log.Warn("job: could not activate blk-throttle on any disk: v1 block I/O may read 0 on Linux 6.9+", "dir", m.dir)
		}
	}
}

// startCommand starts the command inside the job's group (see the package
// documentation), or outside any when the job is not metered.
func (j *Job) startCommand() error {
	if j.grp == nil {
		j.cfg.log.Warn("job: running the command unmetered", "err", j.notMetered)
		j.start = time.Now()
		return j.cmd.Start()
	}
	if len(j.made) == 1 && j.made[0].Version == 2 && cloneIntoCgroup() {
		fd, err := unix.Open(j.made[0].dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("job: %w", err)
		}
		defer unix.Close(fd)
		a := j.cmd.SysProcAttr
		a.UseCgroupFD, a.CgroupFD = true, fd
		j.start = time.Now()
		err = j.cmd.Start()
		a.UseCgroupFD, a.CgroupFD = false, 0
		if err == nil {
			j.cfg.log.Debug("job: started in its group (CLONE_INTO_CGROUP)", "pid", j.cmd.Process.Pid, "group", j.path)
		}
		return err
	}
	return j.startTraced()
}

// cloneIntoCgroup says whether the kernel has clone3's CLONE_INTO_CGROUP
// (Linux 5.7).
func cloneIntoCgroup() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	fmt.Sscanf(rel, "%d.%d", &major, &minor)
	return major > 5 || major == 5 && minor >= 7
}

// startTraced starts the command traced (PTRACE_TRACEME just before its
// execve), so that it stops once the exec has succeeded and before the new
// program runs; moves it into the job's directory in every hierarchy; and
// lets it go (PTRACE_DETACH). The tracer is the thread that forked, so all
// this happens on one locked thread, in a goroutine of its own: should the
// detach fail, the goroutine ends still locked, and its thread's exit
// detaches the command.
func (j *Job) startTraced() error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		detached, err := j.startTracedLocked()
		if detached {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// startTracedLocked is startTraced on its locked thread; detached is false
// when the command may still be traced by it.
func (j *Job) startTracedLocked() (detached bool, err error) {
	a := j.cmd.SysProcAttr
	a.Ptrace = true
	j.start = time.Now()
	err = j.cmd.Start()
	a.Ptrace = false
	if err != nil {
		return true, err
	}
	pid := j.cmd.Process.Pid
	sig, err := waitStop(pid)
	if err != nil {
		// It died before it stopped (killed from outside): Wait reaps it.
		j.cfg.log.Warn("job: the command ended before it could be placed", "pid", pid, "err", err)
		j.unplaced(fmt.Errorf("the command ended before it could be moved into its group: %w", err))
		return true, nil
	}
	var placeErr []error
	var limitErr error
	for i := range j.made {
		m := &j.made[i]
		procs := filepath.Join(m.dir, "cgroup.procs")
		err := j.cfg.placeFault(procs)
		if err == nil {
			err = os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0)
		}
		if err != nil {
			placeErr = append(placeErr, err)
			if l := j.limitIn(m); l != "" && limitErr == nil {
				limitErr = fmt.Errorf("job: the %s limit asked for would not hold: the command could not be moved into its group there, so it is not run: %w", l, err)
			}
		}
	}
	if limitErr != nil {
		// It is stopped at its exec, before the program's first
		// instruction: it ends there, and Start reaps it.
		unix.Kill(pid, unix.SIGKILL)
		j.cmd.Wait()
		return true, limitErr
	}
	// The stop was the exec's SIGTRAP, which goes nowhere; or a signal that
	// came before the exec, which the command gets back.
	if sig == unix.SIGTRAP {
		sig = 0
	}
	detached = true
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, uintptr(sig), 0, 0); e != 0 {
		j.cfg.log.Warn("job: PTRACE_DETACH failed; ending the tracing thread instead", "pid", pid, "err", e)
		detached = false
	}
	if len(placeErr) == len(j.made) {
		j.unplaced(fmt.Errorf("moving the command into its group: %w", errors.Join(placeErr...)))
		return detached, nil
	}
	if len(placeErr) > 0 {
		// A hierarchy it could not join: its figures would be another
		// group's, so they are not reported.
		j.missing = append(j.missing, &MissingError{Figures: []string{"(see the error)"}, Err: errors.Join(placeErr...)})
	}
	j.cfg.log.Debug("job: started and placed in its group (traced to its exec)", "pid", pid, "group", j.path)
	return detached, nil
}

// limitIn names the limit asked for that hierarchy m holds ("" for none).
func (j *Job) limitIn(m *made) string {
	switch {
	case j.cfg.pids > 0 && m.Controllers&cgroup.Pids != 0:
		return "pids"
	case j.cfg.memory > 0 && m.Controllers&cgroup.Memory != 0:
		return "memory"
	case j.cfg.cpu > 0 && m.Controllers&cgroup.CPU != 0 && (m.Version == 2 || contains(m.Keys, "cpu")):
		return "CPU"
	}
	return ""
}

// unplaced turns a job whose command could not be placed into an
// unmetered one: the group is another's figures' no longer, and is removed
// at Wait.
func (j *Job) unplaced(err error) {
	j.notMetered = notMetered(err)
	j.missing = nil
	if j.grp != nil {
		j.grp.Close()
		j.grp = nil
	}
}

// cldTrapped is siginfo's si_code for a traced child's stop.
const cldTrapped = 4

// sigchldInfo is the start of a siginfo_t for SIGCHLD: the union begins
// at pointer alignment (16 on 64-bit, 12 on 32-bit systems).
type sigchldInfo struct {
	signo, errno, code int32
	u                  struct {
		_      [0]uintptr
		pid    int32
		uid    uint32
		status int32
	}
	_ [128]byte
}

// waitStop waits for a traced child's first stop without reaping it (an
// exit is left for exec.Cmd.Wait) and returns the stopping signal.
func waitStop(pid int) (unix.Signal, error) {
	for {
		var info sigchldInfo
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PID, uintptr(pid), uintptr(unsafe.Pointer(&info)),
			unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT|unix.WALL, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return 0, e
		case info.code != cldTrapped:
			return 0, fmt.Errorf("child state %d (status %d) instead of a trace stop", info.code, info.u.status)
		}
		return unix.Signal(info.u.status), nil
	}
}

// Wait waits for the command to exit and, unless WithKillLeftovers or the
// context says to kill them, for every other process of the job's group;
// then reads the group's totals, closes and removes it. It returns the
// Totals, also with an error: one matching ErrNotMetered (the job ran
// unmetered), *MissingError (figures the group could not give), an error
// of the command's own I/O (see exec.Cmd.Wait), the context's error when it
// ended the job, or a group that could not be removed. The command's exit
// status is never an error: see Totals.ExitCode and Signal. Wait may be
// called more than once; it returns the same.
func (j *Job) Wait() (*Totals, error) {
	j.waitOnce.Do(func() { j.totals, j.waitErr = j.wait() })
	return j.totals, j.waitErr
}

func (j *Job) wait() (*Totals, error) {
	var errs []error
	werr := j.cmd.Wait()
	wall := time.Since(j.start)
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		errs = append(errs, werr)
	}
	t := &Totals{Wall: wall, State: j.cmd.ProcessState, ExitCode: -1}
	if st := j.cmd.ProcessState; st != nil {
		t.ExitCode = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Signal = unix.SignalName(ws.Signal())
		}
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			t.Tree = rusage(ru)
		}
	}
	if j.grp != nil {
		if j.cfg.kill {
			j.killGroup()
		}
		if err := j.waitEmpty(); err != nil {
			errs = append(errs, err)
		}
		j.read(t, &errs)
	}
	j.stopCtx()
	if err := j.ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("job: ended by its context: %w", err))
	}
	if err := j.removeGroup(); err != nil {
		errs = append(errs, err)
	}
	if j.notMetered != nil {
		errs = append([]error{j.notMetered}, errs...)
	}
	for _, m := range j.missing {
		errs = append(errs, m)
	}
	return t, errors.Join(errs...)
}

// read fills t's cgroup figures from the group, now empty. A figure of a
// controller the group has that the kernel did not give (a file an older
// kernel lacks, PSI switched off) is Unavailable, and said so.
func (j *Job) read(t *Totals, errs *[]error) {
	var s cgroup.Stats
	if err := j.grp.Stat(context.WithoutCancel(j.ctx), &s); err != nil {
		*errs = append(*errs, &MissingError{Figures: []string{"(see the error)"}, Err: err})
	}
	t.Path, t.Version = j.path, j.version
	t.CPU = CPU{Total: s.CPU.Usage, User: s.CPU.User, System: s.CPU.System, Throttled: s.CPU.ThrottledTime}
	t.MemoryPeak = s.Memory.Peak
	t.OOMKills = s.Memory.Events.OOMKill
	t.IO = IO{ReadBytes: s.IO.ReadBytes, WriteBytes: s.IO.WriteBytes, ReadOps: s.IO.ReadOps, WriteOps: s.IO.WriteOps}
	t.PidsPeak, t.ForkFailures = s.Pids.Peak, s.Pids.ForkFailures
	t.Pressure = s.Pressure

	var absent []string
	check := func(c cgroup.Controllers, name string, vs ...cgroup.Value) {
		if _, _, ok := j.dirOf(c); !ok || j.lack&c != 0 {
			return // said already, or no such hierarchy (PSI on pure v1)
		}
		for _, v := range vs {
			if v.State == cgroup.Unavailable {
				absent = append(absent, name)
				return
			}
		}
	}
	check(cgroup.CPU, "CPU", t.CPU.Total, t.CPU.User, t.CPU.System)
	check(cgroup.Memory, "MemoryPeak", t.MemoryPeak)
	check(cgroup.Memory, "OOMKills", t.OOMKills)
	check(cgroup.IO, "IO", t.IO.ReadBytes, t.IO.WriteBytes, t.IO.ReadOps, t.IO.WriteOps)
	check(cgroup.Pids, "PidsPeak", t.PidsPeak)
	check(cgroup.Pids, "ForkFailures", t.ForkFailures)
	p := &t.Pressure
	check(cgroup.Pressure, "Pressure", p.CPU.Some.Total, p.Memory.Some.Total, p.IO.Some.Total)
	if len(absent) > 0 {
		*errs = append(*errs, &MissingError{Figures: absent, Err: errors.New("the kernel gave no figure: a file it lacks (an older kernel, PSI switched off)")})
	}
}

// procsDir is the job's directory whose cgroup.procs lists its processes.
func (j *Job) procsDir() string { return j.made[0].dir }

// waitEmpty waits until no process is left in the group, polling
// cgroup.procs (which lists no zombie), 2 ms at first, then up to every
// 100 ms. When the context ends it kills what is left and waits for that.
//
// By then the group has been charged all its CPU: measured on Linux 6.18
// (v1), cpuacct.usage does not move once cgroup.procs is empty (within
// 0.1 ms of polling), also for a 256 MiB process whose main thread exits
// first. So it does not wait for the zombies to be reaped as well
// (pids.current 0), which would stall Wait for as long as their reaper
// (init, or a runner that is PID 1 of its container) takes.
func (j *Job) waitEmpty() error {
	procs := filepath.Join(j.procsDir(), "cgroup.procs")
	delay := 2 * time.Millisecond
	killed := false
	for {
		b, err := os.ReadFile(procs)
		if err != nil {
			return fmt.Errorf("job: waiting for the group to empty: %w", err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		if j.ctx.Err() != nil && !killed {
			j.killGroup()
			killed, delay = true, 2*time.Millisecond
		}
		select {
		case <-time.After(delay):
		case <-j.ctxDone(killed):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// ctxDone is the context's Done channel until the group was killed for it.
func (j *Job) ctxDone(killed bool) <-chan struct{} {
	if killed {
		return nil
	}
	return j.ctx.Done()
}

// killAll ends the job when its context ends: the group's processes, or the
// command alone when unmetered.
func (j *Job) killAll() {
	if j.grp != nil {
		j.killGroup()
		return
	}
	j.cmd.Process.Kill()
}

// killGroup kills every process in the job's group: with cgroup.kill where
// the kernel has it (v2, Linux 5.14), else each listed process through a
// pidfd, checked to be still in the group once the pidfd pins it (a PID
// read from cgroup.procs may have been reused by then), until none is left.
func (j *Job) killGroup() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.removed {
		return
	}
	for _, m := range j.made {
		if m.Version == 2 && os.WriteFile(filepath.Join(m.dir, "cgroup.kill"), []byte("1"), 0) == nil {
			return
		}
	}
	procs := filepath.Join(j.procsDir(), "cgroup.procs")
	for range 1000 {
		pids := readPids(procs)
		if len(pids) == 0 {
			return
		}
		fds := make(map[int]int, len(pids))
		for _, pid := range pids {
			fd, err := unix.PidfdOpen(pid, 0)
			switch {
			case err == nil:
				fds[pid] = fd
			case err == unix.ENOSYS:
				unix.Kill(pid, unix.SIGKILL) // Linux < 5.3: no way to pin it
			}
		}
		for _, pid := range readPids(procs) {
			if fd, ok := fds[pid]; ok {
				unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			}
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		time.Sleep(time.Millisecond)
	}
	j.cfg.log.Warn("job: processes still in the group after 1000 rounds of SIGKILL", "dir", j.procsDir())
}

func readPids(procs string) []int {
	b, _ := os.ReadFile(procs)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeGroup closes the Group and removes the job's directories (a
// killed task leaves its group asynchronously: rmdir is retried for up to
// a second).
func (j *Job) removeGroup() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.removed = true
	if j.grp != nil {
		j.grp.Close()
	}
	var errs []error
	for _, m := range j.made {
		var err error
		for i := 0; i < 100; i++ {
			if err = unix.Rmdir(m.dir); err == nil || err == unix.ENOENT {
				err = nil
				break
			}
			if err != unix.EBUSY {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, &os.PathError{Op: "rmdir", Path: m.dir, Err: err})
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("job: removing the job's group: %w", errors.Join(errs...))
	}
	return nil
}

func rusage(ru *syscall.Rusage) Rusage {
	nz := func(v int64) uint64 { return uint64(max(v, 0)) }
	return Rusage{
		User:                time.Duration(ru.Utime.Nano()),
		System:              time.Duration(ru.Stime.Nano()),
		MaxRSS:              nz(int64(ru.Maxrss)) << 10,
		ReadBytes:           nz(int64(ru.Inblock)) * 512,
		WriteBytes:          nz(int64(ru.Oublock)) * 512,
		MinorFaults:         nz(int64(ru.Minflt)),
		MajorFaults:         nz(int64(ru.Majflt)),
		VoluntarySwitches:   nz(int64(ru.Nvcsw)),
		InvoluntarySwitches: nz(int64(ru.Nivcsw)),
	}
}
