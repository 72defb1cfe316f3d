// Command dockerproxy does what docker-metricsd did in 2014: it is a reverse
// proxy in front of the Docker API that adds a "Metrics" object (CPU, memory,
// block I/O and per-interface network counters, read from outside the
// container) to the answer of a container inspect, and passes every other
// request through untouched.
//
//	dockerproxy [-listen 127.0.0.1:12375] [-docker-host unix:///var/run/docker.sock] [-host-root /]
//	docker -H tcp://127.0.0.1:12375 inspect CONTAINER   # .[0].Metrics
//	curl -s 127.0.0.1:12375/containers/CONTAINER/json | jq .Metrics
//
// What is rewritten: GET /containers/{id}/json, with or without an API
// version prefix (/v1.41/containers/{id}/json), when Docker answers 200 and
// the container is running. The original JSON is kept byte for byte: the
// proxy inserts `,"Metrics":{...}` before its closing brace and fixes
// Content-Length. A container that is not running gets no Metrics.
//
// Everything else (container lists, /version, /events, logs -f, image pulls,
// attach and exec start with their hijacked connections) goes through
// net/http/httputil.ReverseProxy: bodies are copied as they arrive, with no
// buffering, and an upgraded connection ("Upgrade: tcp", which the Docker CLI
// and the Go client always ask for) is spliced in both directions, half
// closes included (so `echo x | docker exec -i c cat` ends). Docker's older
// hijack without the upgrade (HTTP 200 then a raw stream) reaches the client
// as a streamed response body, output only. TLS to the daemon is not
// supported (-docker-host unix:// or tcp:// without TLS).
//
// # Metrics
//
// The container's init PID (State.Pid of the inspect) leads to its cgroup
// (cgroup.FS.OpenPID: cpu, cpuacct, memory and blkio kept open) and to its
// network namespace (a netns.Pool hop, net/dev kept open). These handles are
// cached per container ID: on the 2-vCPU test VM reading a cached
// container's Metrics takes ~30 µs (22 allocations), opening, reading and
// closing them ~280 µs (153 allocations; BenchmarkInspect), against ~260 µs
// for the inspect itself straight from dockerd and ~520 µs through the
// proxy. The cost of the cache is descriptors: about 20 per container, and
// its network namespace kept alive while they are open. A cached
// container is closed (its descriptors released, which lets its network
// namespace go) when a later inspect finds it not running or with another
// PID, when a read says its cgroup is gone, and by a sweep every -sweep
// (default 10 s) that finds its init process exited: a container removed
// without another inspect is released within one sweep.
//
// The Metrics object (every counter since the container started; a figure
// the kernel did not provide is left out, never written as 0):
//
//	"Metrics": {
//	  "Read": "2026-11-28T08:00:00.123456789Z",   // when the figures were read
//	  "CgroupVersion": 1,
//	  "CPU": {"UsageNs", "UserNs", "SystemNs",     // CPU time, nanoseconds
//	          "Periods", "ThrottledPeriods",       // CFS periods, count
//	          "ThrottledNs"},                      // throttled time, nanoseconds
//	  "Memory": {"UsageBytes", "LimitBytes",       // LimitBytes absent and
//	             "Unlimited": true,                // Unlimited true when no limit
//	             "WorkingSetBytes",                // usage minus inactive file
//	             "RSSBytes", "CacheBytes",         // anon / page cache (v1 rss / cache)
//	             "SwapBytes"},                     // bytes
//	  "IO": {"Devices": [{"Major", "Minor", "Name",
//	         "ReadBytes", "WriteBytes", "ReadOps", "WriteOps"}]},
//	  "Network": {"Interfaces": [{"Name",          // every interface, lo included
//	              "RxBytes", "RxPackets", "RxErrors", "RxDropped",
//	              "TxBytes", "TxPackets", "TxErrors", "TxDropped"}],
//	              "HostNetwork": true},            // --net=host: no interfaces
//	  "Errors": ["..."]                            // figures that could not be read
//	}
//
// Whoever can reach -listen controls the Docker daemon, which is root on the
// host: keep it on loopback (the default) or on a unix socket only root can
// open.
//
// It needs root (to read every cgroup and to enter network namespaces). In a
// container, mount the host's / at /host and pass -host-root /host; State.Pid
// is a PID of the host's PID namespace, read beneath <host-root>/proc.
// SIGINT and SIGTERM stop it (exit 0); a bad flag is exit status 2.
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
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the program: it returns the exit status. It logs "listening on
// ADDR" to stderr once it serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("dockerproxy", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1:12375", "address to serve on: host:port, or unix:///path")
	dockerHost := fl.String("docker-host", "unix:///var/run/docker.sock", "the Docker daemon: unix:///path or tcp://host:port")
	hostRoot := fl.String("host-root", "/", "the host's root, where its /proc and /sys are (/host in a container)")
	sweep := fl.Duration("sweep", 10*time.Second, "how often to release the handles of containers whose process exited")
	logLevel := fl.String("log-level", "warn", "log level: debug|info|warn|error (to standard error)")
	fl.SetOutput(io.Discard)
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fl.SetOutput(stdout)
			fmt.Fprintln(stdout, "usage: dockerproxy [flags]")
			fl.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "dockerproxy: %v (dockerproxy -h lists the flags)\n", err)
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dockerproxy: "+format+"\n", a...)
		return 2
	}
	if fl.NArg() > 0 {
		return fail("unexpected argument %q", fl.Arg(0))
	}
	if *sweep <= 0 {
		return fail("-sweep must be positive, got %v", *sweep)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fail("-log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	p, err := NewProxy(ctx, *dockerHost, *hostRoot, *sweep, log)
	if err != nil {
		return fail("%v", err)
	}
	defer p.Close()

	network, addr := "tcp", *listen
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		network, addr = "unix", path
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path) // a socket left by an earlier run
		}
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, network, addr)
	if err != nil {
		return fail("-listen: %v", err)
	}
	// No read or write timeout: /events, logs -f and attach last as long
	// as the client wants.
	// Every request's context ends with ctx, which also ends the hijacked
	// connections (ReverseProxy closes its side when the request's context
	// is done) that srv.Close no longer tracks.
	srv := &http.Server{
		Handler: p, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	fmt.Fprintf(stderr, "dockerproxy: listening on %s, forwarding to %s\n", ln.Addr(), *dockerHost)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fail("serve: %v", err)
	case <-ctx.Done():
	}
	// Streams and hijacked connections do not end by themselves: close
	// them rather than wait for them.
	srv.Close()
	if network == "unix" {
		_ = os.Remove(addr)
	}
	return 0
}
