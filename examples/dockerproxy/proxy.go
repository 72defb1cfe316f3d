package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// inspectPath matches a container inspect, with or without an API version
// prefix. Container IDs and names have no slash.
var inspectPath = regexp.MustCompile(`^(?:/v[0-9]+(?:\.[0-9]+)*)?/containers/([^/]+)/json$`)

// maxInspect bounds the inspect body the proxy reads to rewrite (Docker's
// are a few kB).
const maxInspect = 16 << 20

// Proxy is the Docker API reverse proxy; it is an http.Handler.
type Proxy struct {
	rp    *httputil.ReverseProxy
	cache *cache
	log   *slog.Logger
}

// NewProxy makes a proxy to the daemon at dockerHost (unix:///path or
// tcp://host:port) that reads metrics beneath hostRoot and sweeps its
// handle cache every sweep.
func NewProxy(ctx context.Context, dockerHost, hostRoot string, sweep time.Duration, log *slog.Logger) (*Proxy, error) {
	tr, target, err := transport(dockerHost)
	if err != nil {
		return nil, err
	}
	c, err := newCache(ctx, hostRoot, sweep, log)
	if err != nil {
		return nil, err
	}
	p := &Proxy{cache: c, log: log}
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
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				log.Warn("dockerproxy: backend", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "dockerproxy: " + err.Error()})
		},
	}
	return p, nil
}

// Close releases every cached handle and the namespace hop threads.
func (p *Proxy) Close() error { return p.cache.close() }

// ServeHTTP forwards r to the daemon; a container inspect comes back with
// Metrics.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }

// transport returns an http.Transport to the daemon and the URL to send
// requests to.
func transport(host string) (*http.Transport, *url.URL, error) {
	tr := &http.Transport{
		// Pass bodies as the daemon sent them: no gzip negotiated on the
		// client's behalf (which would also drop Content-Length).
		DisableCompression:    true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // POST /containers/{id}/wait answers when the container exits
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		if path == "" {
			return nil, nil, fmt.Errorf("-docker-host %q: no socket path", host)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
		return tr, &url.URL{Scheme: "http", Host: "docker"}, nil
	case strings.HasPrefix(host, "tcp://"), strings.HasPrefix(host, "http://"):
		u, err := url.Parse(host)
		if err != nil || u.Host == "" {
			return nil, nil, fmt.Errorf("-docker-host %q: want tcp://host:port", host)
		}
		tr.DialContext = d.DialContext
		return tr, &url.URL{Scheme: "http", Host: u.Host}, nil
	}
	return nil, nil, fmt.Errorf("-docker-host %q: want unix:///path or tcp://host:port", host)
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
		p.log.Warn("dockerproxy: inspect answer too large to add metrics; passed through", "path", req.URL.Path)
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
