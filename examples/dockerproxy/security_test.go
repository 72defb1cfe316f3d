package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
)

// program is run() started in a goroutine.
type program struct {
	stderr *rttest.Buffer
	done   chan int
	cancel context.CancelFunc
}

// startProgram runs the program with args until the test ends, and waits
// until it serves. The program must exit 0 when stopped.
func startProgram(t *testing.T, args ...string) *program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{stderr: &rttest.Buffer{}, done: make(chan int, 1), cancel: cancel}
	go func() { p.done <- run(ctx, args, io.Discard, p.stderr) }()
	t.Cleanup(func() {
		if code := p.stop(t); code != 0 {
			t.Errorf("exit %d: %s", code, p.stderr.String())
		}
	})
	deadline := time.After(30 * time.Second)
	for !strings.Contains(p.stderr.String(), "listening on") {
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("exit %d before serving: %s", code, p.stderr.String())
		case <-deadline:
			t.Fatalf("not serving within 30 s: %s", p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return p
}

// stop cancels the program and returns its exit status (the same one on
// every call).
func (p *program) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20 s of cancel")
		return -1
	}
}

// runOnce runs the program to its end with args (it must not serve) and
// returns its exit status and stderr.
func runOnce(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr rttest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, io.Discard, &stderr)
	return code, stderr.String()
}

// sharedDir makes a temp dir every user may enter (t.TempDir's parent is
// private to root), removed at the end of the test.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dproxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unixClient is an HTTP client to a unix socket.
func unixClient(t *testing.T, sock string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func statOwner(t *testing.T, path string) (uid, gid uint32, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode().Perm()
}

// TestParse: the defaults serve a unix socket, not TCP; the daemon is
// -docker-host, else DOCKER_HOST, else the default socket; remote daemons
// and TCP without asking are refused, never replaced by another address.
func TestParse(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	c, err := parse(nil, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.listenNet != "unix" || c.listenAddr != "/var/run/dockerproxy.sock" || c.socket != "/var/run/docker.sock" || c.readOnly {
		t.Errorf("defaults: listen %s %s, daemon %s, read-only %v; want a unix socket, /var/run/docker.sock, read-write", c.listenNet, c.listenAddr, c.socket, c.readOnly)
	}
	for _, tc := range []struct {
		args    []string
		env     []string
		socket  string // "" when refused
		from    string
		failing string // in the error
	}{
		{env: []string{"DOCKER_HOST", "unix:///run/user/0/docker.sock"}, socket: "/run/user/0/docker.sock", from: "DOCKER_HOST"},
		{args: []string{"-docker-host", "unix:///a.sock"}, env: []string{"DOCKER_HOST", "unix:///b.sock"}, socket: "/a.sock", from: "-docker-host"},
		{env: []string{"DOCKER_CONTEXT", "default"}, socket: "/var/run/docker.sock", from: "the default"},
		{env: []string{"DOCKER_HOST", "unix:///x.sock", "DOCKER_CONTEXT", "prod"}, socket: "/x.sock", from: "DOCKER_HOST"},
		{env: []string{"DOCKER_HOST", "tcp://10.0.0.7:2375"}, failing: "$DOCKER_HOST \"tcp://10.0.0.7:2375\": remote daemons are refused"},
		{env: []string{"DOCKER_HOST", "ssh://me@box"}, failing: "remote daemons are refused"},
		{args: []string{"-docker-host", "tcp://127.0.0.1:2375"}, failing: "-docker-host \"tcp://127.0.0.1:2375\": remote daemons are refused"},
		{args: []string{"-docker-host", "/var/run/docker.sock"}, failing: "want unix:///path"},
		{env: []string{"DOCKER_CONTEXT", "prod"}, failing: "DOCKER_CONTEXT=prod: Docker contexts are not supported"},
		{args: []string{"-listen", "127.0.0.1:12375"}, failing: "tcp://127.0.0.1:PORT"},
		{args: []string{"-listen", "unix://"}, failing: "no socket path"},
		{args: []string{"-max-conns", "0", "-read-timeout", "0s"}, failing: "-read-timeout must be positive, got 0s\n-max-conns must be positive"},
	} {
		c, err := parse(tc.args, env(tc.env...), io.Discard)
		switch {
		case tc.failing != "":
			if err == nil || !strings.Contains(err.Error(), tc.failing) {
				t.Errorf("%v %v: err %v, want %q", tc.args, tc.env, err, tc.failing)
			}
		case err != nil:
			t.Errorf("%v %v: %v", tc.args, tc.env, err)
		case c.socket != tc.socket || c.dockerHostFrom != tc.from:
			t.Errorf("%v %v: daemon %s from %s, want %s from %s", tc.args, tc.env, c.socket, c.dockerHostFrom, tc.socket, tc.from)
		}
	}
}

// TestDockerHostEnv: with no -docker-host the program forwards to
// $DOCKER_HOST and says so; a remote DOCKER_HOST, or a socket that is not
// there, stops it at once, without a listener.
func TestDockerHostEnv(t *testing.T) {
	host := dockerEnv(t)
	dir := sharedDir(t)
	sock := filepath.Join(dir, "p.sock")
	t.Setenv("DOCKER_HOST", host)
	t.Setenv("DOCKER_CONTEXT", "")
	p := startProgram(t, "-listen", "unix://"+sock)
	if out := p.stderr.String(); !strings.Contains(out, "forwarding to "+host+" (DOCKER_HOST") {
		t.Errorf("start-up line %q does not name DOCKER_HOST's daemon", out)
	}
	name := rttest.Name("dproxy-env")
	rttest.DockerRun(t, name, nil)
	if out := rttest.Run(t, "docker", "-H", "unix://"+sock, "ps", "--filter", "name="+name, "--format", "{{.Names}}"); out != name {
		t.Errorf("docker ps through the proxy: %q, want %q", out, name)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after exit: %v", err)
	}

	for _, tc := range []struct {
		dockerHost string
		code       int
		want       string
	}{
		{"tcp://127.0.0.1:2375", 2, "remote daemons are refused"},
		{"unix://" + filepath.Join(dir, "no-such.sock"), 1, "no such file"},
		{"unix://" + dir, 1, "not a socket"},
	} {
		t.Setenv("DOCKER_HOST", tc.dockerHost)
		code, stderr := runOnce(t, "-listen", "unix://"+sock)
		if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("DOCKER_HOST=%s: exit %d, stderr %q; want %d and one line with %q", tc.dockerHost, code, stderr, tc.code, tc.want)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("DOCKER_HOST=%s: a socket was made: %v", tc.dockerHost, err)
		}
	}
}

// asUser runs the docker CLI with credentials and returns its combined
// output.
func asUser(t *testing.T, cred *syscall.Credential, args ...string) (string, error) {
	t.Helper()
	cfg := sharedDir(t) // the CLI's config dir, readable by the user
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cfg, "DOCKER_CONFIG=" + cfg}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestSocketPermissions: the proxy's socket has the Docker socket's owner,
// group and mode. User nobody cannot open it; nobody with the Docker
// socket's group can, as it could open the Docker socket itself.
func TestSocketPermissions(t *testing.T) {
	host := dockerEnv(t)
	dockerSock := strings.TrimPrefix(host, "unix://")
	sock := filepath.Join(sharedDir(t), "proxy.sock")
	startProgram(t, "-listen", "unix://"+sock, "-docker-host", host)

	du, dg, dm := statOwner(t, dockerSock)
	pu, pg, pm := statOwner(t, sock)
	t.Logf("docker socket %d:%d %v, proxy socket %d:%d %v", du, dg, dm, pu, pg, pm)
	if pu != du || pg != dg || pm != dm {
		t.Fatalf("proxy socket %d:%d %v, Docker socket %d:%d %v: want the same", pu, pg, pm, du, dg, dm)
	}
	if dm&0o007 != 0 {
		t.Fatalf("the test daemon's socket is open to every user (%v): nothing to refuse", dm)
	}

	const nobody = 65534
	api := rttest.Docker(t, "version", "-f", "{{.Server.APIVersion}}")
	out, err := asUser(t, &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}, "-H", "unix://"+sock, "version", "-f", "{{.Server.APIVersion}}")
	if err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("user nobody through the proxy: %v, %q; want permission denied", err, out)
	}
	// The same user, in the Docker socket's group: allowed, as on the
	// Docker socket.
	out, err = asUser(t, &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{dg}}, "-H", "unix://"+sock, "version", "-f", "{{.Server.APIVersion}}")
	if err != nil || out != api {
		t.Errorf("user nobody in group %d through the proxy: %v, %q; want API %s", dg, err, out, api)
	}
}

// TestTCPLoopbackOnly: TCP is served on loopback only.
func TestTCPLoopbackOnly(t *testing.T) {
	host := dockerEnv(t)
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		code, stderr := runOnce(t, "-listen", "tcp://"+addr, "-docker-host", host)
		if code != 1 || !strings.Contains(stderr, "not a loopback address") {
			t.Errorf("-listen tcp://%s: exit %d, %q; want 1, refused", addr, code, stderr)
		}
	}
}

// TestRefuseBrowser: a request whose Host does not name this machine (DNS
// rebinding) or that comes from a browser (Origin, Sec-Fetch-Site) is
// refused with 403 and changes nothing; the clients' usual Host values
// pass. Each refusal is logged at warn, once a minute per cause.
func TestRefuseBrowser(t *testing.T) {
	host := dockerEnv(t)
	_, base, logs := startProxyWith(t, Config{DockerHost: host})
	name := rttest.Name("dproxy-victim")
	id := rttest.DockerRun(t, name, nil)
	created := rttest.Name("dproxy-rebound")
	t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", host, "rm", "-f", created) })

	do := func(method, path string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		body         string
	}{
		{"POST", "/v1.41/containers/" + id + "/pause", map[string]string{"Host": "evil.example:12375"}, ""},
		{"POST", "/containers/create?name=" + created, map[string]string{"Host": "rebind.attacker.example"}, `{"Image":"` + os.Getenv(rttest.EnvImage) + `","Cmd":["sleep","600"]}`},
		{"POST", "/containers/" + id + "/pause", map[string]string{"Origin": "http://127.0.0.1:8080"}, ""},
		{"POST", "/containers/" + id + "/kill", map[string]string{"Origin": "null"}, ""},
		{"POST", "/containers/" + id + "/kill", map[string]string{"Sec-Fetch-Site": "cross-site"}, ""},
		{"GET", "/containers/json", map[string]string{"Host": "127.0.0.1.nip.io"}, ""},
	} {
		code, body := do(tc.method, tc.path, tc.hdr, tc.body)
		var msg struct{ Message string }
		if code != http.StatusForbidden || json.Unmarshal([]byte(body), &msg) != nil || !strings.Contains(msg.Message, "dockerproxy: refused") {
			t.Errorf("%s %s %v: %d %q; want 403 with a Docker-style message", tc.method, tc.path, tc.hdr, code, body)
		}
	}
	// Nothing changed: the container runs, unpaused; nothing was created.
	if st := rttest.Docker(t, "inspect", "-f", "{{.State.Status}}", id); st != "running" {
		t.Errorf("the container is %s after refused requests, want running", st)
	}
	if out, err := rttest.Try("docker", "-H", host, "inspect", created); err == nil {
		t.Errorf("a refused create made a container: %s", out)
	}
	// One line per cause: host and origin, each refused 3 times.
	if n := strings.Count(logs.String(), "level=WARN msg=\"dockerproxy: refused a request\""); n != 2 {
		t.Errorf("%d refusal lines, want 2 (one per cause, then held back):\n%s", n, logs.String())
	}
	for _, want := range []string{`Host \"evil.example:12375\" does not name this machine`, `Origin \"http://127.0.0.1:8080\"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}

	// What clients send passes.
	for _, h := range []string{strings.TrimPrefix(base, "http://"), "localhost", "localhost:2375", "api.moby.localhost", "docker", "[::1]:12375", "127.0.0.2"} {
		if code, body := do("GET", "/_ping", map[string]string{"Host": h}, ""); code != http.StatusOK || body != "OK" {
			t.Errorf("Host %q: %d %q, want 200 OK", h, code, body)
		}
	}
	// HTTP/1.0 without a Host.
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /_ping HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("HTTP/1.0 without Host: %v %v", resp, err)
	}
	// And the refused call itself works from a client: the 403s were the
	// checks, not a broken path.
	if code, body := do("POST", "/v1.41/containers/"+id+"/pause", nil, ""); code != http.StatusNoContent {
		t.Fatalf("pause from a plain client: %d %s", code, body)
	}
	if st := rttest.Docker(t, "inspect", "-f", "{{.State.Status}}", id); st != "paused" {
		t.Errorf("after pause through the proxy: %s", st)
	}
	rttest.Docker(t, "unpause", id)
}

// TestReadOnly: with -read-only the Docker CLI lists and inspects through
// the proxy (Metrics included), and every call that would change
// something, run a command, or read a container's files, logs or
// events is refused with 403, changing nothing.
func TestReadOnly(t *testing.T) {
	host := dockerEnv(t)
	sock := filepath.Join(t.TempDir(), "ro.sock")
	p := startProgram(t, "-listen", "unix://"+sock, "-docker-host", host, "-read-only")
	if !strings.Contains(p.stderr.String(), "read-only") {
		t.Errorf("start-up line does not say read-only: %s", p.stderr.String())
	}
	name := rttest.Name("dproxy-ro")
	id := rttest.DockerRun(t, name, nil)
	image := os.Getenv(rttest.EnvImage)
	ph := "unix://" + sock
	cli := func(args ...string) (string, error) {
		return rttest.Try("docker", append([]string{"-H", ph}, args...)...)
	}
	for _, args := range [][]string{
		{"ps", "--filter", "name=" + name, "--format", "{{.ID}}"},
		{"inspect", "-f", "{{.Metrics.Memory.UsageBytes}}", name},
		{"version"},
		{"info", "-f", "{{.ID}}"},
		{"image", "ls"},
		{"image", "inspect", "-f", "{{.Id}}", image},
		{"network", "ls"},
		{"network", "inspect", "none"},
		{"volume", "ls"},
	} {
		out, err := cli(args...)
		if err != nil {
			t.Errorf("read-only: docker %v: %v", args, err)
			continue
		}
		if args[0] == "inspect" && (out == "" || out == "<no value>") {
			t.Errorf("read-only: no Metrics in docker inspect: %q", out)
		}
	}

	volume := rttest.Name("dproxy-vol")
	t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", host, "volume", "rm", "-f", volume) })
	created := rttest.Name("dproxy-ro-run")
	t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", host, "rm", "-f", created) })
	for _, args := range [][]string{
		{"pause", name},
		{"kill", name},
		{"rm", "-f", name},
		{"exec", name, "true"},
		{"logs", name},
		{"stats", "--no-stream", name},
		{"export", name},
		{"cp", name + ":/etc/passwd", "-"},
		{"diff", name},
		{"top", name},
		{"run", "-d", "--name", created, image, "sleep", "600"},
		{"volume", "create", volume},
		{"image", "save", image},
		{"events", "--since", "0", "--until", "1"},
	} {
		if out, err := cli(args...); err == nil || !strings.Contains(err.Error(), "dockerproxy: refused: read-only") {
			t.Errorf("read-only: docker %v: %v %q; want refused", args, err, out)
		}
	}
	// Paths that clean into another call, and the websocket attach (GET).
	c := unixClient(t, sock)
	for _, path := range []string{
		"/containers/" + id + "/attach/ws?stream=1",
		"/containers/json/../" + id + "/export",
		"/v1.41/images/x/../../containers/" + id + "/export/json",
		"/containers/" + id + "/json/",
		"//containers/" + id + "/json",
		"/images/" + url.PathEscape("..") + "/containers/" + id + "/json",
	} {
		resp, b := get(t, c, "http://localhost"+path)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("read-only: GET %s: %s %q; want 403", path, resp.Status, b)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://localhost/containers/json", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("read-only: POST to a list path: %v %v; want 403", resp, err)
	} else {
		resp.Body.Close()
	}

	// Nothing changed.
	if st := rttest.Docker(t, "inspect", "-f", "{{.State.Status}} {{len .ExecIDs}}", id); st != "running 0" {
		t.Errorf("after refused calls: state and execs %q, want running 0", st)
	}
	if out, err := rttest.Try("docker", "-H", host, "inspect", created); err == nil {
		t.Errorf("a refused run made a container: %s", out)
	}
	if _, err := rttest.Try("docker", "-H", host, "volume", "inspect", volume); err == nil {
		t.Errorf("a refused volume create made a volume")
	}
	if !strings.Contains(p.stderr.String(), "level=WARN msg=\"dockerproxy: refused a request\"") {
		t.Errorf("no refusal logged at warn: %s", p.stderr.String())
	}
}

// TestServerLimits runs the program with short bounds: an idle keep-alive
// connection, a connection that sends nothing, a request body that
// stalls and a client that stops reading are each closed and logged; one
// connection over -max-conns is answered 503 until one closes; and a
// stream that waits for the daemon outlives every bound.
func TestServerLimits(t *testing.T) {
	host := dockerEnv(t)
	sock := filepath.Join(t.TempDir(), "limits.sock")
	p := startProgram(t, "-listen", "unix://"+sock, "-docker-host", host,
		"-idle-timeout", "1s", "-read-timeout", "1s", "-write-timeout", "1s", "-max-conns", "3")
	id := rttest.DockerRun(t, rttest.Name("dproxy-limits"), nil)
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedBy reads c until the proxy closes it; a generous bound only
	// catches a connection held for ever.
	closedBy := func(c net.Conn, what string) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the proxy still holds the connection after 30 s", what)
		}
	}
	logged := func(what, want string) {
		t.Helper()
		rttest.Eventually(t, 20*time.Second, func() error {
			if !strings.Contains(p.stderr.String(), want) {
				return fmt.Errorf("%s: no %q in the log: %s", what, want, p.stderr.String())
			}
			return nil
		})
	}

	// A stream that waits for the daemon, open through all that follows.
	events := unixClient(t, sock)
	events.Timeout = 0
	f, _ := json.Marshal(map[string][]string{"container": {id}, "type": {"container"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/events?filters="+url.QueryEscape(string(f)), nil)
	resp, err := events.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := lineReader(resp.Body)

	// Idle after one request.
	c := dial()
	br := bufio.NewReader(c)
	fmt.Fprint(c, "GET /_ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if r, err := http.ReadResponse(br, nil); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("ping: %v %v", r, err)
	} else {
		io.Copy(io.Discard, r.Body)
	}
	closedBy(c, "an idle keep-alive connection")

	// Connected, sending nothing.
	closedBy(dial(), "a connection that sends nothing")

	// A create whose body stops half way: 408, no container.
	name := rttest.Name("dproxy-stall")
	t.Cleanup(func() { _, _ = rttest.Try("docker", "-H", host, "rm", "-f", name) })
	c = dial()
	fmt.Fprintf(c, "POST /containers/create?name=%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Image\":", name)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if r, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || r.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a stalled request body: %v %v; want 408", r, err)
	}
	logged("a stalled request body", "a request body sent nothing for -read-timeout")
	if _, err := rttest.Try("docker", "-H", host, "inspect", name); err == nil {
		t.Errorf("a create with a stalled body made a container")
	}

	// A client that asks for the container's filesystem and reads
	// nothing: its connection is closed, the answer cut short.
	var full int64
	{
		r, err := unixClient(t, host[len("unix://"):]).Get("http://docker/containers/" + id + "/export")
		if err != nil {
			t.Fatal(err)
		}
		full, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	c = dial()
	fmt.Fprintf(c, "GET /containers/%s/export HTTP/1.1\r\nHost: localhost\r\n\r\n", id)
	logged("a client that stopped reading", "closed a connection whose client took nothing for -write-timeout")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if r, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		n, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			t.Errorf("the stalled export arrived whole (%d bytes of %d)", n, full)
		}
		t.Logf("stalled export: %d of %d bytes, then %v", n, full, err)
	}

	// The cap: the events stream and two more take the 3 slots.
	for range 2 {
		c := dial()
		fmt.Fprint(c, "GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if r, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("events: %v %v", r, err)
		}
	}
	over := unixClient(t, sock)
	over.Transport.(*http.Transport).DisableKeepAlives = true
	r, b := get(t, over, "http://localhost/_ping")
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "too many connections (-max-conns 3)") {
		t.Errorf("over the cap: %s %q; want 503", r.Status, b)
	}
	logged("over the cap", "connection cap reached")
	// The first events stream ends: a slot is free again. It was open all
	// along: it still delivers.
	rttest.Docker(t, "pause", id)
	waitLine(t, lines, "the pause event on a stream older than every bound", func(l string) bool { return strings.Contains(l, `"pause"`) })
	rttest.Docker(t, "unpause", id)
	cancel()
	rttest.Eventually(t, 20*time.Second, func() error {
		r, b := get(t, over, "http://localhost/_ping")
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("after a stream closed: %s %q", r.Status, b)
		}
		return nil
	})
}

// TestNotTheContainer: an inspect whose State.Pid is a local process
// outside the container's cgroup gets no figures, an Errors entry, and a
// warning. The daemon here is a stub on a unix socket: a Docker daemon on
// another host, or in another PID namespace, is a fault this machine
// cannot make for real in a test.
func TestNotTheContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: reads cgroups")
	}
	sleep := exec.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sock := filepath.Join(t.TempDir(), "stub.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stub := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"Id":%q,"State":{"Running":true,"Pid":%d}}`, id, sleep.Process.Pid)
	})}
	go stub.Serve(ln)
	t.Cleanup(func() { stub.Close() })

	_, base, logs := startProxyWith(t, Config{DockerHost: "unix://" + sock})
	r, _ := inspectVia(t, base, "/containers/"+id+"/json")
	m := r.Metrics
	if m == nil || m.CPU != nil || m.Memory != nil || m.Network != nil || len(m.Errors) != 1 || !strings.Contains(m.Errors[0], "not named after container "+id) {
		t.Fatalf("Metrics %s; want no figures and an error naming the container", must(json.Marshal(m)))
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"dockerproxy: cannot read a container's metrics\"") {
		t.Errorf("no warning: %s", logs.String())
	}
}
