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
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/connlimit"
	"github.com/metricsd/metricsd/internal/ratelog"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/runtime/containerd"
	"github.com/metricsd/metricsd/runtime/docker"
	"github.com/metricsd/metricsd/sink"
)

// opsFlags are the daemon's operational flags: the tags every point gets,
// and the bounds of its HTTP server.
type opsFlags struct {
	hostTag     string
	tags        multi
	maxConns    int
	idleTimeout time.Duration
}

func addOpsFlags(fl *flag.FlagSet) *opsFlags {
	o := &opsFlags{}
	fl.StringVar(&o.hostTag, "host-tag", "auto", `the "host" tag on every point and series, the daemon's own included: auto is the host's name (-host-root's /etc/hostname, else this system's); "" for none`)
	fl.Var(&o.tags, "tag", "a global tag key=value on every point and series, the daemon's own included (repeatable)")
	fl.IntVar(&o.maxConns, "max-conns", 64, "HTTP connections served at once on -listen; beyond it a connection is answered 503 and closed")
	fl.DurationVar(&o.idleTimeout, "idle-timeout", time.Minute, "close an HTTP connection that sends no request this long (idle keep-alive, or a silent client)")
	return o
}

// globalTags returns the global tags: host (unless -host-tag "") and every
// -tag.
func (o *opsFlags) globalTags(hostRoot string) ([]sink.Tag, error) {
	var tags []sink.Tag
	host := o.hostTag
	if host == "auto" {
		host = hostName(hostRoot)
	}
	if host != "" {
		tags = append(tags, sink.Tag{Key: "host", Value: host})
	}
	for _, kv := range o.tags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("-tag %q: want key=value, neither empty", kv)
		}
		if k == "host" {
			return nil, errors.New(`-tag host=...: use -host-tag`)
		}
		tags = append(tags, sink.Tag{Key: k, Value: v})
	}
	return tags, nil
}

// hostName is the host's name: its /etc/hostname beneath a host root
// other than / (an agent in a container has a name of its own), else this
// system's.
func hostName(hostRoot string) string {
	if hostRoot != "" && hostRoot != "/" {
		if b, err := os.ReadFile(filepath.Join(hostRoot, "etc", "hostname")); err == nil {
			if h := strings.TrimSpace(string(b)); h != "" {
				return h
			}
		}
	}
	h, _ := os.Hostname()
	return h
}

func (o *opsFlags) check() error {
	if o.maxConns <= 0 {
		return fmt.Errorf("-max-conns must be positive, got %d", o.maxConns)
	}
	if o.idleTimeout <= 0 {
		return fmt.Errorf("-idle-timeout must be positive, got %v", o.idleTimeout)
	}
	return nil
}

// serverWriteTimeout bounds writing one answer (a /metrics page of
// thousands of series takes milliseconds); readHeaderMax the request line
// and headers.
const (
	serverWriteTimeout = 30 * time.Second
	readHeaderMax      = 10 * time.Second
)

// serve serves mux on ln until the returned stop is called: at most
// -max-conns connections at once (the next answered 503 at once), a
// connection that sends no request for -idle-timeout closed, requests and
// answers bounded in time. Refused and stalled connections are logged at
// Warn, once a minute.
func (o *opsFlags) serve(ln net.Listener, mux http.Handler, log *slog.Logger) (stop func(), err error) {
	rl := ratelog.New(log, time.Minute)
	capped, err := connlimit.New(ln, o.maxConns,
		connlimit.WithWriteTimeout(serverWriteTimeout),
		connlimit.WithAnswer("text/plain; charset=utf-8", fmt.Sprintf("metricsd: too many connections (-max-conns %d)\n", o.maxConns)),
		connlimit.WithOnReject(func() {
			rl.Warn("cap", "metricsd: HTTP connection refused: -max-conns reached", "max_conns", o.maxConns)
		}),
		connlimit.WithOnStall(func() {
			rl.Warn("stall", "metricsd: closed an HTTP connection whose client took nothing of an answer", "write_timeout", serverWriteTimeout)
		}))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: min(o.idleTimeout, readHeaderMax),
		ReadTimeout:       min(o.idleTimeout, readHeaderMax) + time.Second, // requests here have no body
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       o.idleTimeout,
	}
	go srv.Serve(capped)
	return func() { srv.Close() }, nil
}

// untilSnapshot answers 503 until the first snapshot has been written to
// every sink: an empty page before it would read as "no containers".
func untilSnapshot(r *readiness, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		n := r.snapshots
		r.mu.Unlock()
		if n == 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "metricsd: no snapshot taken yet\n")
			return
		}
		h.ServeHTTP(w, req)
	})
}

// explicitDiscoverer opens the endpoints given by -docker-host and
// -containerd-address (or $DOCKER_HOST, $CONTAINERD_ADDRESS) with -runtime
// auto: given means required, so one that does not answer is an error,
// never a fallback to another runtime. ok is false when neither was given
// (detection looks at the default sockets).
func explicitDiscoverer(ctx context.Context, c *config, log *slog.Logger) (d runtime.Discoverer, ok bool, err error) {
	var ds []runtime.Discoverer
	closeAll := func() {
		for _, d := range ds {
			d.Close()
		}
	}
	if c.dockerHost != "" {
		d, err := docker.New(ctx, append([]docker.Option{docker.WithHost(c.dockerHost), docker.WithRoot(c.hostRoot), docker.WithLogger(log)}, c.dockerOptions()...)...)
		if err != nil {
			return nil, true, fmt.Errorf("-docker-host %s: %w", c.dockerHost, err)
		}
		ds = append(ds, d)
	}
	if c.containerdAddress != "" {
		d, err := containerd.New(ctx, append([]containerd.Option{containerd.WithAddress(c.containerdAddress), containerd.WithRoot(c.hostRoot), containerd.WithLogger(log)}, c.containerdOptions()...)...)
		if err != nil {
			closeAll()
			return nil, true, fmt.Errorf("-containerd-address %s: %w", c.containerdAddress, err)
		}
		ds = append(ds, d)
	}
	switch len(ds) {
	case 0:
		return nil, false, nil
	case 1:
		return ds[0], true, nil
	}
	return runtime.NewMulti(ds...), true, nil
}

// startLine logs the one line the daemon writes at start at the default
// level: what it found and where it writes. It is written unless
// -log-level is error.
func startLine(errOut io.Writer, level slog.Level, c *config, disc runtime.Discoverer, global []sink.Tag, listen string) {
	if level > slog.LevelWarn {
		return
	}
	args := []any{"version", version(), "runtime", disc.Name()}
	if c.runtime == "auto" && disc.Name() == "cgroupfs" {
		args = append(args, "why", "no Docker or containerd answered at the default sockets: containers found in the cgroup tree, named by ID")
	}
	args = append(args, "sinks", strings.Join(c.sinks, ","), "interval", c.interval)
	if listen != "" {
		args = append(args, "listen", listen)
	}
	if c.once {
		args = append(args, "once", true)
	}
	var tags []string
	for _, t := range global {
		tags = append(tags, t.Key+"="+t.Value)
	}
	sort.Strings(tags)
	if len(tags) > 0 {
		args = append(args, "tags", strings.Join(tags, ","))
	}
	slog.New(slog.NewTextHandler(errOut, nil)).Info("metricsd: started", args...)
}

// onceFailures is the one line -once writes when the snapshot is not
// complete: containers that could not be opened, network figures missing,
// or any collection error. The log lines before it say why.
func onceFailures(col *metricsd.Collector, snap *sink.Snapshot) string {
	netMissing := 0
	for _, s := range snap.Containers {
		if s.Network == sink.NetUnavailable {
			netMissing++
		}
	}
	pending := col.Pending()
	var errs []string
	for _, st := range []metricsd.Stage{metricsd.StageDiscover, metricsd.StageOpen, metricsd.StageCgroup, metricsd.StageNet} {
		if n := col.Errors(st); n > 0 {
			errs = append(errs, fmt.Sprintf("%s %d", st, n))
		}
	}
	if pending == 0 && netMissing == 0 && len(errs) == 0 {
		return ""
	}
	return fmt.Sprintf("incomplete snapshot: %d containers reported, %d could not be opened, %d without network figures; errors: %s (causes logged above)",
		len(snap.Containers), pending, netMissing, strings.Join(errs, ", "))
}
