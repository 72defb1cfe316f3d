package rttest

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// FaultProxy serves the Docker API of the test dockerd on a unix socket of
// its own, failing with 500 the requests for which Fail (when set) returns
// true: a fault of the daemon the tests cannot cause for real (an inspect
// that fails while the daemon answers everything else). Everything else,
// the event stream included, passes through to the real daemon.
type FaultProxy struct {
	// Host is the proxy's address: unix://<socket>.
	Host string
	fail atomic.Pointer[func(*http.Request) bool]

	mu   sync.Mutex
	seen []*http.Request // every request received, body-less copies
}

// NewFaultProxy starts a proxy in front of the test dockerd; it stops at
// cleanup.
func NewFaultProxy(t testing.TB) *FaultProxy {
	t.Helper()
	host := Need(t, EnvDockerHost)[0]
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Skipf("%s is not a unix socket", host)
	}
	p := &FaultProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "docker"})
	rp.FlushInterval = -1 // the event stream, as it comes
	rp.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	path := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, &http.Request{Method: r.Method, URL: r.URL})
		p.mu.Unlock()
		if f := p.fail.Load(); f != nil && (*f)(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"message":"injected fault (rttest.FaultProxy)"}`))
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	p.Host = "unix://" + path
	return p
}

// Fail sets which requests fail (nil: none).
func (p *FaultProxy) Fail(f func(*http.Request) bool) {
	if f == nil {
		p.fail.Store(nil)
		return
	}
	p.fail.Store(&f)
}

// Count is how many of the requests received so far f matches (only
// Method and URL are set in what it is given): a test waits on the
// client's requests instead of sleeping.
func (p *FaultProxy) Count(f func(*http.Request) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.seen {
		if f(r) {
			n++
		}
	}
	return n
}

// Listings matches a Count to container listings (GET /v1.xx/containers/json).
func Listings(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/containers/json")
}

// EventStreams matches a Count to event stream requests (GET /v1.xx/events).
func EventStreams(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/events")
}

// InspectOf returns a Fail predicate for the inspection of one container
// (GET /v1.xx/containers/<id>/json).
func InspectOf(id string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/containers/"+id+"/json")
	}
}
