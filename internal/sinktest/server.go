package sinktest

import (
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
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Binary returns the path in environment variable env if it names an
// executable file, else "" and why not.
func Binary(env string) (string, string) {
	p := os.Getenv(env)
	if p == "" {
		return "", env + " is not set (source scripts/servers.sh)"
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", env + ": " + err.Error()
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", env + ": " + p + " is not an executable file"
	}
	return p, ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a server run as a child process, stopped by its PID.
type proc struct {
	mu   sync.Mutex
	name string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New(p.name + " already running")
	}
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group, so that a signal to the test's group does not
	// reach it first and we stop exactly this PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// stop sends SIGTERM to the PID, then SIGKILL after 10 s, and waits.
func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd, p.done = nil, nil
}

// kill sends SIGKILL to the PID and waits.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
	p.cmd, p.done = nil, nil
}

func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers with want, the process exits, or
// timeout passes.
func (p *proc) waitHTTP(u string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited during start-up; log:\n%s", p.name, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within %v; log:\n%s", p.name, u, timeout, p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Influxd is an InfluxDB 1.x server on 127.0.0.1 with its data in a
// directory of its own.
type Influxd struct {
	// URL is the HTTP API's base, "http://127.0.0.1:PORT".
	URL  string
	Dir  string
	proc proc
}

// InfluxdConfig adjusts an Influxd.
type InfluxdConfig struct {
	// MaxBodySize is [http] max-body-size in bytes (0: InfluxDB's 25 MB).
	MaxBodySize int
}

// StartInfluxd writes a config into dir and starts bin (influxd) with it:
// the HTTP API and the RPC service bind to free ports on 127.0.0.1,
// reporting, monitoring store, UDP/Graphite/collectd/OpenTSDB are off. It
// waits (at most 30 s) until /ping answers.
func StartInfluxd(bin, dir string, cfg InfluxdConfig) (*Influxd, error) {
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	rpcPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	for rpcPort == httpPort {
		if rpcPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	maxBody := 25000000
	if cfg.MaxBodySize > 0 {
		maxBody = cfg.MaxBodySize
	}
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %q
  logging-enabled = false

[data]
  dir = %q
  wal-dir = %q
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
  max-body-size = %d
  flux-enabled = false

[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false

[continuous_queries]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort, maxBody)
	confPath := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	d := &Influxd{
		URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), Dir: dir,
		proc: proc{name: "influxd", args: []string{bin, "-config", confPath}, log: filepath.Join(dir, "influxd.log")},
	}
	if err := d.Start(); err != nil {
		return nil, err
	}
	return d, nil
}

// Start starts influxd again after Stop, on the same port and data, and
// waits until /ping answers.
func (d *Influxd) Start() error {
	if err := d.proc.start(); err != nil {
		return err
	}
	if err := d.proc.waitHTTP(d.URL+"/ping", http.StatusNoContent, 30*time.Second); err != nil {
		d.proc.stop()
		return err
	}
	return nil
}

// Stop stops influxd (SIGTERM to its PID, SIGKILL after 10 s) and waits for
// it to exit. Calling it twice is harmless.
func (d *Influxd) Stop() { d.proc.stop() }

// Log returns the end of influxd's log, for failure messages.
func (d *Influxd) Log() string { return d.proc.logTail() }

// Series is one series of an InfluxQL result.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// Query runs InfluxQL q against db (may be "") through /query, with epoch=ns,
// and returns the series of its first statement.
func (d *Influxd) Query(ctx context.Context, db, q string) ([]Series, error) {
	v := url.Values{"q": {q}, "epoch": {"ns"}}
	if db != "" {
		v.Set("db", db)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL+"/query", nil)
	if err != nil {
		return nil, err
	}
	req.URL.RawQuery = v.Encode()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Results []struct {
			Series []Series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("query %q: %d %s: %w", q, resp.StatusCode, body, err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	if len(r.Results) == 0 {
		return nil, fmt.Errorf("query %q: no result: %s", q, body)
	}
	if r.Results[0].Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, r.Results[0].Error)
	}
	return r.Results[0].Series, nil
}

// Exec runs an InfluxQL statement that returns no series (CREATE DATABASE).
func (d *Influxd) Exec(ctx context.Context, q string) error {
	_, err := d.Query(ctx, "", q)
	return err
}

// Stat returns one counter of SHOW STATS for module (e.g. "httpd",
// "pointsWrittenOK"): counters start at 0 when influxd starts.
func (d *Influxd) Stat(ctx context.Context, module, key string) (int64, error) {
	ss, err := d.Query(ctx, "", "SHOW STATS FOR '"+module+"'")
	if err != nil {
		return 0, err
	}
	var total int64
	found := false
	for _, s := range ss {
		for i, c := range s.Columns {
			if c != key {
				continue
			}
			for _, row := range s.Values {
				n, err := strconv.ParseInt(fmt.Sprint(row[i]), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("SHOW STATS %s %s: %v", module, key, row[i])
				}
				total += n
				found = true
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("SHOW STATS FOR %q has no %q", module, key)
	}
	return total, nil
}
