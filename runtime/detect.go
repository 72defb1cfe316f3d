package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Opener makes a discoverer for an endpoint found by Detect: a Docker host
// ("unix:///var/run/docker.sock", "tcp://..."), a containerd socket path, or
// "" for the cgroup filesystem. root is the host root prefix. Each adapter
// package has one (docker.Opener, containerd.Opener, cgroupfs.Opener), so
// this package need not import them.
type Opener func(ctx context.Context, endpoint, root string, log *slog.Logger) (Discoverer, error)

type detectOptions struct {
	root                        string
	getenv                      func(string) string
	log                         *slog.Logger
	docker, containerd, cgroups Opener
}

// DetectOption configures Detect.
type DetectOption func(*detectOptions)

// WithHostRoot sets the host root prefix ("/host" for an agent in a
// container with the host's / mounted there): default sockets and unix://
// addresses from the environment are looked up beneath it.
func WithHostRoot(root string) DetectOption { return func(o *detectOptions) { o.root = root } }

// WithGetenv replaces os.Getenv for DOCKER_HOST and CONTAINERD_ADDRESS.
func WithGetenv(f func(string) string) DetectOption {
	return func(o *detectOptions) { o.getenv = f }
}

// WithDetectLogger sets the logger; the default discards.
func WithDetectLogger(l *slog.Logger) DetectOption { return func(o *detectOptions) { o.log = l } }

// WithDocker enables Docker detection with the docker adapter's Opener.
func WithDocker(open Opener) DetectOption { return func(o *detectOptions) { o.docker = open } }

// WithContainerd enables containerd detection with the containerd adapter's
// Opener.
func WithContainerd(open Opener) DetectOption { return func(o *detectOptions) { o.containerd = open } }

// WithCgroupFS sets the fallback used when no daemon answers.
func WithCgroupFS(open Opener) DetectOption { return func(o *detectOptions) { o.cgroups = open } }

// Default endpoints, beneath the host root.
const (
	DefaultDockerSocket     = "/var/run/docker.sock"
	DefaultContainerdSocket = "/run/containerd/containerd.sock"
)

// ErrNoRuntime is returned by Detect when no daemon answers and no cgroupfs
// fallback was given.
var ErrNoRuntime = fmt.Errorf("no container runtime detected: %w", ErrUnavailable)

// Detect picks the runtimes this host has: Docker at $DOCKER_HOST or
// /var/run/docker.sock, containerd at $CONTAINERD_ADDRESS or
// /run/containerd/containerd.sock (sockets beneath the host root), each only
// when its Opener was given and it answers. Several found run together as a
// Multi, which reports a container that Docker and containerd both know
// once. With none, it returns the cgroupfs discoverer. Endpoints that do not
// answer are logged and skipped; each open is bounded by the adapter's own
// timeout and by ctx.
func Detect(ctx context.Context, opts ...DetectOption) (Discoverer, error) {
	o := detectOptions{root: "/", getenv: os.Getenv}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var found []Discoverer
	try := func(name string, open Opener, endpoint string) {
		if open == nil || endpoint == "" {
			return
		}
		d, err := open(ctx, endpoint, o.root, o.log)
		if err != nil {
			o.log.Info("runtime: detect: not using "+name, "endpoint", endpoint, "err", err)
			return
		}
		o.log.Info("runtime: detect: using "+name, "endpoint", endpoint)
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
		return NewMulti(found...), nil
	}
	if o.cgroups == nil {
		return nil, ErrNoRuntime
	}
	d, err := o.cgroups(ctx, "", o.root, o.log)
	if err != nil {
		return nil, errors.Join(ErrNoRuntime, err)
	}
	o.log.Info("runtime: detect: no daemon; using cgroupfs", "root", o.root)
	return d, nil
}

func closeAll(ds []Discoverer) {
	for _, d := range ds {
		_ = d.Close()
	}
}

func (o *detectOptions) beneath(p string) string {
	if o.root == "" || o.root == "/" {
		return p
	}
	return filepath.Join(o.root, p)
}

// dockerEndpoint is $DOCKER_HOST (a unix:// path moved beneath the root),
// else the default socket when it exists.
func (o *detectOptions) dockerEndpoint() string {
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

func (o *detectOptions) containerdEndpoint() string {
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
