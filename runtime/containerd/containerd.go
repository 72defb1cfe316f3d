// Package containerd discovers containerd's containers over its raw gRPC API
// (github.com/containerd/containerd/api and google.golang.org/grpc, not the
// full containerd client). It lists containers with their labels and image,
// their tasks' PIDs and cgroups, in all namespaces or a chosen list, and
// streams the task events /tasks/start, /tasks/exit, /tasks/delete and
// /tasks/oom. It works against containerd 1.6 and later.
//
// Kubernetes CRI pods: a container's Kubernetes identity (Container.Pod)
// comes from its labels in the CRI's namespace, k8s.io, only
// (WithKubernetesNamespaces): elsewhere a container chooses its own. A
// pod's sandbox ("pause") container owns the pod's network namespace and is
// not a workload, so it is left out of List and Watch unless
// WithSandboxes(true); the workload containers name its network namespace
// in Container.NetNS.
//
// Every call is bounded by the discoverer's timeout (WithTimeout, 10 s by
// default); a containerd that is absent or does not answer gives an error
// matching runtime.ErrUnavailable.
package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	versionapi "github.com/containerd/containerd/api/services/version/v1"
	apitypes "github.com/containerd/containerd/api/types"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/runtime"
)

// Name is the runtime name this package reports.
const Name = "containerd"

// DefaultAddress is containerd's default socket.
const DefaultAddress = "/run/containerd/containerd.sock"

// DefaultTimeout bounds every call.
const DefaultTimeout = 10 * time.Second

// DefaultResync is how often Watch re-lists to catch what events missed.
const DefaultResync = time.Minute

// namespaceKey is the gRPC metadata key containerd reads the namespace from.
const namespaceKey = "containerd-namespace"

type options struct {
	address    string
	namespaces []string
	without    []string
	timeout    time.Duration
	resync     time.Duration
	log        *slog.Logger
	root       string
	fs         *cgroup.FS
	sandboxes  bool
	kubeNS     []string
	minBackoff time.Duration
	maxBackoff time.Duration
}

// Option configures New.
type Option func(*options)

// WithAddress sets containerd's socket path ("unix://" prefix allowed).
func WithAddress(addr string) Option {
	return func(o *options) { o.address = strings.TrimPrefix(addr, "unix://") }
}

// WithNamespaces limits discovery to these namespaces; default all.
func WithNamespaces(ns ...string) Option {
	return func(o *options) { o.namespaces = append([]string(nil), ns...) }
}

// WithoutNamespaces leaves these namespaces out of List and Watch: they are
// not listed, and containerd itself filters their events out. A
// runtime.Multi with a Docker discoverer does the same for "moby", where
// Docker keeps its containers (SkipNamespaces).
func WithoutNamespaces(ns ...string) Option {
	return func(o *options) { o.without = append([]string(nil), ns...) }
}

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

// WithSandboxes includes CRI sandbox containers (Pod.Sandbox set) in List
// and Watch.
func WithSandboxes(on bool) Option { return func(o *options) { o.sandboxes = on } }

// KubernetesNamespace is the namespace containerd's CRI plugin keeps the
// containers a kubelet makes in.
const KubernetesNamespace = "k8s.io"

// WithKubernetesNamespaces sets the containerd namespaces whose containers'
// io.kubernetes.* and io.cri-containerd.* labels are taken as their
// Kubernetes identity (Container.Pod, the Kubernetes container name as
// Name, sandboxes left out unless WithSandboxes): by default only
// KubernetesNamespace, where the CRI plugin puts what the kubelet asks for.
// Elsewhere those labels are whatever whoever made the container chose:
// taken as identity, they would let a container hide from every sink (a
// sandbox kind) or pass itself off as another (a kube-apiserver container
// name with pod labels). "*" trusts every namespace; no argument, none. The
// labels stay in Container.Labels either way.
func WithKubernetesNamespaces(ns ...string) Option {
	return func(o *options) { o.kubeNS = append([]string{}, ns...) }
}

// Discoverer is a containerd client. It is safe for concurrent use.
type Discoverer struct {
	o          options
	conn       *grpc.ClientConn
	containers containersapi.ContainersClient
	tasks      tasksapi.TasksClient
	namespaces namespacesapi.NamespacesClient
	events     eventsapi.EventsClient
	fs         *cgroup.FS
	version    string

	mu      sync.RWMutex
	without []string // namespaces left out: WithoutNamespaces, SkipNamespaces
}

var (
	_ runtime.Discoverer       = (*Discoverer)(nil)
	_ runtime.NamespaceSkipper = (*Discoverer)(nil)
)

// New connects to containerd and checks that it answers (its Version call).
func New(ctx context.Context, opts ...Option) (*Discoverer, error) {
	o := options{address: DefaultAddress, timeout: DefaultTimeout, resync: DefaultResync, root: "/", kubeNS: []string{KubernetesNamespace},
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
	for _, ns := range append(append([]string(nil), o.namespaces...), o.without...) {
		if err := runtime.CheckID(ns); err != nil {
			return nil, fmt.Errorf("containerd: namespace: %w", err)
		}
	}
	f := o.fs
	if f == nil {
		var err error
		if f, err = cgroup.NewFS(ctx, cgroup.WithRoot(o.root), cgroup.WithLogger(o.log)); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	conn, err := grpc.NewClient("unix://"+o.address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("containerd: %s: %w: %w", o.address, runtime.ErrUnavailable, err)
	}
	d := &Discoverer{
		o: o, conn: conn, fs: f,
		containers: containersapi.NewContainersClient(conn),
		tasks:      tasksapi.NewTasksClient(conn),
		namespaces: namespacesapi.NewNamespacesClient(conn),
		events:     eventsapi.NewEventsClient(conn),
		without:    o.without,
	}
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	// No socket, or nobody listening on it, fails now with the reason:
	// gRPC would wait for it the whole timeout.
	if err := dialCheck(cctx, o.address); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("containerd: %s: %w", o.address, ctx.Err())
		}
		return nil, fmt.Errorf("containerd: %s: %w: %w", o.address, runtime.ErrUnavailable, err)
	}
	// WaitForReady so that a daemon still starting (listening, not yet
	// serving) is given the whole timeout.
	v, err := versionapi.NewVersionClient(conn).Version(cctx, &emptypb.Empty{}, grpc.WaitForReady(true))
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("containerd: version %s: %w", o.address, ctx.Err())
		}
		return nil, d.wrap("version", err)
	}
	d.version = v.GetVersion()
	o.log.Debug("containerd: connected", "address", o.address, "version", d.version)
	return d, nil
}

// dialCheck connects to the socket once and hangs up.
func dialCheck(ctx context.Context, address string) error {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", address)
	if err != nil {
		return err
	}
	return c.Close()
}

// Opener is a runtime.Opener for runtime/detect.
func Opener(opts ...Option) runtime.Opener {
	return func(ctx context.Context, endpoint, root string, log *slog.Logger) (runtime.Discoverer, error) {
		return New(ctx, append([]Option{WithAddress(endpoint), WithRoot(root), WithLogger(log)}, opts...)...)
	}
}

// Name returns "containerd".
func (d *Discoverer) Name() string { return Name }

// Version is the daemon's version, as it answered New.
func (d *Discoverer) Version() string { return d.version }

// Close closes the connection.
func (d *Discoverer) Close() error { return d.conn.Close() }

// wrap marks connection failures and timeouts as runtime.ErrUnavailable.
func (d *Discoverer) wrap(op string, err error) error {
	switch status.Code(err) {
	case codes.Canceled:
		// The caller's context ended: not the runtime's failure.
		return fmt.Errorf("containerd: %s %s: %w (%w)", op, d.o.address, context.Canceled, err)
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("containerd: %s %s: %w: %w", op, d.o.address, runtime.ErrUnavailable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("containerd: %s %s: %w: %w", op, d.o.address, runtime.ErrUnavailable, err)
	}
	return fmt.Errorf("containerd: %s: %w", op, err)
}

func withNS(ctx context.Context, ns string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, namespaceKey, ns)
}

// List returns the containers whose task is running or paused, in every
// chosen namespace. A container whose task's process has already exited is
// reported with StateStopped.
func (d *Discoverer) List(ctx context.Context) ([]runtime.Container, error) {
	cs, _, err := d.list(ctx)
	return cs, err
}

func (d *Discoverer) nsList(ctx context.Context) ([]string, error) {
	if len(d.o.namespaces) > 0 {
		out := make([]string, 0, len(d.o.namespaces))
		for _, n := range d.o.namespaces {
			if d.wanted(n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	r, err := d.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{})
	if err != nil {
		return nil, d.wrap("list namespaces", err)
	}
	out := make([]string, 0, len(r.Namespaces))
	for _, n := range r.Namespaces {
		if d.wanted(n.Name) {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// list returns the running containers and the keys of all containers.
func (d *Discoverer) list(ctx context.Context) ([]runtime.Container, map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	defer cancel()
	nss, err := d.nsList(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []runtime.Container
	all := make(map[string]bool)
	boot, _ := runtime.BootTime(ctx, d.fs.Root())
	for _, ns := range nss {
		nctx := withNS(ctx, ns)
		tr, err := d.tasks.List(nctx, &tasksapi.ListTasksRequest{})
		if err != nil {
			return nil, nil, d.wrap("list tasks", err)
		}
		if len(tr.Tasks) == 0 {
			// Containers without tasks still exist (for Watch's resync).
			cr, err := d.containers.List(nctx, &containersapi.ListContainersRequest{})
			if err != nil {
				return nil, nil, d.wrap("list containers", err)
			}
			for _, c := range cr.Containers {
				all[ns+"/"+c.ID] = true
			}
			continue
		}
		procs := make(map[string]*tasktypes.Process, len(tr.Tasks))
		for _, p := range tr.Tasks {
			// containerd 1.6 fills in only ID (the container's) for a task.
			id := p.ContainerID
			if id == "" {
				id = p.ID
			}
			procs[id] = p
		}
		cr, err := d.containers.List(nctx, &containersapi.ListContainersRequest{})
		if err != nil {
			return nil, nil, d.wrap("list containers", err)
		}
		for _, c := range cr.Containers {
			all[ns+"/"+c.ID] = true
			p := procs[c.ID]
			if p == nil || (p.Status != tasktypes.Status_RUNNING && p.Status != tasktypes.Status_PAUSED) {
				continue
			}
			rc, ok := d.convert(ctx, ns, c, int(p.Pid), boot)
			if !ok {
				continue
			}
			if p.Status == tasktypes.Status_PAUSED && rc.State == runtime.StateRunning {
				rc.State = runtime.StatePaused
			}
			out = append(out, rc)
		}
	}
	return out, all, nil
}

// convert builds a runtime.Container; ok is false for an invalid ID or an
// excluded sandbox.
func (d *Discoverer) convert(ctx context.Context, ns string, c *containersapi.Container, pid int, boot time.Time) (runtime.Container, bool) {
	if err := runtime.CheckID(c.ID); err != nil {
		d.o.log.Warn("containerd: skipping container", "namespace", ns, "err", err)
		return runtime.Container{}, false
	}
	rc := runtime.Container{
		ID:        c.ID,
		Name:      c.ID,
		Image:     c.Image,
		Labels:    c.Labels,
		Runtime:   Name,
		Namespace: ns,
		PID:       pid,
		State:     runtime.StateRunning,
	}
	if d.kubernetes(ns) {
		rc.Pod = runtime.PodFromLabels(c.Labels)
	}
	if rc.Pod != nil && rc.Pod.Sandbox && !d.o.sandboxes {
		return rc, false
	}
	switch {
	case rc.Pod != nil && rc.Pod.Container != "":
		rc.Name = rc.Pod.Container
	case c.Labels["nerdctl/name"] != "":
		rc.Name = c.Labels["nerdctl/name"]
	}
	rc.NetNS = netNS(c, pid)
	if pid > 0 {
		path, start, err := runtime.ResolveProcess(ctx, d.fs, pid)
		if err == nil {
			rc.CgroupPath, rc.PIDStart = path, start
			if boot.IsZero() {
				boot, err = runtime.BootTime(ctx, d.fs.Root())
			}
			rc.Started = runtime.TicksTime(boot, start)
		}
		if err != nil {
			d.o.log.Debug("containerd: task process gone", "namespace", ns, "id", c.ID, "pid", pid, "err", err)
			rc.State = runtime.StateStopped
		}
	}
	return rc, true
}

// netNS reads the network namespace from the container's OCI spec: a path
// that another process's (/proc/<pid>/ns/net: a CRI sandbox's) or a
// named namespace's; none in the spec means the host's.
func netNS(c *containersapi.Container, pid int) runtime.NetNS {
	if c.Spec == nil || len(c.Spec.Value) == 0 {
		return runtime.NetNS{PID: pid}
	}
	var spec struct {
		Linux *struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(c.Spec.Value, &spec); err != nil || spec.Linux == nil {
		return runtime.NetNS{PID: pid}
	}
	for _, n := range spec.Linux.Namespaces {
		if n.Type != "network" {
			continue
		}
		if n.Path == "" {
			return runtime.NetNS{PID: pid}
		}
		ns := runtime.NetNS{Path: n.Path}
		if rest, ok := strings.CutPrefix(n.Path, "/proc/"); ok {
			if p, ok := strings.CutSuffix(rest, "/ns/net"); ok {
				if v, err := strconv.Atoi(p); err == nil {
					ns.PID = v
				}
			}
		}
		if ns.PID == 0 {
			ns.PID = pid
		}
		return ns
	}
	return runtime.NetNS{PID: pid, Host: true}
}

// SkipNamespaces leaves these namespaces out of List and Watch from now on,
// as WithoutNamespaces does; an event subscription already made takes the
// change when it reconnects (events of those namespaces are dropped
// meanwhile). runtime.NewMulti calls it with "moby" when a Docker
// discoverer is present: Docker reports those containers itself, and
// listing them here too fetched every one's OCI spec once a minute only to
// drop it (docs/BENCHMARKS.md, the deployed daemon).
func (d *Discoverer) SkipNamespaces(ns ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range ns {
		if !slices.Contains(d.without, n) {
			d.without = append(slices.Clip(d.without), n)
		}
	}
}

// kubernetes reports whether the labels of namespace ns's containers are
// trusted as their Kubernetes identity (WithKubernetesNamespaces).
func (d *Discoverer) kubernetes(ns string) bool {
	for _, k := range d.o.kubeNS {
		if k == ns || k == "*" {
			return true
		}
	}
	return false
}

func (d *Discoverer) wanted(ns string) bool {
	d.mu.RLock()
	skip := slices.Contains(d.without, ns)
	d.mu.RUnlock()
	return !skip && (len(d.o.namespaces) == 0 || slices.Contains(d.o.namespaces, ns))
}

// eventFilter is the subscription's filter: task events, of no namespace
// left out.
func (d *Discoverer) eventFilter() string {
	f := `topic~="^/tasks/"`
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, ns := range d.without {
		f += `,namespace!=` + strconv.Quote(ns)
	}
	return f
}

// Watch lists the live containers, then streams task events. When the
// connection breaks, or containerd is not there yet, it connects with
// backoff, subscribes and re-lists, reporting only what changed meanwhile
// (runtime.Tracker), so that no container is lost or reported twice; each
// failed attempt is an EventError. It also re-lists once a second after
// each subscription (closing the gap while the subscription registers),
// every WithResync period, and soon (1 s, doubling) after a started
// container could not be fetched (an EventError too). The channel closes
// when ctx ends. It fails only when ctx has ended.
func (d *Discoverer) Watch(ctx context.Context) (<-chan runtime.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	initial, err := d.List(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	ch := make(chan runtime.Event, 64)
	go d.watch(ctx, runtime.NewTracker(initial), ch, err)
	return ch, nil
}

// watch runs sessions until ctx ends. first is the first listing's error,
// reported as an EventError.
func (d *Discoverer) watch(ctx context.Context, t *runtime.Tracker, ch chan<- runtime.Event, first error) {
	defer close(ch)
	if first != nil {
		d.o.log.Warn("containerd: first listing failed", "address", d.o.address, "err", first)
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
		d.o.log.Info("containerd: event stream lost; reconnecting", "err", err, "in", delay)
		ev := runtime.Event{Type: runtime.EventError, Container: runtime.Container{Runtime: Name}, Time: time.Now(), Err: err}
		if !runtime.Send(ctx, ch, ev) || !runtime.Sleep(ctx, delay) {
			return
		}
	}
}

type recvResult struct {
	env *apitypes.Envelope
	err error
}

// session subscribes, resyncs and relays events until the stream breaks.
func (d *Discoverer) session(ctx context.Context, t *runtime.Tracker, ch chan<- runtime.Event, bo *runtime.Backoff) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := d.events.Subscribe(sctx, &eventsapi.SubscribeRequest{Filters: []string{d.eventFilter()}})
	if err != nil {
		return d.wrap("subscribe", err)
	}
	recv := make(chan recvResult)
	go func() {
		for {
			env, err := stream.Recv()
			select {
			case recv <- recvResult{env, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	if err := d.resync(ctx, t, ch); err != nil {
		return err
	}
	bo.Reset()
	settle := time.NewTimer(time.Second)
	defer settle.Stop()
	period := d.o.resync
	if period <= 0 {
		period = DefaultResync
	}
	// retry paces the listings that follow a started container that
	// could not be fetched.
	retry := runtime.Backoff{Min: time.Second, Max: period}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-settle.C:
			if err := d.resync(ctx, t, ch); err != nil {
				return err
			}
			retry.Reset()
		case <-tick.C:
			if err := d.resync(ctx, t, ch); err != nil {
				return err
			}
		case r := <-recv:
			if r.err != nil {
				return d.wrap("events", r.err)
			}
			evs, soon := d.handle(ctx, t, r.env)
			if soon {
				settle.Reset(retry.Next())
			}
			if !runtime.Send(ctx, ch, evs...) {
				return ctx.Err()
			}
		}
	}
}

func (d *Discoverer) resync(ctx context.Context, t *runtime.Tracker, ch chan<- runtime.Event) error {
	cs, all, err := d.list(ctx)
	if err != nil {
		return err
	}
	runtime.Send(ctx, ch, t.Resync(cs, func(k string) bool { return all[k] }, time.Now())...)
	return nil
}

// handle turns one envelope into the events to report; soon asks for a
// listing soon (a started container could not be fetched).
func (d *Discoverer) handle(ctx context.Context, t *runtime.Tracker, env *apitypes.Envelope) (evs []runtime.Event, soon bool) {
	if env == nil || env.Event == nil || !d.wanted(env.Namespace) {
		return nil, false
	}
	when := time.Now()
	if env.Timestamp != nil {
		when = env.Timestamp.AsTime()
	}
	ns := env.Namespace
	typ := env.Event.TypeUrl
	if i := strings.LastIndexByte(typ, '/'); i >= 0 {
		typ = typ[i+1:]
	}
	ref := func(id string) runtime.Container {
		return runtime.Container{ID: id, Name: id, Runtime: Name, Namespace: ns}
	}
	switch typ {
	case "containerd.events.TaskStart":
		var e eventtypes.TaskStart
		if proto.Unmarshal(env.Event.Value, &e) != nil {
			return nil, false
		}
		c, ok, err := d.get(ctx, ns, e.ContainerID, int(e.Pid))
		if err != nil {
			// Running, but not described: say so, and list again soon
			// (the listing describes it, or its exit follows).
			d.o.log.Warn("containerd: get of a started container failed; listing again soon", "namespace", ns, "id", e.ContainerID, "err", err)
			return []runtime.Event{{Type: runtime.EventError, Container: ref(e.ContainerID), Time: when, Err: err}}, true
		}
		if !ok {
			return nil, false
		}
		return t.Apply(runtime.Event{Type: runtime.EventStarted, Container: c, Time: when}), false
	case "containerd.events.TaskExit":
		var e eventtypes.TaskExit
		if proto.Unmarshal(env.Event.Value, &e) != nil || (e.ID != "" && e.ID != e.ContainerID) {
			return nil, false // an exec'd process, not the task
		}
		return t.Apply(runtime.Event{Type: runtime.EventStopped, Container: ref(e.ContainerID), Time: when}), false
	case "containerd.events.TaskDelete":
		var e eventtypes.TaskDelete
		if proto.Unmarshal(env.Event.Value, &e) != nil || (e.ID != "" && e.ID != e.ContainerID) {
			return nil, false
		}
		return t.Apply(runtime.Event{Type: runtime.EventRemoved, Container: ref(e.ContainerID), Time: when}), false
	case "containerd.events.TaskOOM":
		var e eventtypes.TaskOOM
		if proto.Unmarshal(env.Event.Value, &e) != nil {
			return nil, false
		}
		return t.Apply(runtime.Event{Type: runtime.EventOOM, Container: ref(e.ContainerID), Time: when}), false
	}
	return nil, false
}

// get fetches one container for a start event; ok is false when it is gone
// already, invalid or excluded.
func (d *Discoverer) get(ctx context.Context, ns, id string, pid int) (c runtime.Container, ok bool, err error) {
	if runtime.CheckID(id) != nil {
		return runtime.Container{}, false, nil
	}
	cctx, cancel := context.WithTimeout(withNS(ctx, ns), d.o.timeout)
	defer cancel()
	r, err := d.containers.Get(cctx, &containersapi.GetContainerRequest{ID: id})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return runtime.Container{}, false, nil
		}
		return runtime.Container{}, false, d.wrap("get container", err)
	}
	c, ok = d.convert(cctx, ns, r.Container, pid, time.Time{})
	return c, ok, nil
}
