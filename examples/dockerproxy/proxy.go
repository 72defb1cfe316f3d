package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metricsd/metricsd/internal/ratelog"
)

// inspectPath matches a container inspect, with or without an API version
// prefix. Container IDs and names have no slash.
var inspectPath = regexp.MustCompile(`^(?:/v[0-9]+(?:\.[0-9]+)*)?/containers/([^/]+)/json$`)

// readOnlyPath matches what -read-only lets through (with GET or HEAD): the
// system's ping, version and info, lists and inspects of containers,
// images (whose names may hold slashes), networks and volumes, and exec
// inspects. Only clean paths are matched (see allowedReadOnly).
var readOnlyPath = regexp.MustCompile(`^(?:/v[0-9]+(?:\.[0-9]+)*)?/(?:_ping|version|info|containers/json|containers/[^/]+/json|images/json|images/.+/json|networks|networks/[^/]+|volumes|volumes/[^/]+|exec/[^/]+/json)$`)

// maxInspect bounds the inspect body the proxy reads to rewrite (Docker's
// are a few kB).
const maxInspect = 16 << 20

// Config is what NewProxy needs. The zero value of each field but
// DockerHost is a default: HostRoot "/", Sweep 10 s, ReadOnly false (every
// call passes), ReadTimeout 0 (a request body may stall for ever), Log
// discards.
type Config struct {
	// DockerHost is the daemon's unix socket: unix:///path.
	DockerHost string
	// HostRoot is the host's root, where its /proc and /sys are.
	HostRoot string
	// Sweep is how often the handles of exited containers are released.
	Sweep time.Duration
	// ReadOnly passes only lists and inspects; see readOnlyPath.
	ReadOnly bool
	// ReadTimeout fails a request whose body sends nothing for this long.
	ReadTimeout time.Duration
	Log         *slog.Logger
}

// Proxy is the Docker API reverse proxy; it is an http.Handler.
type Proxy struct {
	rp          *httputil.ReverseProxy
	tr          *http.Transport
	target      *url.URL
	cache       *cache
	log         *slog.Logger
	rl          *ratelog.Logger // failures and refusals, one line per cause a minute
	readOnly    bool
	readTimeout time.Duration
}

// NewProxy makes a proxy to the daemon at cfg.DockerHost.
func NewProxy(ctx context.Context, cfg Config) (*Proxy, error) {
	if cfg.HostRoot == "" {
		cfg.HostRoot = "/"
	}
	if cfg.Sweep == 0 {
		cfg.Sweep = 10 * time.Second
	}
	if cfg.Sweep < 0 || cfg.ReadTimeout < 0 {
		return nil, fmt.Errorf("negative sweep %v or read timeout %v", cfg.Sweep, cfg.ReadTimeout)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr, target, err := transport(cfg.DockerHost)
	if err != nil {
		return nil, err
	}
	rl := ratelog.New(log, time.Minute)
	c, err := newCache(ctx, cfg.HostRoot, cfg.Sweep, log, rl)
	if err != nil {
		return nil, err
	}
	p := &Proxy{tr: tr, target: target, cache: c, log: log, rl: rl, readOnly: cfg.ReadOnly, readTimeout: cfg.ReadTimeout}
	p.rp = &httputil.ReverseProxy{
		// Rewrite (not Director): no X-Forwarded-* headers are added.
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: tr,
		// Flush every write at once: /events, logs -f, pulls.
		FlushInterval:  -1,
		ModifyResponse: p.modify,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandler:   p.backendError,
	}
	return p, nil
}

// Close releases every cached handle and the namespace hop threads.
func (p *Proxy) Close() error {
	p.tr.CloseIdleConnections()
	return p.cache.close()
}

// Ping asks the daemon for /_ping and /version; it returns the daemon's
// version.
func (p *Proxy) Ping(ctx context.Context) (string, error) {
	var v struct{ Version, APIVersion string }
	for _, path := range []string{"/_ping", "/version"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.target.JoinPath(path).String(), nil)
		if err != nil {
			return "", err
		}
		resp, err := p.tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, b)
		}
		if err == nil && path == "/version" {
			err = json.Unmarshal(b, &v)
		}
		if err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s, API %s", v.Version, v.APIVersion), nil
}

// ServeHTTP forwards r to the daemon, unless it is refused (403); a
// container inspect comes back with Metrics.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if cause, why := p.refusal(r); why != "" {
		p.rl.Warn(cause, "dockerproxy: refused a request", "why", why, "method", r.Method, "path", clip(r.URL.Path))
		writeError(w, http.StatusForbidden, "dockerproxy: refused: "+why)
		return
	}
	if p.readTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
		b := &stallBody{body: r.Body, rc: http.NewResponseController(w), d: p.readTimeout}
		defer b.handlerDone()
		r.Body = b
		r = r.WithContext(context.WithValue(r.Context(), stallKey{}, b))
	}
	p.rp.ServeHTTP(w, r)
}

// refusal says why r is refused ("" when it is not) and a fixed name of
// the cause for the rate-limited log.
func (p *Proxy) refusal(r *http.Request) (cause, why string) {
	if o := r.Header.Values("Origin"); len(o) > 0 {
		return "origin", fmt.Sprintf("a request from a web page (Origin %q)", clip(o[0]))
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return "origin", fmt.Sprintf("a request from a browser (Sec-Fetch-Site %q)", clip(s))
	}
	if !localHost(r.Host) {
		return "host", fmt.Sprintf("Host %q does not name this machine (a DNS rebinding web page?)", clip(r.Host))
	}
	if p.readOnly && !allowedReadOnly(r) {
		return "read-only", fmt.Sprintf("read-only: %s %s is not a list or an inspect", r.Method, clip(r.URL.Path))
	}
	return "", ""
}

// localHost reports whether a Host header names this machine: empty (HTTP
// 1.0), localhost or a name under .localhost (which resolve to loopback
// only, RFC 6761; the Docker CLI sends api.moby.localhost on a unix
// socket), docker (older Go clients on a unix socket), or a loopback
// address; with any port.
func localHost(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	switch {
	case h == "", h == "localhost", strings.HasSuffix(h, ".localhost"), h == "docker":
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// allowedReadOnly reports whether -read-only lets r through: GET or HEAD
// of a clean path (no "..", "." or empty segments, which the daemon's
// router would clean into another call) that readOnlyPath matches.
func allowedReadOnly(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return path.Clean(p) == p && readOnlyPath.MatchString(p)
}

// clip bounds a client-given string in a log line or an answer.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// writeError answers as the Docker daemon does: {"message": ...}, which
// the Docker CLI prints as "Error response from daemon: ...".
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// backendError answers a request the daemon could not answer: 408 when
// the client's body stalled, else 502.
func (p *Proxy) backendError(w http.ResponseWriter, r *http.Request, err error) {
	if b, _ := r.Context().Value(stallKey{}).(*stallBody); b != nil && b.stalled.Load() {
		p.rl.Warn("read-timeout", "dockerproxy: a request body sent nothing for -read-timeout: request abandoned", "method", r.Method, "path", clip(r.URL.Path), "read_timeout", p.readTimeout)
		// Close after the answer: the server would otherwise read the
		// rest of the body first, to reuse the connection.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, fmt.Sprintf("dockerproxy: the request body sent nothing for %v", p.readTimeout))
		return
	}
	if r.Context().Err() != nil { // the client left, or the proxy is stopping
		writeError(w, http.StatusBadGateway, "dockerproxy: "+err.Error())
		return
	}
	p.rl.Warn("backend", "dockerproxy: the Docker daemon did not answer", "method", r.Method, "path", clip(r.URL.Path), "err", err)
	writeError(w, http.StatusBadGateway, "dockerproxy: "+err.Error())
}

type stallKey struct{}

// stallBody is a request body each read of which must bring something
// within d: it sets the connection's read deadline before each read and
// clears it at the end of the body (the server's own read for the next
// request, or for the client going away, must not inherit it).
type stallBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	d       time.Duration
	stalled atomic.Bool

	mu   sync.Mutex
	done bool // the handler returned: rc must not be used
}

func (b *stallBody) Read(buf []byte) (int, error) {
	b.mu.Lock()
	if !b.done {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	}
	b.mu.Unlock()
	n, err := b.body.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// The deadline stays: any later read of this connection fails
		// at once.
		b.stalled.Store(true)
	} else if err != nil {
		b.clear()
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.clear()
	return b.body.Close()
}

func (b *stallBody) clear() {
	b.mu.Lock()
	if !b.done && !b.stalled.Load() {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	b.mu.Unlock()
}

// handlerDone is called as the handler returns: from then on the body
// (which the transport may still read) leaves the connection alone.
func (b *stallBody) handlerDone() {
	b.clear()
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// transport returns an http.Transport to the daemon's unix socket and the
// URL to send requests to.
func transport(host string) (*http.Transport, *url.URL, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return nil, nil, fmt.Errorf("daemon address %q: want unix:///path (the local daemon's socket)", host)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		// Pass bodies as the daemon sent them: no gzip negotiated on the
		// client's behalf (which would also drop Content-Length).
		DisableCompression:    true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // POST /containers/{id}/wait answers when the container exits
	}
	return tr, &url.URL{Scheme: "http", Host: "docker"}, nil
}

// inspected is the part of an inspect answer the proxy needs.
type inspected struct {
	ID    string `json:"Id"`
	State *struct {
		Running bool
		Pid     int
	}
}

// modify adds the Metrics to a successful container inspect.
func (p *Proxy) modify(resp *http.Response) error {
	req := resp.Request
	if req.Method != http.MethodGet || resp.StatusCode != http.StatusOK || !inspectPath.MatchString(req.URL.Path) {
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || resp.Header.Get("Content-Encoding") != "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInspect+1))
	if err != nil {
		return err // ReverseProxy answers 502
	}
	if len(body) > maxInspect {
		p.rl.Warn("too-large", "dockerproxy: inspect answer too large to add metrics; passed through", "path", clip(req.URL.Path))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var in inspected
	if err := json.Unmarshal(body, &in); err != nil || in.ID == "" || in.State == nil {
		return nil // not what we know: leave it alone
	}
	if !in.State.Running || in.State.Pid <= 0 {
		p.cache.forget(in.ID)
		return nil
	}
	m := p.cache.metrics(req.Context(), in.ID, in.State.Pid)
	if m == nil {
		return nil
	}
	enc, err := json.Marshal(m)
	if err != nil {
		return err
	}
	out, ok := splice(body, enc)
	if !ok {
		return nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// splice inserts "Metrics": metrics as the last member of the JSON object
// body, leaving every byte of body around it as it was.
func splice(body, metrics []byte) ([]byte, bool) {
	end := len(bytes.TrimRight(body, " \t\r\n")) - 1
	if end < 1 || body[end] != '}' {
		return nil, false
	}
	before := bytes.TrimRight(body[:end], " \t\r\n")
	if len(before) == 0 {
		return nil, false
	}
	sep := []byte(",")
	if before[len(before)-1] == '{' { // an empty object
		sep = nil
	}
	out := make([]byte, 0, len(body)+len(metrics)+16)
	out = append(out, body[:end]...)
	out = append(out, sep...)
	out = append(out, `"Metrics":`...)
	out = append(out, metrics...)
	out = append(out, body[end:]...)
	return out, true
}
