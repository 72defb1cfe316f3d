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
// the differences.
package cgroupfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/metricsd/metricsd/cgroup"
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
	d := &Discoverer{o: o, fs: f, mount: mp, base: filepath.Join(mp, sub)}
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
func (d *Discoverer) scan(ctx context.Context) ([]runtime.Container, map[string]bool, error) {
	var out []runtime.Container
	all := make(map[string]bool)
	n := 0
	boot, bootErr := runtime.BootTime(ctx, d.fs.Root())
	err := filepath.WalkDir(d.base, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p != d.base && errors.Is(err, fs.ErrNotExist) {
				return nil // removed during the walk
			}
			return err
		}
		if !de.IsDir() {
			return nil
		}
		if n++; n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if p == d.base {
			return nil
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, d.base+string(filepath.Separator)))
		c, ok := Classify(rel)
		if !ok || (!d.o.services && c.Labels[LabelKind] == KindSystemd) {
			return nil
		}
		if c.Labels[LabelKind] == KindContainerd && !d.inCPU(path.Join(d.o.subtree, rel)) {
			// <namespace>/<id> is a guess: runc makes a container's group
			// in every hierarchy, so a group the v1 memory hierarchy has
			// alone (a memory limit some tool set on a few processes) is
			// not a containerd container.
			return nil
		}
		all[runtime.Key(c)] = true
		pid, populated, err := d.initPID(p)
		if err != nil {
			d.o.log.Debug("cgroupfs: reading group", "path", rel, "err", err)
			return fs.SkipDir
		}
		if !populated {
			return fs.SkipDir
		}
		c.CgroupPath = path.Join(d.o.subtree, rel)
		c.PID = pid
		c.NetNS = runtime.NetNS{PID: pid}
		c.State = runtime.StateRunning
		if pid > 0 {
			if t, err := runtime.ProcStartTicks(ctx, d.fs.Root(), pid); err == nil {
				c.PIDStart = t
				if bootErr == nil {
					c.Started = runtime.TicksTime(boot, t)
				}
			} else {
				c.State, c.PID, c.NetNS = runtime.StateStopped, 0, runtime.NetNS{}
			}
		}
		out = append(out, c)
		return fs.SkipDir // a container's sub-groups are part of it
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cgroupfs: walk %s: %w", d.base, err)
	}
	return out, all, nil
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
// group, the lowest PID on a tie. populated is false when no process is in
// the group or beneath it.
func (d *Discoverer) initPID(dir string) (pid int, populated bool, err error) {
	pids, err := readProcs(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return 0, false, err
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
			pids, _ = readProcs(filepath.Join(p, "cgroup.procs"))
			return nil
		})
	}
	if len(pids) == 0 {
		return 0, false, nil
	}
	if len(pids) == 1 {
		return pids[0], true, nil
	}
	in := make(map[int]bool, len(pids))
	for _, p := range pids {
		in[p] = true
	}
	sort.Ints(pids)
	for _, p := range pids {
		pp, err := ppid(d.fs.Root(), p)
		if err != nil {
			continue
		}
		if !in[pp] {
			return p, true, nil
		}
	}
	return pids[0], true, nil
}

func readProcs(name string) ([]int, error) {
	b, err := os.ReadFile(name)
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

func ppid(root string, pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(root, "proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, errors.New("malformed stat")
	}
	return strconv.Atoi(string(f[1]))
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
