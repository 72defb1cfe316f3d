package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/ratelog"
	"github.com/metricsd/metricsd/netns"
)

// Metrics is the object the proxy adds to a container inspect. Counters
// count from the container's start; a figure the kernel did not provide is
// left out.
type Metrics struct {
	// Read is when the figures were read.
	Read time.Time
	// CgroupVersion is 1 (v1 and hybrid hosts) or 2.
	CgroupVersion int             `json:",omitempty"`
	CPU           *CPUMetrics     `json:",omitempty"`
	Memory        *MemoryMetrics  `json:",omitempty"`
	IO            *IOMetrics      `json:",omitempty"`
	Network       *NetworkMetrics `json:",omitempty"`
	// Errors lists what could not be read.
	Errors []string `json:",omitempty"`
}

// CPUMetrics: times in nanoseconds, periods counted.
type CPUMetrics struct {
	UsageNs          *uint64 `json:",omitempty"`
	UserNs           *uint64 `json:",omitempty"`
	SystemNs         *uint64 `json:",omitempty"`
	Periods          *uint64 `json:",omitempty"`
	ThrottledPeriods *uint64 `json:",omitempty"`
	ThrottledNs      *uint64 `json:",omitempty"`
}

// MemoryMetrics: sizes in bytes. With no limit set LimitBytes is absent and
// Unlimited true.
type MemoryMetrics struct {
	UsageBytes      *uint64 `json:",omitempty"`
	LimitBytes      *uint64 `json:",omitempty"`
	Unlimited       bool    `json:",omitempty"`
	WorkingSetBytes *uint64 `json:",omitempty"`
	RSSBytes        *uint64 `json:",omitempty"` // v1 memory.stat total_rss, v2 anon
	CacheBytes      *uint64 `json:",omitempty"` // v1 memory.stat total_cache, v2 file
	SwapBytes       *uint64 `json:",omitempty"`
}

// IOMetrics is block I/O per device.
type IOMetrics struct {
	Devices []IODevice
}

// IODevice is one block device's I/O: bytes and operations, each a number,
// or null when the kernel did not print it for the device.
type IODevice struct {
	Major, Minor uint32
	Name         string `json:",omitempty"`
	ReadBytes    cgroup.Value
	WriteBytes   cgroup.Value
	ReadOps      cgroup.Value
	WriteOps     cgroup.Value
}

// NetworkMetrics is net/dev of the container's network namespace.
type NetworkMetrics struct {
	Interfaces []Interface `json:",omitempty"`
	// HostNetwork is true for a container in the host's namespace
	// (--net=host): its interfaces are the host's and are not reported.
	HostNetwork bool `json:",omitempty"`
}

// Interface is one interface's counters: bytes and packets.
type Interface struct {
	Name      string
	RxBytes   uint64
	RxPackets uint64
	RxErrors  uint64
	RxDropped uint64
	TxBytes   uint64
	TxPackets uint64
	TxErrors  uint64
	TxDropped uint64
}

// cgroupControllers are what the Metrics need.
const cgroupControllers = cgroup.CPU | cgroup.Memory | cgroup.IO

// opTimeout bounds opening and reading one container's handles.
const opTimeout = 5 * time.Second

// cache keeps each running container's open cgroup Group and netns Handle
// by container ID.
type cache struct {
	fs   *cgroup.FS
	pool *netns.Pool
	proc string // <host root>/proc
	log  *slog.Logger
	rl   *ratelog.Logger

	mu      sync.Mutex
	entries map[string]*entry // nil once closed

	stop chan struct{}
	done chan struct{}
}

// entry is one container's handles. Its mutex serialises open, Stat and
// release; the cache's mutex is never taken while waiting for an entry's.
type entry struct {
	id string

	mu      sync.Mutex
	closed  bool   // released and out of the cache: take a new entry
	pid     int    // init PID the handles were opened for
	start   uint64 // that process's start time, against PID reuse
	group   *cgroup.Group
	net     *netns.Handle
	hostNet bool
	netErr  string // why the namespace could not be opened
	cs      cgroup.Stats
	ns      netns.Stats
}

func newCache(ctx context.Context, hostRoot string, sweep time.Duration, log *slog.Logger, rl *ratelog.Logger) (*cache, error) {
	cgfs, err := cgroup.NewFS(ctx, cgroup.WithRoot(hostRoot), cgroup.WithLogger(log))
	if err != nil {
		return nil, err
	}
	nsRoot := hostRoot
	if nsRoot == "/" {
		nsRoot = ""
	}
	pool, err := netns.NewPool(netns.WithRoot(nsRoot), netns.WithLogger(log))
	if err != nil {
		return nil, err
	}
	c := &cache{
		fs: cgfs, pool: pool, proc: filepath.Join(hostRoot, "proc"), log: log, rl: rl,
		entries: make(map[string]*entry),
		stop:    make(chan struct{}), done: make(chan struct{}),
	}
	go c.sweeper(sweep)
	return c, nil
}

// metrics reads the container's figures, opening its handles on first use.
// It returns nil when nothing could be read.
func (c *cache) metrics(ctx context.Context, id string, pid int) *Metrics {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	// A second try when the entry was released meanwhile, or its cgroup
	// was gone (the container restarted between our reads).
	for range 2 {
		e := c.get(id)
		if e == nil {
			return nil // closing
		}
		m, retry := c.read(ctx, e, pid)
		if !retry {
			return m
		}
	}
	return nil
}

// get returns the container's entry, making an empty one.
func (c *cache) get(id string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		return nil
	}
	e := c.entries[id]
	if e == nil {
		e = &entry{id: id}
		c.entries[id] = e
	}
	return e
}

// drop removes e from the map, if it is still there. e.mu is held.
func (c *cache) drop(e *entry) {
	e.closed = true
	e.release()
	c.mu.Lock()
	if c.entries[e.id] == e {
		delete(c.entries, e.id)
	}
	c.mu.Unlock()
}

// forget releases a container's handles: it is no longer running.
func (c *cache) forget(id string) {
	c.mu.Lock()
	e := c.entries[id]
	c.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		c.log.Debug("dockerproxy: releasing a stopped container", "id", id)
		c.drop(e)
	}
}

func (e *entry) release() {
	if e.group != nil {
		_ = e.group.Close()
		e.group = nil
	}
	if e.net != nil {
		_ = e.net.Close()
		e.net = nil
	}
	e.pid, e.start, e.hostNet, e.netErr = 0, 0, false, ""
}

// read opens e for pid if need be and reads it. retry is true when e was
// released and a fresh entry should be tried.
func (c *cache) read(ctx context.Context, e *entry, pid int) (m *Metrics, retry bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, true
	}
	if e.group != nil && e.pid != pid { // restarted: a new process, maybe a new cgroup
		e.release()
	}
	if e.group == nil {
		if err := c.open(ctx, e, pid); err != nil {
			c.drop(e)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, cgroup.ErrNotExist) {
				c.log.Debug("dockerproxy: container exited after Docker answered", "id", e.id, "pid", pid, "err", err)
				return nil, false
			}
			c.rl.Warn("open", "dockerproxy: cannot read a container's metrics", "id", e.id, "pid", pid, "err", err)
			// Say why (not root, no cgroup mounted, ...).
			return &Metrics{Read: time.Now().UTC(), Errors: []string{err.Error()}}, false
		}
	}
	m = &Metrics{Read: time.Now().UTC(), CgroupVersion: e.group.Version()}
	if err := e.group.Stat(ctx, &e.cs); err != nil {
		if errors.Is(err, cgroup.ErrNotExist) {
			c.drop(e)
			return nil, true
		}
		m.Errors = append(m.Errors, "cgroup: "+err.Error())
	}
	fillCgroup(m, &e.cs)
	switch {
	case e.hostNet:
		m.Network = &NetworkMetrics{HostNetwork: true}
	case e.net != nil:
		if err := e.net.Stat(ctx, &e.ns); err != nil {
			m.Errors = append(m.Errors, "network: "+err.Error())
		}
		if e.ns.Parts.Has(netns.PartDev) {
			m.Network = &NetworkMetrics{Interfaces: make([]Interface, 0, len(e.ns.Interfaces))}
			for _, it := range e.ns.Interfaces {
				m.Network.Interfaces = append(m.Network.Interfaces, Interface{
					// net/dev has every column for every interface: all Known.
					Name: it.Name, RxBytes: it.RxBytes.V, RxPackets: it.RxPackets.V, RxErrors: it.RxErrors.V, RxDropped: it.RxDropped.V,
					TxBytes: it.TxBytes.V, TxPackets: it.TxPackets.V, TxErrors: it.TxErrors.V, TxDropped: it.TxDropped.V,
				})
			}
		}
	case e.netErr != "":
		m.Errors = append(m.Errors, "network: "+e.netErr)
	}
	if len(m.Errors) > 0 {
		c.rl.Warn("read", "dockerproxy: could not read every figure of a container", "id", e.id, "errors", m.Errors)
	}
	return m, false
}

// open opens the cgroup and the network namespace of pid into e.
func (c *cache) open(ctx context.Context, e *entry, pid int) error {
	start, err := c.startTime(pid)
	if err != nil {
		return err
	}
	paths, err := c.fs.PIDPaths(ctx, pid)
	if err != nil {
		return fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	if p := containerPath(paths); !strings.Contains(p, e.id) {
		return fmt.Errorf("%w: pid %d is in cgroup %q, which is not named after container %s", errNotTheContainer, pid, p, e.id)
	}
	g, err := c.fs.OpenPaths(ctx, paths, cgroupControllers)
	if err != nil {
		return fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	e.group, e.pid, e.start = g, pid, start
	h, err := c.pool.Open(ctx, netns.TargetPID(pid), netns.PartDev)
	switch {
	case err != nil:
		e.netErr = err.Error()
	case h.IsHome():
		_ = h.Close()
		e.hostNet = true
	default:
		e.net = h
	}
	// The PID still names the process whose cgroup was checked: the
	// namespace opened is the container's.
	if now, err := c.startTime(pid); err != nil || now != start {
		e.release()
		if err == nil {
			err = fmt.Errorf("pid %d: %w", pid, fs.ErrNotExist)
		}
		return err
	}
	c.log.Debug("dockerproxy: opened container", "id", e.id, "pid", pid, "cgroup v", g.Version(), "net err", e.netErr)
	return nil
}

// errNotTheContainer: the PID an inspect gave is not in the container's
// cgroup. The daemon then runs in another PID namespace (Docker in
// Docker), on another host behind a forwarded socket, or the PID was
// reused.
var errNotTheContainer = errors.New("the inspect's State.Pid is not this host's process of the container (a daemon on another host or in another PID namespace, or a reused PID)")

// containerPath is the cgroup path a container's process has: the memory
// controller's (v1 and hybrid hosts), else the unified one.
func containerPath(p cgroup.Paths) string {
	if m, ok := p["memory"]; ok {
		return m
	}
	return p[""]
}

// startTime is field 22 of /proc/<pid>/stat: when the process started, in
// clock ticks since boot. A PID reused by another process has another.
func (c *cache) startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(c.proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}

// sweeper releases, every interval, the entries whose process exited.
func (c *cache) sweeper(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.sweep()
		}
	}
}

func (c *cache) sweep() {
	c.mu.Lock()
	es := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	c.mu.Unlock()
	for _, e := range es {
		e.mu.Lock()
		if !e.closed && e.group != nil {
			if st, err := c.startTime(e.pid); err != nil || st != e.start {
				c.log.Debug("dockerproxy: releasing a container whose process exited", "id", e.id, "pid", e.pid)
				c.drop(e)
			}
		}
		e.mu.Unlock()
	}
}

// cached reports whether the container's handles are open (for tests).
func (c *cache) cached(id string) bool {
	c.mu.Lock()
	e := c.entries[id]
	c.mu.Unlock()
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.closed && e.group != nil
}

// close releases every entry and stops the hop threads.
func (c *cache) close() error {
	c.mu.Lock()
	es := c.entries
	c.entries = nil
	c.mu.Unlock()
	if es == nil {
		return nil
	}
	close(c.stop)
	<-c.done
	for _, e := range es {
		e.mu.Lock()
		e.closed = true
		e.release()
		e.mu.Unlock()
	}
	return c.pool.Close()
}

func ptr(v cgroup.Value) *uint64 {
	if n, ok := v.Get(); ok {
		return &n
	}
	return nil
}

// fillCgroup copies the figures the kernel gave into m.
func fillCgroup(m *Metrics, s *cgroup.Stats) {
	cpu := CPUMetrics{
		UsageNs: ptr(s.CPU.Usage), UserNs: ptr(s.CPU.User), SystemNs: ptr(s.CPU.System),
		Periods: ptr(s.CPU.Periods), ThrottledPeriods: ptr(s.CPU.ThrottledPeriods), ThrottledNs: ptr(s.CPU.ThrottledTime),
	}
	if cpu != (CPUMetrics{}) {
		m.CPU = &cpu
	}
	mem := MemoryMetrics{
		UsageBytes: ptr(s.Memory.Usage), LimitBytes: ptr(s.Memory.Limit), Unlimited: s.Memory.Limit.IsUnlimited(),
		WorkingSetBytes: ptr(s.Memory.WorkingSet), RSSBytes: ptr(s.Memory.Anon), CacheBytes: ptr(s.Memory.File),
		SwapBytes: ptr(s.Memory.SwapUsage),
	}
	if mem != (MemoryMetrics{}) {
		m.Memory = &mem
	}
	if s.IO.ReadBytes.Available() || s.IO.ReadOps.Available() || len(s.IO.Devices) > 0 { // the io or blkio files were read
		io := &IOMetrics{Devices: make([]IODevice, 0, len(s.IO.Devices))}
		for _, d := range s.IO.Devices {
			io.Devices = append(io.Devices, IODevice{
				Major: d.Major, Minor: d.Minor, Name: d.Name,
				ReadBytes: d.ReadBytes, WriteBytes: d.WriteBytes, ReadOps: d.ReadOps, WriteOps: d.WriteOps,
			})
		}
		m.IO = io
	}
}
