// Package cgroupfs discovers containers with no daemon at all: it walks the
// cgroup tree beneath the host root and reports every group that holds
// processes and whose path looks like a container or a service. It is the
// embedded default that makes the library useful on any Linux host, and the
// fallback runtime/detect picks when no Docker or containerd answers.
//
// Recognised paths (the last one or two elements of a group's path):
//
//	docker/<64 hex>                                     Docker, cgroupfs driver
//	.../docker-<64 hex>.scope                           Docker, systemd driver
//	machine.slice/libpod-<64 hex>.scope                 Podman, systemd driver
//	libpod_parent/libpod-<64 hex>                       Podman, cgroupfs driver
//	kubepods[/<qos>]/pod<uid>/<id>                      Kubernetes, cgroupfs driver
//	kubepods.slice/.../...-pod<uid>.slice/<rt>-<id>.scope  Kubernetes, systemd driver
//	.../cri-containerd-<id>.scope, .../crio-<id>.scope  CRI runtimes
//	<namespace>/<id>                                    containerd (ctr, nerdctl)
//	.../<unit>.service                                  systemd services
//
// A user's systemd manager (user@<uid>.service) is walked into, for the
// containers of rootless Podman and Docker beneath it; it and the user's
// services are not reported. On v1 and hybrid hosts a <namespace>/<id>
// group counts only where it is in the cpu hierarchy too, as runc makes
// them: a group the memory hierarchy has alone is not a container.
//
// The ID and name come from the path; Container.Labels holds one label,
// LabelKind, saying which of the above matched. The PID is the group's init
// process (the one whose parent is outside the group). Watch rescans
// periodically (every 10 s unless WithInterval says otherwise) and reports
// the differences. Scans (List's too) are incremental: a directory already
// seen, with the same inode, is not classified again; each recognised
// group's cgroup.procs and its init's /proc/<pid>/stat are read at every
// scan, which is how a group that emptied, an init that exited and a PID
// reused by another process are told.
package cgroupfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/proc"
	"github.com/metricsd/metricsd/runtime"
)

// LabelKind is the label that says what kind of group a container was
// recognised as: one of the Kind* values.
const LabelKind = "io.metricsd.cgroupfs.kind"

// Kinds of recognised groups.
const (
	KindDocker     = "docker"
	KindPodman     = "podman"
	KindContainerd = "containerd"
	KindKubernetes = "kubernetes"
	KindCRIO       = "crio"
	KindSystemd    = "systemd"
)

// Name is the runtime name this package reports.
const Name = "cgroupfs"

// DefaultInterval is Watch's rescan period.
const DefaultInterval = 10 * time.Second

// maxProcs bounds how many PIDs of one group are examined to find its init.
const maxProcs = 1024

type options struct {
	root     string
	interval time.Duration
	log      *slog.Logger
	fs       *cgroup.FS
	services bool
	subtree  string
}

// Option configures New.
type Option func(*options)

// WithRoot sets the host root prefix ("/" by default).
func WithRoot(root string) Option { return func(o *options) { o.root = root } }

// WithInterval sets Watch's rescan period.
func WithInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithFS uses an existing cgroup.FS instead of making one.
func WithFS(f *cgroup.FS) Option { return func(o *options) { o.fs = f } }

// WithSubtree walks only the groups beneath a cgroup path (such as
// "/kubepods" or a delegated subtree) and classifies their paths relative to
// it; Container.CgroupPath stays the full path. Default "/": the whole tree.
func WithSubtree(path string) Option { return func(o *options) { o.subtree = path } }

// WithServices sets whether systemd services are reported (default true).
func WithServices(on bool) Option { return func(o *options) { o.services = on } }

// Discoverer walks one host's cgroup tree. It is safe for concurrent use.
type Discoverer struct {
	o     options
	fs    *cgroup.FS
	mount string // the hierarchy walked: memory on v1/hybrid, unified on v2
	base  string // mount + subtree: where the walk starts
	cpu   string // the v1 cpu hierarchy, where runc also makes its groups; "" on v2

	// What the last scan learned of each directory, by path relative to
	// base; scans take turns (mu). A directory whose inode is unchanged
	// since is the same group (cgroup inodes are not reused while the
	// host runs), so its classification is kept; one that is new, made
	// again at its path or renamed costs a classification, and entries not
	// seen by a scan are dropped.
	mu   sync.Mutex
	dirs map[string]*dirState
	gen  uint64 // the scan under way
	buf  []byte // cgroup.procs and stat reads
	ents []byte // getdents
}

// dirState is what a scan learned of one directory.
type dirState struct {
	ino        uint64
	gen        uint64            // the last scan that saw it
	recognised bool              // a container or service, reported if populated
	c          runtime.Container // as Classify gave it, when recognised
	key        string            // runtime.Key(c)
}

var _ runtime.Discoverer = (*Discoverer)(nil)

// New finds the host's cgroup mounts (through the cgroup package) and picks
// the hierarchy to walk: the memory controller's on v1 and hybrid hosts,
// the unified one on v2.
func New(ctx context.Context, opts ...Option) (*Discoverer, error) {
	o := options{root: "/", interval: DefaultInterval, services: true, subtree: "/"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.interval <= 0 {
		o.interval = DefaultInterval
	}
	f := o.fs
	if f == nil {
		var err error
		f, err = cgroup.NewFS(ctx, cgroup.WithRoot(o.root), cgroup.WithLogger(o.log))
		if err != nil {
			return nil, fmt.Errorf("cgroupfs: %w", err)
		}
	}
	first, second := "memory", ""
	if f.Mode() == cgroup.Unified {
		first, second = "", "memory"
	}
	mp, ok := f.MountPoint(first)
	if !ok {
		if mp, ok = f.MountPoint(second); !ok {
			return nil, fmt.Errorf("cgroupfs: neither the memory nor the unified hierarchy is mounted: %w", cgroup.ErrNoCgroupFS)
		}
	}
	for _, e := range strings.Split(strings.Trim(o.subtree, "/"), "/") {
		if e != "" && runtime.CheckID(e) != nil {
			return nil, fmt.Errorf("cgroupfs: subtree %q: %w", o.subtree, cgroup.ErrInvalidPath)
		}
	}
	o.subtree = filepath.Clean("/" + o.subtree)
	sub := o.subtree
	d := &Discoverer{o: o, fs: f, mount: mp, base: filepath.Join(mp, sub), dirs: make(map[string]*dirState)}
	if f.Mode() != cgroup.Unified {
		if cpu, ok := f.MountPoint("cpu"); ok && cpu != mp {
			d.cpu = cpu
		}
	}
	return d, nil
}

// Opener is a runtime.Opener for runtime/detect's fallback.
func Opener(opts ...Option) runtime.Opener {
	return func(ctx context.Context, _, root string, log *slog.Logger) (runtime.Discoverer, error) {
		return New(ctx, append([]Option{WithRoot(root), WithLogger(log)}, opts...)...)
	}
}

// Name returns "cgroupfs".
func (d *Discoverer) Name() string { return Name }

// Close does nothing: the discoverer holds no descriptors.
func (d *Discoverer) Close() error { return nil }

// Mount is the directory of the hierarchy walked.
func (d *Discoverer) Mount() string { return d.mount }

// List walks the tree and returns the recognised groups that hold
// processes. A group whose processes exit during the walk is reported with
// StateStopped rather than failing the list.
func (d *Discoverer) List(ctx context.Context) ([]runtime.Container, error) {
	cs, _, err := d.scan(ctx)
	return cs, err
}

// scan returns the populated recognised groups, and the keys of every
// recognised group, populated or not.
//
// A scan is incremental: a directory seen by the previous scan with the
// same inode keeps its classification (no Classify, no look in the cpu
// hierarchy); for every recognised group it reads cgroup.procs and its
// init's /proc/<pid>/stat again, with no descriptor kept between scans
// (a v1 group already holds ~20 for its Group: 1,000 groups would outgrow
// a 20,000 RLIMIT_NOFILE). Those two reads are what tells a group that
// emptied, an init that exited, and a PID reused by another process: the
// start time read is always the process's own.
func (d *Discoverer) scan(ctx context.Context) ([]runtime.Container, map[string]bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	var out []runtime.Container
	all := make(map[string]bool)
	n := 0
	boot, bootErr := runtime.BootTime(ctx, d.fs.Root())
	err := d.walk(d.base, "", func(p, rel string, ino uint64) (bool, error) {
		if n++; n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		st := d.dirs[rel]
		if st == nil || st.ino != ino {
			st = d.classify(rel, ino)
			d.dirs[rel] = st
		}
		st.gen = d.gen
		if !st.recognised {
			return true, nil
		}
		all[st.key] = true
		pid, ticks, populated, err := d.initPID(p)
		if err != nil {
			d.o.log.Debug("cgroupfs: reading group", "path", rel, "err", err)
			return false, nil
		}
		if !populated {
			return false, nil
		}
		c := st.c
		c.Labels = maps.Clone(st.c.Labels) // each listing its own
		c.PID = pid
		c.NetNS = runtime.NetNS{PID: pid}
		c.State = runtime.StateRunning
		if pid > 0 {
			if ticks == 0 {
				ticks, err = d.startTicks(pid)
			}
			if err == nil {
				c.PIDStart = ticks
				if bootErr == nil {
					c.Started = runtime.TicksTime(boot, ticks)
				}
			} else {
				c.State, c.PID, c.NetNS = runtime.StateStopped, 0, runtime.NetNS{}
			}
		}
		out = append(out, c)
		return false, nil // a container's sub-groups are part of it
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cgroupfs: walk %s: %w", d.base, err)
	}
	for rel, st := range d.dirs {
		if st.gen != d.gen {
			delete(d.dirs, rel) // removed, or renamed: not seen at this path
		}
	}
	return out, all, nil
}

// classify makes the state of a directory not seen before at rel (or seen
// with another inode).
func (d *Discoverer) classify(rel string, ino uint64) *dirState {
	st := &dirState{ino: ino}
	c, ok := Classify(rel)
	if !ok || (!d.o.services && c.Labels[LabelKind] == KindSystemd) {
		return st
	}
	if c.Labels[LabelKind] == KindContainerd && !d.inCPU(path.Join(d.o.subtree, rel)) {
		// <namespace>/<id> is a guess: runc makes a container's group
		// in every hierarchy, so a group the v1 memory hierarchy has
		// alone (a memory limit some tool set on a few processes) is
		// not a containerd container.
		return st
	}
	c.CgroupPath = path.Join(d.o.subtree, rel)
	st.recognised, st.c, st.key = true, c, runtime.Key(c)
	return st
}

// walk calls fn for every directory beneath dir (dir itself excluded), in
// lexical order, with its path, its path relative to base ("/a/b") and its
// inode as the directory entry gives it; fn's true descends into it. A
// directory removed during the walk is skipped; dir's own error is
// returned.
func (d *Discoverer) walk(dir, rel string, fn func(p, rel string, ino uint64) (bool, error)) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if rel != "" && (err == unix.ENOENT || err == unix.ENODEV) {
			return nil // removed during the walk
		}
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	type ent struct {
		name string
		ino  uint64
	}
	var ents []ent
	if len(d.ents) == 0 {
		d.ents = make([]byte, 32<<10)
	}
	for {
		n, err := unix.Getdents(fd, d.ents)
		if err != nil {
			unix.Close(fd)
			if rel != "" && err == unix.ENODEV {
				return nil
			}
			return &fs.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		for b := d.ents[:n]; len(b) >= 19; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			typ, name := b[18], b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if typ == unix.DT_DIR && string(name) != "." && string(name) != ".." {
				ents = append(ents, ent{string(name), binary.NativeEndian.Uint64(b[0:8])})
			}
			b = b[reclen:]
		}
	}
	unix.Close(fd)
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	for _, e := range ents {
		p, r := dir+"/"+e.name, rel+"/"+e.name
		deeper, err := fn(p, r, e.ino)
		if err != nil {
			return err
		}
		if deeper {
			if err := d.walk(p, r, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// inCPU reports whether the group at cgroup path p exists in the v1 cpu
// hierarchy too (true where there is none apart from the one walked).
func (d *Discoverer) inCPU(p string) bool {
	if d.cpu == "" {
		return true
	}
	fi, err := os.Stat(filepath.Join(d.cpu, p))
	return err == nil && fi.IsDir()
}

// initPID reads the group's processes (its own, else those of its
// sub-groups) and returns its init: the process whose parent is not in the
// group, the lowest PID on a tie, with its start time when it had to read
// it (0 if not). populated is false when no process is in the group or
// beneath it.
func (d *Discoverer) initPID(dir string) (pid int, ticks uint64, populated bool, err error) {
	pids, err := d.readProcs(dir + "/cgroup.procs")
	if err != nil {
		return 0, 0, false, err
	}
	if len(pids) == 0 {
		// Processes may live in sub-groups only (systemd services with
		// delegated trees, nested containers).
		_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || !de.IsDir() || p == dir || len(pids) > 0 {
				if len(pids) > 0 {
					return fs.SkipAll
				}
				return nil
			}
			pids, _ = d.readProcs(filepath.Join(p, "cgroup.procs"))
			return nil
		})
	}
	if len(pids) == 0 {
		return 0, 0, false, nil
	}
	if len(pids) == 1 {
		return pids[0], 0, true, nil
	}
	in := make(map[int]bool, len(pids))
	for _, p := range pids {
		in[p] = true
	}
	sort.Ints(pids)
	for _, p := range pids {
		pp, t, err := d.stat(p)
		if err != nil {
			continue
		}
		if !in[pp] {
			return p, t, true, nil
		}
	}
	return pids[0], 0, true, nil
}

// readFile reads a small file whole into d.buf (open, read, close: no
// fstat, no allocation once d.buf has grown). The files read are seq_files
// (cgroup.procs, /proc/<pid>/stat), whose read fills the buffer unless the
// file ends first: a short read is the end, with no read of 0 to confirm.
func (d *Discoverer) readFile(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	if len(d.buf) == 0 {
		d.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(d.buf) {
			d.buf = append(d.buf, make([]byte, len(d.buf))...)
		}
		m, err := unix.Read(fd, d.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if n += m; m == 0 || n < len(d.buf) {
			return d.buf[:n], nil
		}
	}
}

func (d *Discoverer) readProcs(name string) ([]int, error) {
	b, err := d.readFile(name)
	if err != nil {
		return nil, err
	}
	var pids []int
	v, digits := 0, false
	for _, c := range b {
		if c >= '0' && c <= '9' {
			v, digits = v*10+int(c-'0'), true
			continue
		}
		if digits && v > 0 {
			if pids = append(pids, v); len(pids) >= maxProcs {
				break
			}
		}
		v, digits = 0, false
	}
	if digits && v > 0 && len(pids) < maxProcs {
		pids = append(pids, v)
	}
	return pids, nil
}

// stat reads process pid's parent and start time (fields 4 and 22 of
// /proc/<pid>/stat). A process that is gone (or a zombie) gives an error
// matching os.ErrNotExist, as runtime.ProcStartTicks does.
func (d *Discoverer) stat(pid int) (ppid int, ticks uint64, err error) {
	b, err := d.readFile(d.fs.Root() + "/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			err = fmt.Errorf("%w (%w)", proc.ErrGone, err)
		}
		return 0, 0, err
	}
	if ticks, err = proc.ParseStatStart(b); err != nil {
		return 0, 0, err
	}
	// Field 4, the second after the command (ParseStatStart checked that
	// there are 20).
	f := b[bytes.LastIndexByte(b, ')')+1:]
	for k := 0; k < 2; k++ {
		f = bytes.TrimLeft(f, " ")
		if k == 0 {
			f = f[bytes.IndexByte(f, ' '):]
		}
	}
	if i := bytes.IndexByte(f, ' '); i >= 0 {
		f = f[:i]
	}
	ppid, err = strconv.Atoi(string(f))
	return ppid, ticks, err
}

// startTicks is stat's start time alone.
func (d *Discoverer) startTicks(pid int) (uint64, error) {
	_, t, err := d.stat(pid)
	return t, err
}

// Watch lists once, then rescans every interval and reports the
// differences: started for a new populated group, stopped for one that
// emptied, removed (after stopped) for one whose directory is gone. The
// channel closes when ctx ends. A failed rescan is logged and retried at the
// next tick.
func (d *Discoverer) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	initial, err := d.List(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan runtime.Event, 64)
	go func() {
		defer close(ch)
		t := runtime.NewTracker(initial)
		tick := time.NewTicker(d.o.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cs, all, err := d.scan(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d.o.log.Warn("cgroupfs: rescan failed", "err", err)
				continue
			}
			evs := t.Resync(cs, func(k string) bool { return all[k] }, time.Now())
			if !runtime.Send(ctx, ch, evs...) {
				return
			}
		}
	}()
	return ch, nil
}
