// Command dockerproxy does what docker-metricsd did in 2014: it is a reverse
// proxy in front of the Docker API that adds a "Metrics" object (CPU, memory,
// block I/O and per-interface network counters, read from outside the
// container) to the answer of a container inspect, and passes every other
// request through untouched.
//
//	dockerproxy [-listen unix:///var/run/dockerproxy.sock] [-docker-host unix:///var/run/docker.sock] [-read-only]
//	docker -H unix:///var/run/dockerproxy.sock inspect CONTAINER   # .[0].Metrics
//	curl -s --unix-socket /var/run/dockerproxy.sock localhost/containers/CONTAINER/json | jq .Metrics
//
// What is rewritten: GET /containers/{id}/json, with or without an API
// version prefix (/v1.41/containers/{id}/json), when Docker answers 200 and
// the container is running. The original JSON is kept byte for byte: the
// proxy inserts `,"Metrics":{...}` before its closing brace and fixes
// Content-Length. A container that is not running gets no Metrics.
//
// Everything else allowed (container lists, /version, /events, logs -f, image pulls,
// attach and exec start with their hijacked connections) goes through
// net/http/httputil.ReverseProxy: bodies are copied as they arrive, with no
// buffering, and an upgraded connection ("Upgrade: tcp", which the Docker CLI
// and the Go client always ask for) is spliced in both directions, half
// closes included (so `echo x | docker exec -i c cat` ends). Docker's older
// hijack without the upgrade (HTTP 200 then a raw stream) reaches the client
// as a streamed response body, output only. The daemon is reached on its
// unix socket (see "Who may use it").
//
// # Metrics
//
// The container's init PID (State.Pid of the inspect) leads to its cgroup
// (<host-root>/proc/PID/cgroup, which must name the container's ID; cpu,
// cpuacct, memory and blkio kept open) and to its
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
// # Who may use it
//
// Whoever reaches the proxy controls the Docker daemon, which is root on
// the host. So:
//
//   - It serves on a unix socket (-listen, default
//     unix:///var/run/dockerproxy.sock) with the Docker socket's owner,
//     group and permission bits: exactly the users who may open the Docker
//     socket (root and group docker, usually) may open the proxy's. The
//     socket is made in a private directory beside the path, given that
//     owner and mode, then renamed into place, so no other user can connect
//     in between. A live server already at the path is an error; a socket
//     left by an earlier run is replaced.
//   - TCP only when asked with -listen tcp://ADDR:PORT, on a loopback
//     address only, with a warning at start: every local user then reaches
//     the Docker API without the socket's permission check.
//   - A request with a Host that does not name this machine (a DNS
//     rebinding web page) or from a browser (an Origin or Sec-Fetch-Site
//     header: a web page's cross-site request) is refused with 403. Host
//     may be empty, localhost or a name under .localhost (the Docker CLI
//     sends api.moby.localhost on a unix socket), docker (older Go clients)
//     or a loopback address, each with any port.
//   - -read-only passes only GET and HEAD of /_ping, /version, /info, the
//     container, image, network and volume lists and inspects, and exec
//     inspects (with or without an API version prefix); every other call
//     (start, exec, logs, events, stats, export, archive, ...) is refused
//     with 403.
//
// Refusals are logged at the default level (warn), at most one line per
// cause a minute with the count held back.
//
// The daemon is -docker-host, else $DOCKER_HOST (as for the Docker CLI),
// else unix:///var/run/docker.sock; the start-up line says which. It must
// be a unix socket: the Metrics come from this host's /proc and cgroups, so
// a tcp:// daemon (on another host, as far as the proxy can tell) is
// refused, and so is a Docker context other than the default (give
// -docker-host or DOCKER_HOST). A daemon that does not answer at start is an
// error. An inspect whose State.Pid is not in a cgroup named after the
// container (a daemon in another PID namespace, such as Docker in Docker,
// or behind a forwarded socket; or a PID reused meanwhile) gets no figures
// but an Errors entry saying so.
//
// # Limits
//
// At most -max-conns (256) connections are open at once (a hijacked exec
// or attach counts until it ends); one more is answered 503 and closed. A
// request's header must arrive, and its body must keep arriving, within
// -read-timeout (30 s); a keep-alive connection idle for -idle-timeout
// (1 min) is closed; a write that the client does not take within
// -write-timeout (1 min) closes the connection. Streams (/events, logs -f,
// attach) last as long as they move or wait for the daemon: none of these
// bounds their length. A stalled body, a stalled write and a refusal over
// the cap are logged at warn.
//
// It needs root (to read every cgroup and to enter network namespaces); it
// warns at start when it is not root. In a container, mount the host's / at
// /host and pass -host-root /host; State.Pid is a PID of the host's PID
// namespace, read beneath <host-root>/proc. SIGINT and SIGTERM stop it
// (exit 0); a bad flag is exit status 2, a daemon or listener it cannot use
// at start exit status 1.
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
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/metricsd/metricsd/internal/connlimit"
	"github.com/metricsd/metricsd/internal/ratelog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Defaults of the addresses.
const (
	defaultListen     = "unix:///var/run/dockerproxy.sock"
	defaultDockerHost = "unix:///var/run/docker.sock"
)

// readHeaderMax bounds the time a request's header may take even when
// -read-timeout is longer.
const readHeaderMax = 30 * time.Second

// config is the command line, checked.
type config struct {
	listenNet, listenAddr string // "unix", path or "tcp", host:port
	dockerHost            string // unix:///path
	dockerHostFrom        string // which setting named it
	socket                string // the daemon's socket path
	hostRoot              string
	sweep                 time.Duration
	readOnly              bool
	idleTimeout           time.Duration
	readTimeout           time.Duration
	writeTimeout          time.Duration
	maxConns              int
	level                 slog.Level
}

// errHelp is parse's answer to -h.
var errHelp = errors.New("help")

// parse reads the flags and the environment (getenv: DOCKER_HOST,
// DOCKER_CONTEXT). usage gets the flag list for -h.
func parse(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{}
	fl := flag.NewFlagSet("dockerproxy", flag.ContinueOnError)
	listen := fl.String("listen", defaultListen, "where to serve: unix:///path (made with the Docker socket's owner and mode), or tcp://LOOPBACK:PORT (every local user can reach it)")
	dockerHost := fl.String("docker-host", "", "the Docker daemon's unix socket, unix:///path (default $DOCKER_HOST, else "+defaultDockerHost+")")
	fl.StringVar(&c.hostRoot, "host-root", "/", "the host's root, where its /proc and /sys are (/host in a container)")
	fl.DurationVar(&c.sweep, "sweep", 10*time.Second, "how often to release the handles of containers whose process exited")
	fl.BoolVar(&c.readOnly, "read-only", false, "pass only lists and inspects (GET and HEAD); refuse everything else with 403")
	fl.DurationVar(&c.idleTimeout, "idle-timeout", time.Minute, "close a keep-alive connection idle this long")
	fl.DurationVar(&c.readTimeout, "read-timeout", 30*time.Second, "close a connection whose request header or body sends nothing this long (the header also within 30s)")
	fl.DurationVar(&c.writeTimeout, "write-timeout", time.Minute, "close a connection whose client takes nothing of an answer this long")
	fl.IntVar(&c.maxConns, "max-conns", 256, "connections open at once; more are answered 503")
	logLevel := fl.String("log-level", "warn", "log level: debug|info|warn|error (to standard error)")
	fl.SetOutput(io.Discard)
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fl.SetOutput(usage)
			fmt.Fprintln(usage, "usage: dockerproxy [flags]")
			fl.PrintDefaults()
			return nil, errHelp
		}
		return nil, fmt.Errorf("%v (dockerproxy -h lists the flags)", err)
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.sweep <= 0 {
		bad("-sweep must be positive, got %v", c.sweep)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-idle-timeout", c.idleTimeout}, {"-read-timeout", c.readTimeout}, {"-write-timeout", c.writeTimeout}} {
		if d.v <= 0 {
			bad("%s must be positive, got %v", d.name, d.v)
		}
	}
	if c.maxConns <= 0 {
		bad("-max-conns must be positive, got %d", c.maxConns)
	}
	if err := c.level.UnmarshalText([]byte(*logLevel)); err != nil {
		bad("-log-level: %v", err)
	}

	switch {
	case strings.HasPrefix(*listen, "unix://"):
		c.listenNet, c.listenAddr = "unix", strings.TrimPrefix(*listen, "unix://")
		if c.listenAddr == "" {
			bad("-listen %q: no socket path", *listen)
		}
	case strings.HasPrefix(*listen, "tcp://"):
		c.listenNet, c.listenAddr = "tcp", strings.TrimPrefix(*listen, "tcp://")
		if _, _, err := net.SplitHostPort(c.listenAddr); err != nil {
			bad("-listen %q: want tcp://127.0.0.1:PORT: %v", *listen, err)
		}
	default:
		bad("-listen %q: want unix:///path, or tcp://127.0.0.1:PORT to serve on loopback TCP (which every local user can reach)", *listen)
	}

	// The daemon: the flag, else DOCKER_HOST, else the default; never
	// another one than the user named.
	host, from := *dockerHost, "-docker-host"
	if host == "" {
		host, from = getenv("DOCKER_HOST"), "DOCKER_HOST"
	}
	if host == "" {
		if ctx := getenv("DOCKER_CONTEXT"); ctx != "" && ctx != "default" {
			bad("DOCKER_CONTEXT=%s: Docker contexts are not supported; give -docker-host or DOCKER_HOST", ctx)
		}
		host, from = defaultDockerHost, "the default"
	}
	c.dockerHost, c.dockerHostFrom = host, from
	name := from
	if from == "DOCKER_HOST" {
		name = "$DOCKER_HOST"
	}
	switch path, ok := strings.CutPrefix(host, "unix://"); {
	case ok && path != "":
		c.socket = path
	case ok:
		bad("%s %q: no socket path", name, host)
	case strings.HasPrefix(host, "tcp://"), strings.HasPrefix(host, "http://"), strings.HasPrefix(host, "https://"), strings.HasPrefix(host, "ssh://"):
		bad("%s %q: remote daemons are refused: the Metrics are read from this host's /proc and cgroups, so the proxy needs the local daemon's unix socket (unix:///var/run/docker.sock)", name, host)
	default:
		bad("%s %q: want unix:///path", name, host)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// run is the program: it returns the exit status. It logs "listening on
// ADDR" to stderr once it serves.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, os.Getenv, stdout)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		// One line: the joined problems, separated by "; ".
		fmt.Fprintf(stderr, "dockerproxy: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dockerproxy: "+format+"\n", a...)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.level}))
	rl := ratelog.New(log, time.Minute)

	// The daemon's socket: its owner and mode become the proxy's, and it
	// must answer now.
	dockerSock, err := os.Stat(c.socket)
	if err != nil {
		return fail("%s %s: %v", c.dockerHostFrom, c.dockerHost, err)
	}
	if dockerSock.Mode()&os.ModeSocket == 0 {
		return fail("%s %s: not a socket (%v)", c.dockerHostFrom, c.dockerHost, dockerSock.Mode())
	}
	p, err := NewProxy(ctx, Config{
		DockerHost: c.dockerHost, HostRoot: c.hostRoot, Sweep: c.sweep,
		ReadOnly: c.readOnly, ReadTimeout: c.readTimeout, Log: log,
	})
	if err != nil {
		return fail("%v", err)
	}
	defer p.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	version, err := p.Ping(pctx)
	cancel()
	if err != nil {
		return fail("the Docker daemon at %s (%s) does not answer: %v", c.dockerHost, c.dockerHostFrom, err)
	}

	var ln net.Listener
	var where string
	switch c.listenNet {
	case "unix":
		ln, err = listenUnix(ctx, c.listenAddr, dockerSock)
		where = fmt.Sprintf("unix://%s (mode %04o %s, as %s)", c.listenAddr, dockerSock.Mode().Perm(), owner(dockerSock), c.socket)
	default:
		ln, err = listenLoopback(ctx, c.listenAddr)
		if err == nil {
			where = "tcp://" + ln.Addr().String()
		}
	}
	if err != nil {
		return fail("-listen: %v", err)
	}
	removeSocket := func() {}
	if c.listenNet == "unix" {
		removeSocket = socketRemover(c.listenAddr)
	}
	defer removeSocket()

	capped, err := connlimit.New(ln, c.maxConns,
		connlimit.WithWriteTimeout(c.writeTimeout),
		connlimit.WithAnswer("application/json", fmt.Sprintf(`{"message":"dockerproxy: too many connections (-max-conns %d)"}`+"\n", c.maxConns)),
		connlimit.WithOnReject(func() {
			rl.Warn("cap", "dockerproxy: connection cap reached: refused a connection with 503", "max_conns", c.maxConns)
		}),
		connlimit.WithOnStall(func() {
			rl.Warn("stall", "dockerproxy: closed a connection whose client took nothing for -write-timeout", "write_timeout", c.writeTimeout)
		}))
	if err != nil {
		ln.Close()
		return fail("%v", err)
	}
	// No ReadTimeout or WriteTimeout: they bound a whole request, and
	// /events, logs -f and attach last as long as the client wants. The
	// Proxy bounds a stalled request body, connlimit a stalled write.
	// Every request's context ends with ctx, which also ends the hijacked
	// connections (ReverseProxy closes its side when the request's context
	// is done) that srv.Close no longer tracks.
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: min(c.readTimeout, readHeaderMax),
		IdleTimeout:       c.idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	if c.listenNet == "tcp" {
		log.Warn("dockerproxy: WARNING: serving the Docker API on TCP: every local user, and every process that can reach this address, gets it without the Docker socket's permission check, which is root on this host. Prefer -listen unix:///path.",
			"listen", where, "read_only", c.readOnly)
	}
	if os.Geteuid() != 0 {
		log.Warn("dockerproxy: not root: Metrics will lack what needs root (other users' cgroups, entering network namespaces)", "euid", os.Geteuid())
	}
	mode := "read-write"
	if c.readOnly {
		mode = "read-only"
	}
	fmt.Fprintf(stderr, "dockerproxy: listening on %s, forwarding to %s (%s, Docker %s), %s, at most %d connections\n",
		where, c.dockerHost, c.dockerHostFrom, version, mode, c.maxConns)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(capped) }()
	select {
	case err := <-errc:
		return fail("serve: %v", err)
	case <-ctx.Done():
	}
	// Streams and hijacked connections do not end by themselves: close
	// them rather than wait for them.
	srv.Close()
	return 0
}

// owner is "user:group" of fi, numeric where the system has no name.
func owner(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	u, g := strconv.FormatUint(uint64(st.Uid), 10), strconv.FormatUint(uint64(st.Gid), 10)
	if n, err := user.LookupId(u); err == nil {
		u = n.Username
	}
	if n, err := user.LookupGroupId(g); err == nil {
		g = n.Name
	}
	return u + ":" + g
}

// listenUnix serves on a unix socket at path with the owner, group and
// permission bits of like (the Docker socket). The socket is bound in a
// private directory beside path, given that owner and mode there, then
// renamed to path: no other user can connect in between.
func listenUnix(ctx context.Context, path string, like os.FileInfo) (net.Listener, error) {
	st, ok := like.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no owner for the socket", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another server answers there", path)
		}
		// A socket left by an earlier run: the rename replaces it.
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".dockerproxy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := (&net.ListenConfig{}).Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // the path is ours to remove
	err = os.Chown(tmp, int(st.Uid), int(st.Gid))
	if err == nil {
		err = os.Chmod(tmp, like.Mode().Perm())
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ln, nil
}

// socketRemover returns a function that removes the socket at path if it
// is still the one there now.
func socketRemover(path string) func() {
	mine, err := os.Lstat(path)
	if err != nil {
		return func() {}
	}
	return func() {
		if fi, err := os.Lstat(path); err == nil && os.SameFile(fi, mine) {
			_ = os.Remove(path)
		}
	}
}

// listenLoopback serves on TCP at addr, which must be a loopback address.
func listenLoopback(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("tcp://%s listens on %v, not a loopback address: dockerproxy serves TCP on loopback only (or a unix socket: unix:///path)", addr, ln.Addr())
	}
	return ln, nil
}
