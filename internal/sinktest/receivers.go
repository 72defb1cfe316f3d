package sinktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"
)

// Receiver is a remote_write receiver on 127.0.0.1 with a Prometheus query
// API: a Prometheus with its receiver enabled, or VictoriaMetrics. Stop and
// Start restart it on the same port and data.
type Receiver struct {
	// Name is "prometheus" or "victoria-metrics".
	Name string
	// URL is the HTTP API's base, "http://127.0.0.1:PORT"; WriteURL is
	// where remote_write requests go.
	URL, WriteURL string
	// User and Password, when set, are sent as basic auth with the
	// queries (VictoriaMetrics -httpAuth.*).
	User, Password string
	ready          string
	proc           proc
}

// StartPrometheusReceiver starts bin (prometheus 2.x) with
// --web.enable-remote-write-receiver, scraping nothing, its TSDB in dir,
// and waits (at most 60 s) until it is ready.
func StartPrometheusReceiver(bin, dir string) (*Receiver, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := writeFile(confPath, "global:\n  scrape_interval: 1m\n"); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := &Receiver{
		Name: "prometheus", URL: base, WriteURL: base + "/api/v1/write", ready: base + "/-/ready",
		proc: proc{name: "prometheus", log: filepath.Join(dir, "prometheus.log"), args: []string{bin,
			"--config.file=" + confPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--web.enable-remote-write-receiver",
			"--log.level=warn",
		}},
	}
	return r, r.Start()
}

// StartVictoriaMetrics starts bin (victoria-metrics, single node) on a free
// port with its data in dir, answering queries with the latest samples (no
// latency offset), and waits (at most 60 s) until it is ready. extra
// flags are appended.
func StartVictoriaMetrics(bin, dir string, extra ...string) (*Receiver, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{bin,
		"-httpListenAddr=127.0.0.1:" + strconv.Itoa(port),
		"-storageDataPath=" + filepath.Join(dir, "vmdata"),
		"-retentionPeriod=100y",
		"-search.latencyOffset=0s",
		"-loggerLevel=ERROR",
	}
	r := &Receiver{
		Name: "victoria-metrics", URL: base, WriteURL: base + "/api/v1/write", ready: base + "/health",
		proc: proc{name: "victoria-metrics", log: filepath.Join(dir, "victoria-metrics.log"), args: append(args, extra...)},
	}
	return r, r.Start()
}

// Start starts the receiver again after Stop, on the same port and data,
// and waits until it is ready.
func (r *Receiver) Start() error {
	if err := r.proc.start(); err != nil {
		return err
	}
	if err := r.proc.waitHTTP(r.ready, http.StatusOK, 60*time.Second); err != nil {
		r.proc.stop()
		return err
	}
	return nil
}

// Stop stops the receiver by its PID (SIGTERM, SIGKILL after 10 s) and
// waits for it to exit. Calling it twice is harmless.
func (r *Receiver) Stop() { r.proc.stop() }

// Kill kills the receiver by its PID (SIGKILL, an outage without a clean
// shutdown) and waits for it to exit.
func (r *Receiver) Kill() { r.proc.kill() }

// Log returns the end of the receiver's log.
func (r *Receiver) Log() string { return r.proc.logTail() }

// Flush makes what VictoriaMetrics received searchable at once
// (/internal/force_flush); Prometheus needs nothing.
func (r *Receiver) Flush(ctx context.Context) error {
	if r.Name != "victoria-metrics" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/internal/force_flush", nil)
	if err != nil {
		return err
	}
	r.auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("force_flush: %s", resp.Status)
	}
	return nil
}

// QueryAt runs an instant PromQL query at time t through /api/v1/query and
// returns the vector.
func (r *Receiver) QueryAt(ctx context.Context, q string, t time.Time) ([]Sample, error) {
	v := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)}}
	return queryVector(ctx, r.URL, v, r.auth)
}

func (r *Receiver) auth(req *http.Request) {
	if r.User != "" || r.Password != "" {
		req.SetBasicAuth(r.User, r.Password)
	}
}

// queryVector runs /api/v1/query with parameters v against base; auth,
// when not nil, adds credentials.
func queryVector(ctx context.Context, base string, v url.Values, auth func(*http.Request)) ([]Sample, error) {
	q := v.Get("query")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var res struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("query %q: %d %s", q, resp.StatusCode, body)
	}
	if res.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, res.Error)
	}
	if res.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s", q, res.Data.ResultType)
	}
	out := make([]Sample, 0, len(res.Data.Result))
	for _, x := range res.Data.Result {
		s, _ := x.Value[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %v", q, x.Value[1])
		}
		out = append(out, Sample{Metric: x.Metric, Value: f})
	}
	return out, nil
}

// CountSamples returns how many samples of the series matching selector
// the receiver holds in (at-window, at], by a range query (selector[window])
// whose raw samples are counted here.
func (r *Receiver) CountSamples(ctx context.Context, selector string, window time.Duration, at time.Time) (int, error) {
	q := fmt.Sprintf("%s[%dms]", selector, window.Milliseconds())
	v := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1e3, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/api/v1/query?"+v.Encode(), nil)
	if err != nil {
		return 0, err
	}
	r.auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var res struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return 0, fmt.Errorf("query %q: %d %s", q, resp.StatusCode, body)
	}
	if res.Status != "success" || res.Data.ResultType != "matrix" {
		return 0, fmt.Errorf("query %q: %s %s", q, res.Error, res.Data.ResultType)
	}
	n := 0
	for _, s := range res.Data.Result {
		n += len(s.Values)
	}
	return n, nil
}
