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
	"os"
	"path/filepath"
	"strings"

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
func New(ctx context.Context, opts ...Option) (runtime.Discoverer, error) {
	o := options{root: "/", getenv: os.Getenv, docker: docker.Opener(), containerd: containerd.Opener(), cgroups: cgroupfs.Opener()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var found []runtime.Discoverer
	try := func(name string, open runtime.Opener, endpoint string) {
		if open == nil || endpoint == "" {
			return
		}
		d, err := open(ctx, endpoint, o.root, o.log)
		if err != nil {
			o.log.Info("detect: not using "+name, "endpoint", endpoint, "err", err)
			return
		}
		o.log.Info("detect: using "+name, "endpoint", endpoint)
		found = append(found, d)
	}
	try("docker", o.docker, o.dockerEndpoint())
	try("containerd", o.containerd, o.containerdEndpoint())
	if err := ctx.Err(); err != nil {
		closeAll(found)
		return nil, err
	}
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
