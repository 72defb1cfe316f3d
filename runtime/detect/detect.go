// Package detect picks the container runtimes a host has: Docker and
// containerd where their sockets answer, several at once as a
// [runtime.Multi] that reports a container known to both once, and the
// cgroup tree ([cgroupfs]) when no daemon answers.
//
// It links every adapter (the Docker client, gRPC for containerd). A program
// that knows its runtime imports only that adapter's package; a
// [github.com/metricsd/metricsd.Collector] given no discoverer walks the
// cgroup tree and links neither.
//
//	d, err := detect.New(ctx)  // Docker, containerd, else the cgroup tree
//	cs, err := d.List(ctx)     // the running containers
//	ch, err := d.Watch(ctx)    // started / stopped / removed / oom
package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/docker"
)

type options struct {
	root                        string
	getenv                      func(string) string
	log                         *slog.Logger
	docker, containerd, cgroups runtime.Opener
	dockerHost, containerdAddr  string // explicit: required
	redetectMin, redetectMax    time.Duration
}

// Option configures New.
type Option func(*options)

// WithHostRoot sets the host root prefix ("/host" for an agent in a
// container with the host's / mounted there): default sockets and unix://
// addresses from the environment are looked up beneath it. The default, ""
// or "/", is the host's own root.
func WithHostRoot(root string) Option { return func(o *options) { o.root = root } }

// WithGetenv replaces os.Getenv for DOCKER_HOST and CONTAINERD_ADDRESS.
func WithGetenv(f func(string) string) Option {
	return func(o *options) { o.getenv = f }
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithDocker sets how a Docker endpoint is opened (default
// docker.Opener()); nil leaves Docker out.
func WithDocker(open runtime.Opener) Option { return func(o *options) { o.docker = open } }

// WithContainerd sets how a containerd socket is opened (default
// containerd.Opener()); nil leaves containerd out.
func WithContainerd(open runtime.Opener) Option { return func(o *options) { o.containerd = open } }

// WithCgroupFS sets the fallback used when no daemon answers (default
// cgroupfs.Opener()); nil makes New fail with ErrNoRuntime instead.
func WithCgroupFS(open runtime.Opener) Option { return func(o *options) { o.cgroups = open } }

// WithDockerHost names the Docker endpoint ("unix:///path",
// "tcp://host:port") instead of looking for one: it is required. If it does
// not answer, New fails at once with the reason, rather than going on
// without it.
func WithDockerHost(host string) Option { return func(o *options) { o.dockerHost = host } }

// WithContainerdAddress names containerd's socket instead of looking for
// one: it is required. If it does not answer, New fails at once with the
// reason, rather than going on without it.
func WithContainerdAddress(addr string) Option { return func(o *options) { o.containerdAddr = addr } }

// WithRedetect sets how often the runtimes New did not find are looked for
// again: min after the first look, doubling to max (default 1 s to 1 min).
// max 0 never looks again.
func WithRedetect(min, max time.Duration) Option {
	return func(o *options) { o.redetectMin, o.redetectMax = min, max }
}

// Default endpoints, beneath the host root.
const (
	DefaultDockerSocket     = "/var/run/docker.sock"
	DefaultContainerdSocket = "/run/containerd/containerd.sock"
)

// ErrNoRuntime is returned by New when no daemon answers and no cgroupfs
// fallback was given.
var ErrNoRuntime = fmt.Errorf("no container runtime detected: %w", runtime.ErrUnavailable)

// New picks the runtimes this host has: Docker at $DOCKER_HOST or
// /var/run/docker.sock, containerd at $CONTAINERD_ADDRESS or
// /run/containerd/containerd.sock (sockets beneath the host root), each only
// when its Opener is not nil and it answers. Several found run together as a
// Multi, which reports a container that Docker and containerd both know
// once. With none, it returns the cgroupfs discoverer. Endpoints that do not
// answer are logged and skipped; each open is bounded by the adapter's own
// timeout and by ctx.
//
// An endpoint given by WithDockerHost or WithContainerdAddress is required:
// New fails with the reason when it does not answer. An error that matches
// ctx.Err() says that ctx ended, not that a runtime failed.
//
// A runtime it looked for and did not find is looked for again with
// backoff (WithRedetect), by List and in the background of Watch: a daemon
// started after the program that embeds this one is used once it answers,
// and a cgroupfs fallback gives way to it (Watch reports the cgroupfs
// containers removed and the daemon's started).
func New(ctx context.Context, opts ...Option) (runtime.Discoverer, error) {
	o := options{root: "/", getenv: os.Getenv, docker: docker.Opener(), containerd: containerd.Opener(), cgroups: cgroupfs.Opener(),
		redetectMin: time.Second, redetectMax: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var found []runtime.Discoverer
	var missing []*candidate
	for _, c := range o.candidates() {
		d, err := c.open(ctx, &o)
		switch {
		case err == nil:
			found = append(found, d)
		case ctx.Err() != nil:
			closeAll(found)
			return nil, ctx.Err()
		case c.explicit:
			closeAll(found)
			return nil, fmt.Errorf("detect: %s at %s (given explicitly): %w", c.name, c.endpoint, err)
		default:
			missing = append(missing, c)
		}
	}
	if err := ctx.Err(); err != nil {
		closeAll(found)
		return nil, err
	}
	cur, err := o.combine(ctx, found)
	if err != nil {
		return nil, err
	}
	if len(missing) == 0 || o.redetectMax <= 0 {
		return cur, nil
	}
	r := &Redetecting{o: o, cur: cur, found: found, missing: missing, bo: runtime.Backoff{Min: o.redetectMin, Max: o.redetectMax}}
	r.next = time.Now().Add(r.bo.Next())
	return r, nil
}

// combine makes one discoverer of those found: one as it is, several as a
// Multi, none as the cgroupfs fallback.
func (o *options) combine(ctx context.Context, found []runtime.Discoverer) (runtime.Discoverer, error) {
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
	default:
		return runtime.NewMulti(found...), nil
	}
	if o.cgroups == nil {
		return nil, ErrNoRuntime
	}
	d, err := o.cgroups(ctx, "", o.root, o.log)
	if err != nil {
		return nil, errors.Join(ErrNoRuntime, err)
	}
	o.log.Info("detect: no daemon; using cgroupfs", "root", o.root)
	return d, nil
}

// candidate is a runtime New looks for.
type candidate struct {
	name     string
	opener   runtime.Opener
	endpoint string // "" to look it up (again) with lookup
	lookup   func() string
	explicit bool
}

// candidates are the runtimes to look for, Docker first.
func (o *options) candidates() []*candidate {
	var cs []*candidate
	if o.docker != nil {
		c := &candidate{name: "docker", opener: o.docker, lookup: o.dockerEndpoint}
		if o.dockerHost != "" {
			c.endpoint, c.explicit = o.dockerHost, true
		}
		cs = append(cs, c)
	}
	if o.containerd != nil {
		c := &candidate{name: "containerd", opener: o.containerd, lookup: o.containerdEndpoint}
		if o.containerdAddr != "" {
			c.endpoint, c.explicit = o.containerdAddr, true
		}
		cs = append(cs, c)
	}
	return cs
}

// errNoEndpoint: neither the environment nor a default socket names one.
var errNoEndpoint = errors.New("no endpoint: not in the environment, no socket at the default path")

func (c *candidate) open(ctx context.Context, o *options) (runtime.Discoverer, error) {
	endpoint := c.endpoint
	if !c.explicit {
		if endpoint = c.lookup(); endpoint == "" {
			return nil, errNoEndpoint
		}
	}
	d, err := c.opener(ctx, endpoint, o.root, o.log)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Info("detect: not using "+c.name, "endpoint", endpoint, "err", err)
		}
		return nil, err
	}
	o.log.Info("detect: using "+c.name, "endpoint", endpoint)
	return d, nil
}

// Redetecting is what New returns when it did not find every runtime it
// looked for: the discoverer it made of those it found (or the cgroupfs
// fallback), and the others, looked for again with backoff. It is safe for
// concurrent use.
type Redetecting struct {
	o options

	mu      sync.Mutex
	cur     runtime.Discoverer   // what lists and watches now
	found   []runtime.Discoverer // the daemons in cur
	missing []*candidate
	bo      runtime.Backoff
	next    time.Time // when to look again
	gen     int       // bumped when cur changes
	closed  bool
}

var _ runtime.Discoverer = (*Redetecting)(nil)

// Current is the discoverer in use now.
func (r *Redetecting) Current() runtime.Discoverer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// Name names the discoverer in use now.
func (r *Redetecting) Name() string { return r.Current().Name() }

// Close closes the discoverers in use.
func (r *Redetecting) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.cur.Close()
}

// redetect looks for the missing runtimes when it is time to; it returns
// the discoverer to use and whether it changed.
func (r *Redetecting) redetect(ctx context.Context, force bool) (runtime.Discoverer, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.missing) == 0 || !force && time.Now().Before(r.next) {
		return r.cur, r.gen
	}
	var still []*candidate
	var added []runtime.Discoverer
	for _, c := range r.missing {
		d, err := c.open(ctx, &r.o)
		if err != nil {
			still = append(still, c)
			continue
		}
		added = append(added, d)
	}
	r.missing = still
	if len(added) == 0 {
		r.next = time.Now().Add(r.bo.Next())
		return r.cur, r.gen
	}
	found := append(append([]runtime.Discoverer(nil), r.found...), added...)
	var cur runtime.Discoverer
	if len(found) == 1 {
		cur = found[0]
	} else {
		// In the order New tries them: Docker first.
		slices.SortStableFunc(found, func(a, b runtime.Discoverer) int {
			return strings.Compare(order(a.Name()), order(b.Name()))
		})
		cur = runtime.NewMulti(found...)
	}
	if len(r.found) == 0 {
		_ = r.cur.Close() // the cgroupfs fallback gives way
	}
	r.o.log.Info("detect: runtimes now", "using", cur.Name(), "was", r.cur.Name())
	r.cur, r.found = cur, found
	r.gen++
	r.bo.Reset()
	r.next = time.Now().Add(r.bo.Next())
	return cur, r.gen
}

func order(name string) string {
	if name == "docker" {
		return "0"
	}
	return "1" + name
}

// List looks for the missing runtimes when it is time to, then lists those
// in use.
func (r *Redetecting) List(ctx context.Context) ([]runtime.Container, error) {
	cur, _ := r.redetect(ctx, false)
	return cur.List(ctx)
}

// Watch watches the runtimes in use and looks for the missing ones in the
// background, with backoff. When one appears, the runtimes in use change:
// the containers reported by a discoverer given up (the cgroupfs fallback)
// are reported stopped and removed, and those the new ones list are
// reported started, before their events. The channel closes when ctx ends.
func (r *Redetecting) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	cur, gen := r.redetect(ctx, false)
	wctx, wcancel := context.WithCancel(ctx)
	in, err := cur.Watch(wctx)
	if err != nil {
		wcancel()
		return nil, err
	}
	out := make(chan runtime.Event, 64)
	go r.watch(ctx, cur, gen, in, wcancel, out)
	return out, nil
}

func (r *Redetecting) watch(ctx context.Context, cur runtime.Discoverer, gen int, in <-chan runtime.Event, wcancel context.CancelFunc, out chan<- runtime.Event) {
	defer close(out)
	defer func() {
		wcancel()
		for range in {
		}
	}()
	// live is what was reported started and not stopped, so that a
	// discoverer given up can take its containers with it.
	live := make(map[string]runtime.Container)
	key := func(c runtime.Container) string { return c.Runtime + "/" + runtime.Key(c) }
	timer := time.NewTimer(time.Until(r.nextLook()))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-in:
			if !ok {
				return
			}
			switch ev.Type {
			case runtime.EventStarted:
				live[key(ev.Container)] = ev.Container
			case runtime.EventStopped, runtime.EventRemoved:
				delete(live, key(ev.Container))
			}
			if !runtime.Send(ctx, out, ev) {
				return
			}
		case <-timer.C:
			next, ngen := r.redetect(ctx, true)
			if ngen == gen {
				timer.Reset(time.Until(r.nextLook()))
				continue
			}
			// Stop watching what was in use, then report the change.
			wcancel()
			for range in { // what it sent while stopping is superseded
			}
			gone := cur.Name() == cgroupfs.Name
			var evs []runtime.Event
			now := time.Now()
			if gone {
				// What it watches from its first listing on was never
				// reported: list it a last time.
				if old, err := cur.List(ctx); err == nil {
					for _, c := range old {
						if c.State.Live() {
							live[key(c)] = c
						}
					}
				}
			}
			wctx, cancel := context.WithCancel(ctx)
			nin, err := next.Watch(wctx)
			if err != nil {
				cancel()
				evs = append(evs, runtime.Event{Type: runtime.EventError, Time: now, Err: fmt.Errorf("detect: watch %s: %w", next.Name(), err)})
				runtime.Send(ctx, out, evs...)
				return
			}
			cs, err := next.List(ctx)
			if err != nil {
				evs = append(evs, runtime.Event{Type: runtime.EventError, Time: now, Err: fmt.Errorf("detect: list %s: %w", next.Name(), err)})
			}
			if gone {
				keys := slices.Sorted(maps.Keys(live))
				for _, k := range keys {
					c := live[k]
					c.State = runtime.StateStopped
					evs = append(evs, runtime.Event{Type: runtime.EventStopped, Container: c, Time: now},
						runtime.Event{Type: runtime.EventRemoved, Container: c, Time: now})
					delete(live, k)
				}
			}
			for _, c := range cs {
				if c.State.Live() {
					live[key(c)] = c
					evs = append(evs, runtime.Event{Type: runtime.EventStarted, Container: c, Time: now})
				}
			}
			cur, gen, in, wcancel = next, ngen, nin, cancel
			if !runtime.Send(ctx, out, evs...) {
				return
			}
			timer.Reset(time.Until(r.nextLook()))
		}
	}
}

// nextLook is when to look for the missing runtimes again; far away when
// none is missing.
func (r *Redetecting) nextLook() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.missing) == 0 {
		return time.Now().Add(24 * time.Hour)
	}
	return r.next
}

func closeAll(ds []runtime.Discoverer) {
	for _, d := range ds {
		_ = d.Close()
	}
}

func (o *options) beneath(p string) string {
	if o.root == "" || o.root == "/" {
		return p
	}
	return filepath.Join(o.root, p)
}

// dockerEndpoint is $DOCKER_HOST (a unix:// path moved beneath the root),
// else the default socket when it exists.
func (o *options) dockerEndpoint() string {
	if h := o.getenv("DOCKER_HOST"); h != "" {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			return "unix://" + o.beneath(p)
		}
		return h
	}
	if p := o.beneath(DefaultDockerSocket); isSocket(p) {
		return "unix://" + p
	}
	return ""
}

func (o *options) containerdEndpoint() string {
	if a := o.getenv("CONTAINERD_ADDRESS"); a != "" {
		return o.beneath(strings.TrimPrefix(a, "unix://"))
	}
	if p := o.beneath(DefaultContainerdSocket); isSocket(p) {
		return p
	}
	return ""
}

func isSocket(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}
