package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// TestLivePage: the daemon serves the live page on -listen whatever the
// sink (here stdout): / is the page with its CSP, /api/v1/containers lists
// a real group beneath -cgroup-subtree, writes are refused (405), and the
// page is behind the same -max-conns as /metrics: with the one connection
// allowed held open, a second is answered 503.
func TestLivePage(t *testing.T) {
	tr := rttest.NewTree(t)
	id := fmt.Sprintf("%064x", 0x11e9)
	tr.Spawn("docker/" + id)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	base := startDaemon(t, devnull, "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-interval", "200ms", "-net", "none", "-max-conns", "1")
	waitStatus(t, base+"/api/v1/containers", 200, id, 10*time.Second)

	// One connection at a time (-max-conns 1): each request on a
	// connection of its own, closed after it; the server sees the close a
	// moment later, and until then answers 503.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	one := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	fetch := func(method, path string) (*http.Response, string) {
		t.Helper()
		var resp *http.Response
		var body []byte
		var err error
		sinktest.Poll(5*time.Second, func() bool {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(""))
			if resp, err = one.Do(req); err != nil {
				return false
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode != 503
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	resp, _ := fetch("GET", "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("/: %s %q, CSP %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
	var api struct {
		Containers []struct{ ID, Runtime string }
	}
	_, body := fetch("GET", "/api/v1/containers")
	if err := json.Unmarshal([]byte(body), &api); err != nil || len(api.Containers) != 1 || api.Containers[0].Runtime != "cgroupfs" {
		t.Errorf("api: %v %+v", err, api)
	}
	if resp, _ := fetch("POST", "/"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %s, want 405", resp.Status)
	}
	if resp, _ := fetch("GET", "/metrics"); resp.StatusCode != 404 {
		t.Errorf("/metrics without -sink prometheus: %s, want 404", resp.Status)
	}

	// One connection held: the next is refused.
	held, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if !sinktest.Poll(5*time.Second, func() bool { code, _ := get(base + "/"); return code == 503 }) {
		t.Error("the page answered past -max-conns 1")
	}
}

// TestLivePageOff: -live-points 0 serves no page (404), the rest as ever;
// -live-points 1 and -live-max-containers 0 are refused at start.
func TestLivePageOff(t *testing.T) {
	tr := rttest.NewTree(t)
	tr.Spawn(fmt.Sprintf("docker/%064x", 0x11ea))
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	base := startDaemon(t, devnull, "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-interval", "200ms", "-net", "none", "-live-points", "0")
	waitStatus(t, base+"/readyz", 200, "ok", 10*time.Second)
	for _, p := range []string{"/", "/api/v1/containers"} {
		if code, _ := get(base + p); code != 404 {
			t.Errorf("%s with -live-points 0: %d, want 404", p, code)
		}
	}
	for _, args := range [][]string{{"-live-points", "1"}, {"-live-max-containers", "0"}} {
		code, _, errOut := runArgs(t, append(args, "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-listen", "127.0.0.1:0")...)
		if code != 2 || !strings.Contains(errOut, "live") {
			t.Errorf("%v: exit %d, %q; want 2 and the reason", args, code, errOut)
		}
	}
}
