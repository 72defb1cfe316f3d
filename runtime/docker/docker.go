// Package docker discovers Docker's containers through the official client,
// github.com/moby/moby/client. New pings the daemon with API version
// negotiation, so a daemon older than API 1.40 fails clearly at start;
// Docker 20.10 (API 1.41) and later work. It lists the running containers,
// inspects each for its PID, cgroup and network namespace, and streams the
// container events start, die, destroy (Podman: remove) and oom.
//
// Podman's Docker-compatible socket (podman system service) is a documented
// use of the same adapter: point WithHost at it.
//
// Every call is bounded by the discoverer's timeout (WithTimeout, 10 s by
// default); a daemon that is absent or does not answer gives an error
// matching runtime.ErrUnavailable.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
)

// Name is the runtime name this package reports.
const Name = "docker"

// Namespace is the containerd namespace Docker keeps its containers in; it
// is set on every container this package reports.
const Namespace = "moby"

// DefaultHost is Docker's default socket.
const DefaultHost = "unix:///var/run/docker.sock"

// DefaultTimeout bounds every call.
const DefaultTimeout = 10 * time.Second

// DefaultResync is how often Watch re-lists to catch what events missed.
const DefaultResync = time.Minute

// actionRemove is what Podman's Docker-compatible API sends where Docker
// sends "destroy".
const actionRemove events.Action = "remove"

// inspectWorkers bounds concurrent inspect calls in List.
const inspectWorkers = 4

type options struct {
	host       string
	timeout    time.Duration
	resync     time.Duration
	log        *slog.Logger
	root       string
	fs         *cgroup.FS
	sandboxes  bool
	kubernetes bool
	minBackoff time.Duration
	maxBackoff time.Duration
}

// Option configures New.
type Option func(*options)

// WithHost sets the daemon address: "unix:///path", "tcp://host:port".
func WithHost(host string) Option { return func(o *options) { o.host = host } }

// WithTimeout bounds each call (default 10 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithResync sets how often Watch re-lists while connected (default 1 min).
func WithResync(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithBackoff sets Watch's reconnection delays (default 100 ms doubling to 5 s).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRoot sets the host root prefix under which /proc is read.
func WithRoot(root string) Option { return func(o *options) { o.root = root } }

// WithFS uses an existing cgroup.FS for cgroup path resolution.
func WithFS(f *cgroup.FS) Option { return func(o *options) { o.fs = f } }

// WithSandboxes includes the pod sandbox containers of a kubelet-driven
// Docker (Pod.Sandbox set; see WithKubernetes), which are left out by
// default.
func WithSandboxes(on bool) Option { return func(o *options) { o.sandboxes = on } }

// WithKubernetes says that a kubelet drives this Docker (through
// cri-dockerd, or the dockershim of Kubernetes before 1.24): the
// io.kubernetes.* labels of its containers are then taken as their
// Kubernetes identity (Container.Pod, the Kubernetes container name as
// Name, and pod sandboxes left out unless WithSandboxes). By default they
// are not: whoever can start a container on a plain Docker host chooses its
// labels, and would otherwise hide it from every sink
// (io.kubernetes.docker.type=podsandbox) or pass it off as another
// (io.kubernetes.container.name=kube-apiserver with pod labels). The labels
// stay in Container.Labels either way.
func WithKubernetes(on bool) Option { return func(o *options) { o.kubernetes = on } }

// Discoverer is a Docker client. It is safe for concurrent use.
type Discoverer struct {
	o   options
	cli *client.Client
	fs  *cgroup.FS
	api string

	// known keeps what inspecting each running container gave, so that a
	// listing inspects only the containers it has not seen (see list).
	knownMu  sync.Mutex
	known    map[string]runtime.Container
	inspects atomic.Int64 // inspect calls made (tests)
}

var _ runtime.Discoverer = (*Discoverer)(nil)

// New makes a client and pings the daemon with API version negotiation. A
// daemon that does not answer, or whose API is older than the client
// supports (1.40), gives an error matching runtime.ErrUnavailable.
func New(ctx context.Context, opts ...Option) (*Discoverer, error) {
	o := options{host: DefaultHost, timeout: DefaultTimeout, resync: DefaultResync, root: "/",
		minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.timeout <= 0 {
		o.timeout = DefaultTimeout
	}
	f := o.fs
	if f == nil {
		var err error
		if f, err = cgroup.NewFS(ctx, cgroup.WithRoot(o.root), cgroup.WithLogger(o.log)); err != nil {
			return nil, fmt.Errorf("docker: %w", err)
		}
	}
	cli, err := client.New(client.WithHost(o.host))
	if err != nil {
		return nil, fmt.Errorf("docker: %s: %w: %w", o.host, runtime.ErrUnavailable, err)
	}
	d := &Discoverer{o: o, cli: cli, fs: f}
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	ping, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true, ForceNegotiate: true})
	if err != nil {
		cli.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("docker: ping %s: %w", o.host, ctx.Err())
		}
		return nil, fmt.Errorf("docker: ping %s (client API %s to %s): %w: %w", o.host, client.MinAPIVersion, client.MaxAPIVersion, runtime.ErrUnavailable, err)
	}
	d.api = cli.ClientVersion()
	o.log.Debug("docker: connected", "host", o.host, "daemon API", ping.APIVersion, "using API", d.api)
	return d, nil
}

// Opener is a runtime.Opener for runtime/detect.
func Opener(opts ...Option) runtime.Opener {
	return func(ctx context.Context, endpoint, root string, log *slog.Logger) (runtime.Discoverer, error) {
		return New(ctx, append([]Option{WithHost(endpoint), WithRoot(root), WithLogger(log)}, opts...)...)
	}
}

// Name returns "docker".
func (d *Discoverer) Name() string { return Name }

// APIVersion is the API version negotiated with the daemon.
func (d *Discoverer) APIVersion() string { return d.api }

// Close closes the client.
func (d *Discoverer) Close() error { return d.cli.Close() }

func (d *Discoverer) wrap(op string, err error) error {
	if client.IsErrConnectionFailed(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("docker: %s %s: %w: %w", op, d.o.host, runtime.ErrUnavailable, err)
	}
	return fmt.Errorf("docker: %s: %w", op, err)
}

// List returns the live (running and paused) containers, each inspected
// for its PID, cgroup path and network namespace. A container removed
// between the listing and its inspection is left out; one whose process
// has exited is reported with StateStopped. One whose inspection fails
// otherwise is left out too, and named in a *runtime.PartialError returned
// with the others: it does not cost them their listing.
//
// A container inspected by an earlier List (or event) is not inspected
// again while its process is the same one: the PID it had still names a
// process started at the same time (/proc/<pid>/stat), so the container has
// not been restarted and what inspecting it gave still holds; its name and
// state come from the listing. A listing of containers already known thus
// costs the daemon one request, not one per container.
func (d *Discoverer) List(ctx context.Context) ([]runtime.Container, error) {
	cs, _, err := d.list(ctx)
	return cs, err
}

// list returns the running containers and the keys of all containers.
func (d *Discoverer) list(ctx context.Context) ([]runtime.Container, map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	defer cancel()
	r, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, nil, d.wrap("list", err)
	}
	all := make(map[string]bool, len(r.Items))
	var ids []string
	var sums []container.Summary
	var res []runtime.Container
	live := make(map[string]bool, len(r.Items))
	for _, s := range r.Items {
		all[Namespace+"/"+s.ID] = true
		if s.State == container.StateRunning || s.State == container.StatePaused {
			live[s.ID] = true
			if c, ok := d.reuse(s); ok {
				res = append(res, c)
				continue
			}
			ids = append(ids, s.ID)
			sums = append(sums, s)
		}
	}
	d.forget(live)
	out := make([]runtime.Container, len(ids))
	ok := make([]bool, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < inspectWorkers && w < len(ids); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], ok[i], errs[i] = d.inspect(ctx, ids[i])
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	// One container that can not be inspected does not cost the others:
	// it is left out and named in a *runtime.PartialError. A daemon gone
	// (or ctx ended) mid-listing fails the listing.
	var partial runtime.PartialError
	var failed []error
	for i := range ids {
		if err := errs[i]; err != nil {
			if errors.Is(err, runtime.ErrUnavailable) || ctx.Err() != nil {
				return nil, nil, err
			}
			partial.Unknown = append(partial.Unknown, summaryContainer(sums[i]))
			failed = append(failed, err)
			continue
		}
		if ok[i] {
			res = append(res, out[i])
		}
	}
	if len(failed) > 0 {
		partial.Err = errors.Join(failed...)
		return res, all, &partial
	}
	return res, all, nil
}

// summaryContainer is what a listing's summary says of a container: enough
// to name it in a PartialError.
func summaryContainer(s container.Summary) runtime.Container {
	c := runtime.Container{ID: s.ID, Name: s.ID, Image: s.Image, Labels: s.Labels, Runtime: Name, Namespace: Namespace, State: runtime.StateRunning}
	if s.State == container.StatePaused {
		c.State = runtime.StatePaused
	}
	for _, n := range s.Names {
		if n = strings.TrimPrefix(n, "/"); n != "" && !strings.Contains(n, "/") {
			c.Name = n
			break
		}
	}
	return c
}

// inspect fetches one container; ok is false when it is gone, invalid or
// an excluded sandbox.
func (d *Discoverer) inspect(ctx context.Context, id string) (runtime.Container, bool, error) {
	if !runtime.ValidHexID(id) {
		d.o.log.Warn("docker: skipping container with an invalid ID", "id", id)
		return runtime.Container{}, false, nil
	}
	d.inspects.Add(1)
	r, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no such container") || isNotFound(err) {
			d.drop(id)
			return runtime.Container{}, false, nil
		}
		return runtime.Container{}, false, d.wrap("inspect", err)
	}
	c, ok := d.convert(ctx, r.Container)
	d.keep(c, ok)
	return c, ok, nil
}

// keep remembers an inspected container for list, when it runs (or is
// paused) in a cgroup found from its PID; anything else is forgotten.
func (d *Discoverer) keep(c runtime.Container, ok bool) {
	ok = ok && c.PID > 0 && c.PIDStart != 0 && c.CgroupPath != "" && (c.State == runtime.StateRunning || c.State == runtime.StatePaused)
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	if !ok {
		delete(d.known, c.ID)
		return
	}
	if d.known == nil {
		d.known = make(map[string]runtime.Container)
	}
	d.known[c.ID] = c
}

// reuse returns a listed container as inspected before, when its process is
// the one it was then.
func (d *Discoverer) reuse(s container.Summary) (runtime.Container, bool) {
	d.knownMu.Lock()
	k, ok := d.known[s.ID]
	d.knownMu.Unlock()
	if !ok {
		return runtime.Container{}, false
	}
	if start, ok := d.processStart(k.PID); !ok || start != k.PIDStart {
		d.drop(s.ID)
		return runtime.Container{}, false
	}
	c := k
	if c.Pod == nil || c.Pod.Container == "" { // renamed meanwhile?
		// Names holds the container's name ("/web") and, for legacy links,
		// the aliases other containers know it by ("/app/db").
		for _, n := range s.Names {
			if n = strings.TrimPrefix(n, "/"); n != "" && !strings.Contains(n, "/") {
				c.Name = n
				break
			}
		}
	}
	c.State = runtime.StateRunning
	if s.State == container.StatePaused {
		c.State = runtime.StatePaused
	}
	return c, true
}

func (d *Discoverer) drop(id string) {
	d.knownMu.Lock()
	delete(d.known, id)
	d.knownMu.Unlock()
}

// forget drops the containers no longer running.
func (d *Discoverer) forget(live map[string]bool) {
	d.knownMu.Lock()
	defer d.knownMu.Unlock()
	for id := range d.known {
		if !live[id] {
			delete(d.known, id)
		}
	}
}

// processStart is the start time of a process (runtime.ProcStartTicks
// beneath the host root); false when it is gone.
func (d *Discoverer) processStart(pid int) (uint64, bool) {
	t, err := runtime.ProcStartTicks(context.Background(), d.fs.Root(), pid)
	return t, err == nil
}

func isNotFound(err error) bool {
	var nf interface{ NotFound() }
	return errors.As(err, &nf)
}

func (d *Discoverer) convert(ctx context.Context, in container.InspectResponse) (runtime.Container, bool) {
	c := runtime.Container{
		ID:        in.ID,
		Name:      strings.TrimPrefix(in.Name, "/"),
		Runtime:   Name,
		Namespace: Namespace,
		State:     runtime.StateUnknown,
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if in.Config != nil {
		c.Image = in.Config.Image
		c.Labels = in.Config.Labels
	}
	if c.Image == "" {
		c.Image = in.Image
	}
	if d.o.kubernetes {
		c.Pod = runtime.PodFromLabels(c.Labels)
	}
	if c.Pod != nil && c.Pod.Sandbox && !d.o.sandboxes {
		return c, false
	}
	if c.Pod != nil && c.Pod.Container != "" {
		c.Name = c.Pod.Container
	}
	if st := in.State; st != nil {
		switch {
		case st.Paused:
			c.State = runtime.StatePaused
		case st.Running:
			c.State = runtime.StateRunning
		case st.Status == container.StateCreated:
			c.State = runtime.StateCreated
		default:
			c.State = runtime.StateStopped
		}
		if st.Running {
			c.PID = st.Pid
		}
		if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && t.Year() > 1 {
			c.Started = t
		}
	}
	c.NetNS = runtime.NetNS{PID: c.PID}
	if in.HostConfig != nil && in.HostConfig.NetworkMode == "host" {
		c.NetNS.Host = true
	} else if in.NetworkSettings != nil && in.NetworkSettings.SandboxKey != "" {
		// The sandbox's bind mount exists only when libnetwork made the
		// namespace (not for --bridge=none's "default" or "none"
		// networks, where runc made it): then the PID is the locator.
		if _, err := os.Stat(filepath.Join(d.fs.Root(), in.NetworkSettings.SandboxKey)); err == nil {
			c.NetNS.Path = in.NetworkSettings.SandboxKey
		}
	}
	if c.PID > 0 {
		path, start, err := runtime.ResolveProcess(ctx, d.fs, c.PID)
		if err != nil {
			d.o.log.Debug("docker: container process gone", "id", c.ID, "pid", c.PID, "err", err)
			c.State = runtime.StateStopped
		} else {
			c.CgroupPath, c.PIDStart = path, start
		}
	}
	return c, true
}

// Watch lists the live containers, then streams container events (start,
// die, destroy, oom). When the stream breaks (the daemon stopped or
// restarted), or the daemon is not there yet, it connects with backoff and
// re-lists, reporting only what changed meanwhile (runtime.Tracker), so
// that no container is lost or reported twice; each failed attempt is an
// EventError. It also re-lists once a second after each (re)connection and
// every WithResync period, and soon (1 s, doubling) after a container could
// not be inspected (an EventError too). The channel closes when ctx ends.
// It fails only when ctx has ended.
func (d *Discoverer) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cs, _, err := d.list(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	ch := make(chan runtime.Event, 64)
	go d.watch(ctx, runtime.NewTracker(cs), ch, err)
	return ch, nil
}

// watch runs sessions until ctx ends. first is the first listing's error,
// reported as an EventError.
func (d *Discoverer) watch(ctx context.Context, t *runtime.Tracker, ch chan<- runtime.Event, first error) {
	defer close(ch)
	if first != nil {
		d.o.log.Warn("docker: first listing failed", "host", d.o.host, "err", first)
		if !runtime.Send(ctx, ch, runtime.Event{Type: runtime.EventError, Container: runtime.Container{Runtime: Name}, Time: time.Now(), Err: first}) {
			return
		}
	}
	bo := runtime.Backoff{Min: d.o.minBackoff, Max: d.o.maxBackoff}
	for ctx.Err() == nil {
		err := d.session(ctx, t, ch, &bo)
		if ctx.Err() != nil {
			return
		}
		delay := bo.Next()
		d.o.log.Info("docker: event stream lost; reconnecting", "err", err, "in", delay)
		ev := runtime.Event{Type: runtime.EventError, Container: runtime.Container{Runtime: Name}, Time: time.Now(), Err: err}
		if !runtime.Send(ctx, ch, ev) || !runtime.Sleep(ctx, delay) {
			return
		}
	}
}

func (d *Discoverer) session(ctx context.Context, t *runtime.Tracker, ch chan<- runtime.Event, bo *runtime.Backoff) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The stream itself is unbounded; connecting is bounded by the
	// timeout (the client returns once the daemon sent its headers).
	connected := make(chan struct{})
	timer := time.AfterFunc(d.o.timeout, func() {
		select {
		case <-connected:
		default:
			cancel()
		}
	})
	defer timer.Stop()
	// Container events only; the actions are chosen here, in handle, not
	// with an "event" filter: Podman's Docker-compatible stream (4.3),
	// filtered on start, die, destroy, oom and remove, sends start alone and
	// never die (TestPodman on cgroup v2, scripts/v2lane.sh).
	f := make(client.Filters).Add("type", string(events.ContainerEventType))
	res := d.cli.Events(sctx, client.EventsListOptions{Filters: f})
	close(connected)
	select {
	case err := <-res.Err:
		if err == nil {
			err = io.EOF
		}
		return d.wrap("events", err)
	default:
	}
	period := d.o.resync
	if period <= 0 {
		period = DefaultResync
	}
	// retry paces the listings that follow a container that could not be
	// inspected.
	retry := runtime.Backoff{Min: time.Second, Max: period}
	soon, err := d.resync(ctx, t, ch)
	if err != nil {
		return err
	}
	bo.Reset()
	settle := time.NewTimer(time.Second)
	defer settle.Stop()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		if soon {
			settle.Reset(retry.Next())
			soon = false
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-settle.C:
			if soon, err = d.resync(ctx, t, ch); err != nil {
				return err
			}
			if !soon {
				retry.Reset()
			}
		case <-tick.C:
			if soon, err = d.resync(ctx, t, ch); err != nil {
				return err
			}
		case err := <-res.Err:
			if err == nil {
				err = io.EOF
			}
			return d.wrap("events", err)
		case m := <-res.Messages:
			var evs []runtime.Event
			evs, soon = d.handle(ctx, t, m)
			if !runtime.Send(ctx, ch, evs...) {
				return ctx.Err()
			}
		}
	}
}

// resync lists and reports the differences. A listing that could not
// inspect every container reports the others, leaves those as they were, and
// sends an EventError; soon is then true: list again soon.
func (d *Discoverer) resync(ctx context.Context, t *runtime.Tracker, ch chan<- runtime.Event) (soon bool, err error) {
	cs, all, err := d.list(ctx)
	var partial *runtime.PartialError
	if err != nil && !errors.As(err, &partial) {
		return false, err
	}
	exists := func(k string) bool { return all[k] }
	if partial == nil {
		runtime.Send(ctx, ch, t.Resync(cs, exists, time.Now())...)
		return false, nil
	}
	unknown := make(map[string]bool, len(partial.Unknown))
	for _, c := range partial.Unknown {
		unknown[runtime.Key(c)] = true
	}
	evs := t.ResyncPartial(cs, exists, func(k string) bool { return unknown[k] }, time.Now())
	evs = append(evs, runtime.Event{Type: runtime.EventError, Container: runtime.Container{Runtime: Name}, Time: time.Now(), Err: partial})
	d.o.log.Warn("docker: listing: containers not inspected; listing again soon", "n", len(partial.Unknown), "err", partial.Err)
	runtime.Send(ctx, ch, evs...)
	return true, nil
}

// handle turns one event into the events to report; soon asks for a
// listing soon (a started container could not be inspected).
func (d *Discoverer) handle(ctx context.Context, t *runtime.Tracker, m events.Message) (evs []runtime.Event, soon bool) {
	if m.Type != events.ContainerEventType || !runtime.ValidHexID(m.Actor.ID) {
		return nil, false
	}
	when := time.Now()
	if m.TimeNano != 0 {
		when = time.Unix(0, m.TimeNano)
	} else if m.Time != 0 {
		when = time.Unix(m.Time, 0)
	}
	ref := runtime.Container{ID: m.Actor.ID, Name: strings.TrimPrefix(m.Actor.Attributes["name"], "/"), Runtime: Name, Namespace: Namespace}
	switch m.Action {
	case events.ActionStart:
		cctx, cancel := context.WithTimeout(ctx, d.o.timeout)
		defer cancel()
		c, ok, err := d.inspect(cctx, m.Actor.ID)
		if err != nil {
			// Running, but not described: say so, and list again soon
			// (the listing describes it, or its die/destroy follow).
			d.o.log.Warn("docker: inspect of a started container failed; listing again soon", "id", m.Actor.ID, "err", err)
			return []runtime.Event{{Type: runtime.EventError, Container: ref, Time: when, Err: err}}, true
		}
		if !ok || c.State != runtime.StateRunning {
			// Gone already, or excluded; its die/destroy follow.
			return nil, false
		}
		return t.Apply(runtime.Event{Type: runtime.EventStarted, Container: c, Time: when}), false
	case events.ActionDie:
		d.drop(m.Actor.ID)
		return t.Apply(runtime.Event{Type: runtime.EventStopped, Container: ref, Time: when}), false
	case events.ActionDestroy, actionRemove:
		d.drop(m.Actor.ID)
		return t.Apply(runtime.Event{Type: runtime.EventRemoved, Container: ref, Time: when}), false
	case events.ActionOOM:
		return t.Apply(runtime.Event{Type: runtime.EventOOM, Container: ref, Time: when}), false
	}
	return nil, false
}
