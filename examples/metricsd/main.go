// Command metricsd is the daemon: it discovers the host's containers,
// reads their cgroup and network statistics at every interval and writes
// them to one or more sinks.
//
//	metricsd [flags]
//
// With no flags it detects the runtime (Docker, containerd, else the cgroup
// tree) and prints InfluxDB line protocol to standard output every 10 s.
// An endpoint given with -docker-host or -containerd-address (or
// $DOCKER_HOST, $CONTAINERD_ADDRESS) is required: the given ones are the
// runtimes used, and one that does not answer is an error, never a
// fallback. SIGINT and SIGTERM flush the sinks and exit 0. A bad flag, a
// given runtime or a sink that can not be reached at start is a one-line
// error and exit status 2.
//
// At the default log level (warn) it writes one line at start (version,
// runtime, sinks, interval, listen address, global tags), warnings (too few
// privileges or descriptors for the host's containers, at start), and
// failures that lose data, one line per cause at most once a minute. -once
// exits 1 when the snapshot is incomplete: a container that could not be
// opened, network figures missing, any collection or sink error.
//
// A container's io.kubernetes.* labels are its pod identity only in
// containerd's k8s.io namespace (-containerd-kubernetes-namespaces to
// change) and, with -docker-kubernetes, on a Docker a kubelet drives
// (cri-dockerd): elsewhere any container could choose them.
//
// Every point and series carries a host tag (the host's name; -host-tag)
// and the -tag key=value tags, the daemon's own included.
//
// Unless run with -once it serves HTTP on -listen (127.0.0.1:9338; "" for
// none): /healthz answers 200 while the process runs, /readyz 200 once a
// snapshot was taken and written and while the sinks keep writing (503 and
// the reason otherwise), and /metrics the Prometheus exposition with
// -sink prometheus (503 until the first snapshot), and / a live page of
// the host's containers (a sortable table, per-container charts of the
// last -live-points snapshots; 0 for none) with the JSON API it reads,
// /api/v1/ (sink/live; docs/LIVE.md), whatever the sinks. At most -max-conns
// connections are served at once (the next answered 503), one that sends
// no request for -idle-timeout is closed. -version prints the module
// version and VCS revision.
//
// It reads every cgroup controller and the cheap network tier (net/dev and
// sockstat) by default; -net adds snmp, snmp6, netstat and TCP states.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/cgroupfs"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/detect"
	"github.com/metricsd/metricsd/runtime/docker"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
	"github.com/metricsd/metricsd/sink/live"
	"github.com/metricsd/metricsd/sink/prometheus"
	"github.com/metricsd/metricsd/sink/stdout"
)

// trimAfterStart is a sink that, once the second snapshot has been
// written, returns to the operating system what starting needed and steady
// state does not: the heap of package initialisation, runtime detection,
// the first snapshot's listing and the event watcher's own (Docker: an
// inspect per container each), opening every handle, about 1 MB of
// resident memory the runtime's scavenger would give back only slowly, if
// at all; and the pages of the daemon's own executable that starting
// mapped (trimBinary), ~8 MB of the deployed daemon's ~22 MB resident set
// (docs/BENCHMARKS.md). It costs one garbage collection, once, and the
// page faults that bring back what a later collection or request needs.
type trimAfterStart struct{ n atomic.Int64 }

func (t *trimAfterStart) Write(ctx context.Context, s *sink.Snapshot) error {
	if t.n.Add(1) == 2 {
		debug.FreeOSMemory()
		trimBinary()
	}
	return nil
}

func (t *trimAfterStart) Close(ctx context.Context) error { return nil }

func main() {
	if os.Getenv("GOGC") == "" {
		// The heap is small and steady (handles, one snapshot): collecting
		// at 50% growth keeps the resident set ~1.5 MB lower for a
		// negligible CPU cost. GOGC overrides it.
		debug.SetGCPercent(50)
	}
	ctx, stop := signalContext()
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type config struct {
	runtime, hostRoot, format, listen, logLevel string
	dockerHost, containerdAddress               string
	dockerKubernetes                            bool
	containerdKubernetesNamespaces              string
	cgroupSubtree                               string
	interval                                    time.Duration
	once, version                               bool
	info, infoOnly                              bool
	sinks                                       multi
	net                                         string
	labels                                      string
	influxURL, influxDB, influxRP, influxUser   string
	influxOrg, influxBucket                     string
	influxBatch, influxBuffer                   int
	maxValueLen, maxInterfaces                  int
	push                                        *pushFlags // remotewrite, otlp, and every secret
	limitMaxAge                                 time.Duration
	livePoints, liveContainers                  int
}

func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	var c config
	fl := flag.NewFlagSet("metricsd", flag.ContinueOnError)
	fl.StringVar(&c.runtime, "runtime", "auto", "where containers come from: auto|docker|containerd|cgroupfs")
	fl.StringVar(&c.dockerHost, "docker-host", os.Getenv("DOCKER_HOST"), "Docker endpoint (unix:///path or tcp://host:port), required when given; default $DOCKER_HOST, else detected at /var/run/docker.sock beneath -host-root")
	fl.StringVar(&c.containerdAddress, "containerd-address", os.Getenv("CONTAINERD_ADDRESS"), "containerd socket, required when given; default $CONTAINERD_ADDRESS, else detected at /run/containerd/containerd.sock beneath -host-root")
	fl.BoolVar(&c.dockerKubernetes, "docker-kubernetes", false, "a kubelet drives the Docker daemon (cri-dockerd): take its containers' io.kubernetes.* labels as their pod identity (pod, namespace, container; pod sandboxes left out); by default they stay mere labels, which any container can set")
	fl.StringVar(&c.containerdKubernetesNamespaces, "containerd-kubernetes-namespaces", containerd.KubernetesNamespace, "comma-separated containerd namespaces whose containers' io.kubernetes.* labels are their pod identity (where the kubelet's CRI plugin puts its containers); * for every namespace, \"\" for none")
	fl.StringVar(&c.cgroupSubtree, "cgroup-subtree", "/", "with -runtime cgroupfs (or auto finding no daemon): walk only the groups beneath this cgroup path, such as /kubepods")
	fl.StringVar(&c.hostRoot, "host-root", "/", "the host's root, where its /proc, /sys and runtime sockets are (/host in a container)")
	fl.DurationVar(&c.interval, "interval", 10*time.Second, "collection interval")
	fl.BoolVar(&c.once, "once", false, "collect once, write, and exit")
	fl.Var(&c.sinks, "sink", "where to write: stdout|influx|prometheus|remotewrite|otlp (repeatable; default stdout)")
	fl.StringVar(&c.format, "format", "line", "stdout format: line (InfluxDB line protocol) or json (JSON lines)")
	fl.StringVar(&c.listen, "listen", "127.0.0.1:9338", "HTTP address of the live page (/), /healthz, /readyz and (with -sink prometheus) /metrics; \"\" for none (not with -once)")
	fl.IntVar(&c.livePoints, "live-points", live.DefaultPoints, "snapshots the live page keeps per container (its charts' span: 5 min at -interval 1s); 0 for no page (and no ring)")
	fl.IntVar(&c.liveContainers, "live-max-containers", live.DefaultMaxContainers, "containers the live page keeps; past it new ones are left out of the page and counted")
	fl.BoolVar(&c.version, "version", false, "print the version and VCS revision, and exit")
	filter := addFilterFlags(fl)
	ops := addOpsFlags(fl)
	fl.StringVar(&c.net, "net", "dev,sockstat", "network statistics to read: any of dev,sockstat,snmp,snmp6,netstat,tcpstates, or none")
	fl.DurationVar(&c.limitMaxAge, "limit-max-age", time.Minute, "how old reported limits (CPU quota, memory, pids, hugetlb) may be: their files are re-read (opened, read, closed) when older; 0 keeps them open and reads them at every interval")
	fl.StringVar(&c.labels, "labels", "", "comma-separated container labels to keep and export as tags")
	fl.BoolVar(&c.info, "info", false, "write a container_info series per container carrying every tag of the container")
	fl.BoolVar(&c.infoOnly, "info-only", false, "like -info, and every other series carries only the id tag (and -tag's): join container_info on id")
	fl.StringVar(&c.influxURL, "influx-url", "http://127.0.0.1:8086", "InfluxDB base URL")
	fl.StringVar(&c.influxDB, "influx-db", "metricsd", "InfluxDB 1.x database")
	fl.StringVar(&c.influxRP, "influx-rp", "", "InfluxDB 1.x retention policy")
	fl.StringVar(&c.influxUser, "influx-user", "", "InfluxDB 1.x user")
	fl.StringVar(&c.influxOrg, "influx-org", "", "InfluxDB 2.x organisation (with -influx-bucket and -influx-token: use the 2.x API)")
	fl.StringVar(&c.influxBucket, "influx-bucket", "", "InfluxDB 2.x bucket")
	fl.IntVar(&c.influxBatch, "influx-batch", 5000, "most points per InfluxDB write request")
	fl.IntVar(&c.influxBuffer, "influx-buffer", influx.DefaultBufferSnapshots, "snapshots buffered while InfluxDB is unreachable (however many containers); the oldest past them are dropped and counted")
	fl.IntVar(&c.maxValueLen, "max-value-len", sink.DefaultMaxValueLen, "most bytes of a tag or label value from a container (its name, labels, image, interfaces), longer ones cut and counted; -1 for no bound")
	fl.IntVar(&c.maxInterfaces, "max-interfaces", sink.DefaultMaxInterfaces, "most network interfaces written per namespace, the others left out and counted; -1 for no bound")
	c.push = addPushFlags(fl)
	c.push.addInfluxSecrets(fl)
	fl.StringVar(&c.logLevel, "log-level", "warn", "log level: debug|info|warn|error (to standard error)")
	fl.SetOutput(io.Discard) // errors are reported on one line below
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fl.SetOutput(errOut)
			fmt.Fprintln(errOut, "usage: metricsd [flags]")
			fl.PrintDefaults()
			return 0
		}
		fmt.Fprintf(errOut, "metricsd: %v (metricsd -h lists the flags)\n", err)
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(errOut, "metricsd: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	if c.version {
		fmt.Fprintln(out, version())
		return 0
	}
	fail := func(format string, a ...any) int {
		if ctx.Err() != nil { // SIGINT or SIGTERM while starting: not a failure
			fmt.Fprintln(errOut, "metricsd: stopped while starting")
			return 0
		}
		fmt.Fprintf(errOut, "metricsd: "+format+"\n", a...)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fail("-log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
	enterHostCgroupNS(c.hostRoot, log) // in a container: may re-execute the daemon
	if c.limitMaxAge < 0 {
		return fail("-limit-max-age must not be negative, got %v", c.limitMaxAge)
	}
	if c.interval <= 0 {
		return fail("-interval must be positive, got %v", c.interval)
	}
	if c.influxBatch < 1 || c.influxBuffer < 1 {
		return fail("-influx-batch and -influx-buffer must be positive, got %d and %d", c.influxBatch, c.influxBuffer)
	}
	if c.maxValueLen == 0 || c.maxValueLen < -1 || c.maxInterfaces == 0 || c.maxInterfaces < -1 {
		return fail("-max-value-len and -max-interfaces must be positive or -1 (no bound), got %d and %d", c.maxValueLen, c.maxInterfaces)
	}
	c.push.limits = sink.Limits{MaxValueLen: c.maxValueLen, MaxInterfaces: c.maxInterfaces}
	if err := filter.check(); err != nil {
		return fail("%v", err)
	}
	if err := c.push.resolve(); err != nil {
		return fail("%v", err)
	}
	if err := ops.check(); err != nil {
		return fail("%v", err)
	}
	parts, err := netParts(c.net)
	if err != nil {
		return fail("-net: %v", err)
	}
	if len(c.sinks) == 0 {
		c.sinks = multi{"stdout"}
	}
	tags := sink.DefaultTags()
	tags.RuntimeNamespace = true // a plain containerd container is named by name + namespace
	tags.Info, tags.InfoOnly = c.info, c.infoOnly
	var keep []string
	for _, l := range strings.Split(c.labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
			tags.Labels = append(tags.Labels, sink.LabelTag{Label: l})
		}
	}
	if tags.Global, err = ops.globalTags(c.hostRoot); err != nil {
		return fail("%v", err)
	}
	if _, err := sink.NewTagger(tags); err != nil {
		return fail("-labels, -tag: %v", err)
	}

	var sinks []sink.Sink
	closeAll := func() {
		for _, s := range sinks {
			s.Close(context.Background())
		}
	}
	mux := http.NewServeMux()
	var page http.Handler
	for _, name := range c.sinks {
		s, metrics, err := openSink(ctx, name, &c, tags, out, log)
		if err != nil {
			closeAll()
			return fail("-sink %s: %v", name, err)
		}
		sinks = append(sinks, s)
		if metrics != nil {
			page = metrics
		}
	}
	// The HTTP server: health, readiness and the prometheus sink's page
	// (503 until the first snapshot).
	ready := newReadiness(c.interval, sinks, c.sinks)
	healthHandlers(mux, ready)
	if page != nil {
		mux.Handle("/metrics", untilSnapshot(ready, page))
	}
	// The live page: a sink of its own, beside the chosen ones.
	var ring *live.Sink
	if !c.once && c.listen != "" && c.livePoints != 0 {
		ring, err = live.New(live.WithPoints(c.livePoints), live.WithMaxContainers(c.liveContainers),
			live.WithLimits(c.push.limits), live.WithLogger(log))
		if err != nil {
			closeAll()
			return fail("-live-points, -live-max-containers: %v", err)
		}
		mux.Handle("/", ring.Handler())
	}
	if !c.once && c.listen == "" && slices.Contains(c.sinks, "prometheus") {
		closeAll()
		return fail("-sink prometheus needs a -listen address")
	}
	listening := ""
	if !c.once && c.listen != "" {
		ln, err := net.Listen("tcp", c.listen)
		if err != nil {
			closeAll()
			return fail("-listen: %v", err)
		}
		stop, err := ops.serve(ln, mux, log)
		if err != nil {
			closeAll()
			return fail("-listen: %v", err)
		}
		defer stop()
		listening = ln.Addr().String()
		log.Info("metricsd: serving the live page, /healthz, /readyz and /metrics", "addr", listening)
	}

	disc, err := discoverer(ctx, &c, log)
	if err != nil {
		closeAll()
		return fail("-runtime %s: %v", c.runtime, err)
	}
	disc = filter.wrap(disc)
	opts := []metricsd.Option{
		metricsd.WithDiscoverer(disc), metricsd.WithHostRoot(c.hostRoot), metricsd.WithInterval(c.interval),
		metricsd.WithSinks(sinks...), metricsd.WithNetParts(parts), metricsd.WithLabels(keep...), metricsd.WithLogger(log),
		metricsd.WithLimitMaxAge(c.limitMaxAge),
	}
	if ring != nil {
		opts = append(opts, metricsd.WithSinks(ring))
	}
	if !c.once {
		// ready last: it is written after every real sink (see readiness).
		opts = append(opts, metricsd.WithSinks(&trimAfterStart{}, ready))
	}
	col, err := metricsd.New(ctx, opts...)
	if err != nil {
		disc.Close()
		closeAll()
		return fail("%v", err)
	}
	defer col.Close()
	ready.sinkErrors = func() uint64 { return col.Errors(metricsd.StageSink) }
	startLine(errOut, level, &c, disc, tags.Global, listening)

	if c.once {
		snap, err := col.Collect(ctx)
		if err != nil {
			closeAll()
			return fail("collect: %v", err)
		}
		status := 0
		if msg := onceFailures(col, snap); msg != "" {
			fmt.Fprintf(errOut, "metricsd: %s\n", msg)
			status = 1
		}
		for i, s := range sinks {
			if err := s.Write(ctx, snap); err != nil {
				fmt.Fprintf(errOut, "metricsd: -sink %s: %v\n", c.sinks[i], err)
				status = 1
			}
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, s := range sinks {
			if err := s.Close(cctx); err != nil {
				fmt.Fprintf(errOut, "metricsd: -sink %s: %v\n", c.sinks[i], err)
				status = 1
			}
		}
		return status
	}
	if err := col.Run(ctx); err != nil { // Run flushes and closes the sinks
		return fail("%v", err)
	}
	return 0
}

func netParts(s string) (netns.Parts, error) {
	if s == "none" || s == "" {
		return 0, nil
	}
	var p netns.Parts
	for _, n := range strings.Split(s, ",") {
		switch strings.TrimSpace(n) {
		case "dev":
			p |= netns.PartDev
		case "sockstat":
			p |= netns.PartSockstat
		case "snmp":
			p |= netns.PartSNMP
		case "snmp6":
			p |= netns.PartSNMP6
		case "netstat":
			p |= netns.PartNetstat
		case "tcpstates":
			p |= netns.PartTCPStates
		case "all":
			p |= netns.TierAll
		default:
			return 0, fmt.Errorf("unknown part %q", n)
		}
	}
	return p, nil
}

func discoverer(ctx context.Context, c *config, log *slog.Logger) (runtime.Discoverer, error) {
	root := c.hostRoot
	// The endpoints of -docker-host and -containerd-address (which default
	// to $DOCKER_HOST and $CONTAINERD_ADDRESS) are what detect.New looks at.
	getenv := func(k string) string {
		switch k {
		case "DOCKER_HOST":
			return c.dockerHost
		case "CONTAINERD_ADDRESS":
			return c.containerdAddress
		}
		return os.Getenv(k)
	}
	subtree := cgroupfs.WithSubtree(c.cgroupSubtree)
	switch c.runtime {
	case "auto":
		if d, ok, err := explicitDiscoverer(ctx, c, log); ok {
			return d, err
		}
		return detect.New(ctx, detect.WithHostRoot(root), detect.WithLogger(log), detect.WithGetenv(getenv),
			detect.WithDocker(docker.Opener(c.dockerOptions()...)), detect.WithContainerd(containerd.Opener(c.containerdOptions()...)),
			detect.WithCgroupFS(cgroupfs.Opener(subtree)))
	case "docker":
		opts := append([]docker.Option{docker.WithRoot(root), docker.WithLogger(log)}, c.dockerOptions()...)
		if c.dockerHost != "" {
			opts = append(opts, docker.WithHost(c.dockerHost))
		}
		return docker.New(ctx, opts...)
	case "containerd":
		opts := append([]containerd.Option{containerd.WithRoot(root), containerd.WithLogger(log)}, c.containerdOptions()...)
		if c.containerdAddress != "" {
			opts = append(opts, containerd.WithAddress(c.containerdAddress))
		}
		return containerd.New(ctx, opts...)
	case "cgroupfs":
		return cgroupfs.New(ctx, cgroupfs.WithRoot(root), cgroupfs.WithLogger(log), subtree)
	}
	return nil, errors.New("want auto, docker, containerd or cgroupfs")
}

// dockerOptions are the Docker adapter's options from the flags, whichever
// way the daemon opens it (-runtime docker or auto).
func (c *config) dockerOptions() []docker.Option {
	return []docker.Option{docker.WithKubernetes(c.dockerKubernetes)}
}

// containerdOptions are the containerd adapter's options from the flags.
func (c *config) containerdOptions() []containerd.Option {
	var ns []string
	for n := range strings.SplitSeq(c.containerdKubernetesNamespaces, ",") {
		if n = strings.TrimSpace(n); n != "" {
			ns = append(ns, n)
		}
	}
	return []containerd.Option{containerd.WithKubernetesNamespaces(ns...)}
}

// openSink opens the sink of a -sink name; metrics is the page to serve at
// /metrics, for the prometheus sink.
func openSink(ctx context.Context, name string, c *config, tags sink.Tags, out io.Writer, log *slog.Logger) (s sink.Sink, metrics http.Handler, err error) {
	switch name {
	case "stdout":
		f := stdout.LineProtocol
		switch c.format {
		case "line":
		case "json":
			f = stdout.JSONLines
		default:
			return nil, nil, fmt.Errorf("-format: want line or json, got %q", c.format)
		}
		s, err := stdout.New(out, stdout.WithFormat(f), stdout.WithTags(tags), stdout.WithLogger(log), stdout.WithLimits(c.push.limits))
		return s, nil, err
	case "influx":
		if err := ping(ctx, c.influxURL); err != nil {
			return nil, nil, fmt.Errorf("InfluxDB at %s unreachable: %v", c.influxURL, err)
		}
		opts := []influx.Option{influx.WithTags(tags), influx.WithLogger(log), influx.WithLimits(c.push.limits),
			influx.WithBatchSize(c.influxBatch), influx.WithBufferSnapshots(c.influxBuffer)}
		token, password := c.push.influxToken.value, c.push.influxPassword.value
		if c.influxOrg != "" || c.influxBucket != "" || token != "" {
			opts = append(opts, influx.WithV2(c.influxOrg, c.influxBucket, token))
		} else {
			opts = append(opts, influx.WithV1(c.influxDB, c.influxRP))
			if c.influxUser != "" {
				opts = append(opts, influx.WithCredentials(c.influxUser, password))
			}
		}
		s, err := influx.New(c.influxURL, opts...)
		return s, nil, err
	case "prometheus":
		p, err := prometheus.New(prometheus.WithTags(tags), prometheus.WithLogger(log), prometheus.WithLimits(c.push.limits))
		if err != nil {
			return nil, nil, err
		}
		return p, p.Handler(), nil
	case "remotewrite":
		s, err := c.push.openRemoteWrite(tags, log)
		return s, nil, err
	case "otlp":
		s, err := c.push.openOTLP(tags, moduleVersion(), log)
		return s, nil, err
	}
	return nil, nil, errors.New("want stdout, influx, prometheus, remotewrite or otlp")
}

// ping checks that an InfluxDB answers (1.x and 2.x both serve /ping).
func ping(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("/ping answered %s", resp.Status)
	}
	return nil
}
