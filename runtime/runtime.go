// Package runtime is the container model and the discovery interface that
// container runtimes implement: Docker (runtime/docker), containerd
// (runtime/containerd) and, with no daemon at all, the cgroup tree
// (runtime/cgroupfs). Each adapter is a package of its own that imports only
// its own client library.
//
// Package runtime/detect picks what a host has: Docker and containerd where
// their sockets answer, several at once as a Multi that reports a container
// known to both once, and the cgroup tree when no daemon answers. It links
// every adapter; this package links none:
//
//	d, err := detect.New(ctx)
//	cs, err := d.List(ctx)     // the live (running and paused) containers
//	ch, err := d.Watch(ctx)    // started / stopped / removed / oom / error
//
// Tracker is the bookkeeping every adapter's Watch shares: it merges the
// runtime's events with the listings made after each (re)connection, so
// that a container is reported started once, stopped once and removed once.
//
// A Container names its process by PID and start time (PIDStart) and its
// cgroup by path: CheckProcess tells a consumer that opens it later whether
// the PID still names that process, in that cgroup (PIDs are reused).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Opener makes a discoverer for an endpoint found by runtime/detect: a
// Docker host ("unix:///var/run/docker.sock", "tcp://..."), a containerd
// socket path, or "" for the cgroup filesystem. root is the host root
// prefix. Each adapter package has one (docker.Opener, containerd.Opener,
// cgroupfs.Opener).
type Opener func(ctx context.Context, endpoint, root string, log *slog.Logger) (Discoverer, error)

// ErrUnavailable reports a runtime that can not be reached: no socket, a
// daemon that does not answer within the call's timeout, or one whose API
// version is not supported. Adapters wrap it, so errors.Is works.
var ErrUnavailable = errors.New("container runtime unavailable")

// State is a container's lifecycle state.
type State string

const (
	StateCreated State = "created"
	StateRunning State = "running"
	StatePaused  State = "paused"
	StateStopped State = "stopped"
	StateUnknown State = "unknown"
)

// Live reports whether a container in state s has processes whose figures
// count: running or paused (a paused container's processes are frozen, but
// its memory, its pids and its network namespace are still there).
// Discoverers list live containers and a Tracker keeps them; a consumer
// measures them.
func (s State) Live() bool { return s == StateRunning || s == StatePaused }

// Container is one container as a runtime reports it.
type Container struct {
	// ID is the runtime's identifier (64 hex digits for Docker; any valid
	// name for containerd).
	ID string
	// Name is the human name: Docker's name without the leading "/", the
	// Kubernetes container name, or the ID where there is none.
	Name string
	// Image is the image reference the container was created from.
	Image string
	// Labels are the container's labels, as the runtime gives them.
	Labels map[string]string
	// Runtime names the source: "docker", "containerd", "cgroupfs".
	Runtime string
	// Namespace is the containerd namespace ("moby" for Docker's, "k8s.io"
	// for the CRI's); empty for other runtimes.
	Namespace string
	// Pod is set for containers a Kubernetes kubelet made (from the
	// io.kubernetes.* labels).
	Pod *Pod
	// PID is the container's init process in the host's PID namespace; 0
	// when it is not running.
	PID int
	// PIDStart is when PID started, in clock ticks since boot (field 22 of
	// /proc/<PID>/stat, as ProcStartTicks reads it), read by the adapter
	// from the same process it read CgroupPath from; 0 when unknown. PIDs
	// are reused: PID and PIDStart together name one process for as long
	// as the host runs, so a consumer that opens the container later (see
	// CheckProcess) can tell that PID still names its process.
	PIDStart uint64
	// CgroupPath is the container's cgroup path as /proc/<PID>/cgroup gives
	// it for the unified hierarchy, or for the memory controller on v1
	// (what cgroup.FS.Open takes).
	CgroupPath string
	// NetNS locates the container's network namespace.
	NetNS NetNS
	// State is the container's lifecycle state.
	State State
	// Started is when the container's task last started; zero if unknown.
	Started time.Time
}

// Pod identifies the Kubernetes pod a container belongs to.
type Pod struct {
	Name, Namespace, UID string
	// Container is the container's name within the pod.
	Container string
	// Sandbox is true for the pod's sandbox ("pause") container, which
	// owns the pod's network namespace and is not a workload.
	Sandbox bool
}

// NetNS locates a network namespace: by the PID of a process in it, or by a
// path (/run/netns/x, /run/docker/netns/<id>). Host is true when the
// container shares the host's network namespace.
type NetNS struct {
	PID  int
	Path string
	Host bool
}

// EventType says what happened to a container.
type EventType string

const (
	EventStarted EventType = "started"
	EventStopped EventType = "stopped"
	EventRemoved EventType = "removed"
	EventOOM     EventType = "oom"
	// EventError reports a failure of the watch itself, which goes on: the
	// runtime could not be reached (Watch reconnects with backoff) or a
	// container could not be described (it is tried again by a listing
	// soon). Err says why; Container, when its ID is set, names the
	// container. It changes nothing: a consumer counts and logs it.
	EventError EventType = "error"
)

// Event is a change to one container. Container holds what is known at the
// time: for a removal, at least ID and Runtime.
type Event struct {
	Type      EventType
	Container Container
	Time      time.Time
	// Err is the failure of an EventError.
	Err error
}

// PartialError is what List returns, with the containers it could
// describe, when it could not describe them all: a container the runtime
// listed but whose inspection failed, or, for a Multi, a runtime whose
// listing failed as a whole. The listing speaks for every other container
// (Covers): a consumer that reconciles with it keeps what it knows of the
// others, whose state the listing can not tell. Err says why.
type PartialError struct {
	// Unknown are the containers left out (at least ID, Runtime and
	// Namespace set).
	Unknown []Container
	// Runtimes are the names of runtimes (Discoverer.Name) whose listing
	// failed: none of their containers are in the listing.
	Runtimes []string
	Err      error
}

func (e *PartialError) Error() string {
	n := len(e.Unknown)
	switch {
	case len(e.Runtimes) > 0 && n > 0:
		return fmt.Sprintf("runtime: partial listing: %s not listed and %d containers not described: %v", strings.Join(e.Runtimes, ", "), n, e.Err)
	case len(e.Runtimes) > 0:
		return fmt.Sprintf("runtime: partial listing: %s not listed: %v", strings.Join(e.Runtimes, ", "), e.Err)
	}
	return fmt.Sprintf("runtime: partial listing: %d containers not described: %v", n, e.Err)
}

// Unwrap returns the cause.
func (e *PartialError) Unwrap() error { return e.Err }

// Covers reports whether the listing speaks for container c: false for one
// of Unknown (by runtime, namespace and ID) or of a runtime in Runtimes.
func (e *PartialError) Covers(c Container) bool {
	if e == nil {
		return true
	}
	for _, r := range e.Runtimes {
		if c.Runtime == r {
			return false
		}
	}
	for _, u := range e.Unknown {
		if u.Runtime == c.Runtime && Key(u) == Key(c) {
			return false
		}
	}
	return true
}

// Discoverer lists the running containers of one runtime and streams their
// changes.
type Discoverer interface {
	// Name names the runtime: "docker", "containerd", "cgroupfs".
	Name() string
	// List returns the live (running and paused) containers. It fails
	// with an error matching ErrUnavailable when the runtime can not be
	// reached. When it could describe only some, it returns those and a
	// *PartialError that says which it could not.
	List(ctx context.Context) ([]Container, error)
	// Watch streams events until ctx ends, then closes the channel. When
	// the runtime goes away (or is not there yet) it reconnects with
	// backoff and resynchronises by listing, so that no container is lost
	// or reported twice; each failed attempt is an EventError.
	Watch(ctx context.Context) (<-chan Event, error)
	// Close releases the client.
	Close() error
}
