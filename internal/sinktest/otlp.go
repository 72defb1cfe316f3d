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

// OTLPReceiver is the OpenTelemetry Collector's OTLP receiver in a test
// binary (internal/sinktest/otlpreceiver, a module of its own that
// scripts/servers.sh builds; METRICSD_TEST_OTLPRECEIVER) on 127.0.0.1: it
// keeps what it receives, decoded by the Collector, and serves it back.
type OTLPReceiver struct {
	// MetricsURL is where OTLP/HTTP metrics go, ".../v1/metrics".
	MetricsURL string
	api        string
	proc       proc
}

// StartOTLPReceiver starts bin on free ports, its log in dir, and waits
// (at most 30 s) until it answers.
func StartOTLPReceiver(bin, dir string) (*OTLPReceiver, error) {
	otlpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	for apiPort == otlpPort {
		if apiPort, err = FreePort(); err != nil {
			return nil, err
		}
	}
	r := &OTLPReceiver{
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/v1/metrics", otlpPort),
		api:        fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		proc: proc{name: "otlpreceiver", log: filepath.Join(dir, "otlpreceiver.log"), args: []string{bin,
			"-otlp=127.0.0.1:" + strconv.Itoa(otlpPort), "-api=127.0.0.1:" + strconv.Itoa(apiPort)}},
	}
	return r, r.Start()
}

// Start starts the receiver again after Stop or Kill, on the same ports
// (with nothing received: it keeps what it got in memory).
func (r *OTLPReceiver) Start() error {
	if err := r.proc.start(); err != nil {
		return err
	}
	if err := r.proc.waitHTTP(r.api+"/metrics", http.StatusOK, 30*time.Second); err != nil {
		r.proc.stop()
		return err
	}
	return nil
}

// Stop stops the receiver by its PID; Kill kills it (SIGKILL).
func (r *OTLPReceiver) Stop() { r.proc.stop() }

// Kill kills the receiver by its PID (SIGKILL) and waits for it to exit.
func (r *OTLPReceiver) Kill() { r.proc.kill() }

// Log returns the end of the receiver's log.
func (r *OTLPReceiver) Log() string { return r.proc.logTail() }

// OTLP/JSON, as the Collector's pmetric marshals it (only what the tests
// read).
type (
	OTLPRequest struct {
		ResourceMetrics []OTLPResourceMetrics `json:"resourceMetrics"`
	}
	OTLPResourceMetrics struct {
		Resource struct {
			Attributes []OTLPKeyValue `json:"attributes"`
		} `json:"resource"`
		ScopeMetrics []struct {
			Scope struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"scope"`
			Metrics []OTLPMetric `json:"metrics"`
		} `json:"scopeMetrics"`
	}
	OTLPKeyValue struct {
		Key   string `json:"key"`
		Value struct {
			StringValue *string `json:"stringValue"`
			ArrayValue  *struct {
				Values []struct {
					StringValue *string `json:"stringValue"`
				} `json:"values"`
			} `json:"arrayValue"`
		} `json:"value"`
	}
	OTLPMetric struct {
		Name        string `json:"name"`
		Unit        string `json:"unit"`
		Description string `json:"description"`
		Gauge       *struct {
			DataPoints []OTLPDataPoint `json:"dataPoints"`
		} `json:"gauge"`
		Sum *struct {
			DataPoints             []OTLPDataPoint `json:"dataPoints"`
			AggregationTemporality int             `json:"aggregationTemporality"`
			IsMonotonic            bool            `json:"isMonotonic"`
		} `json:"sum"`
	}
	OTLPDataPoint struct {
		Attributes        []OTLPKeyValue `json:"attributes"`
		StartTimeUnixNano string         `json:"startTimeUnixNano"`
		TimeUnixNano      string         `json:"timeUnixNano"`
		AsDouble          *float64       `json:"asDouble"`
		AsInt             *string        `json:"asInt"`
	}
)

// Received returns what the receiver got since it started, one request
// each.
func (r *OTLPReceiver) Received(ctx context.Context) ([]OTLPRequest, error) {
	var raw []json.RawMessage
	if err := r.get(ctx, "/metrics", &raw); err != nil {
		return nil, err
	}
	out := make([]OTLPRequest, len(raw))
	for i, m := range raw {
		if err := json.Unmarshal(m, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Headers returns the Authorization and X-Test headers of each request.
func (r *OTLPReceiver) Headers(ctx context.Context) ([]map[string][]string, error) {
	var h []map[string][]string
	return h, r.get(ctx, "/headers", &h)
}

// Fail makes the receiver refuse its next n requests with HTTP status
// (429, 503, 400, 401, 403 or 500: those the Collector's receiver answers),
// a Retry-After of retryAfter when above 0 and message as the
// google.rpc.Status message: the Collector's own answer to a consumer
// error (see internal/sinktest/otlpreceiver). Calls queue.
func (r *OTLPReceiver) Fail(ctx context.Context, status, n int, retryAfter time.Duration, message string) error {
	q := url.Values{"status": {strconv.Itoa(status)}, "n": {strconv.Itoa(n)}, "message": {message}}
	if retryAfter > 0 {
		q.Set("retry_after", strconv.Itoa(int(retryAfter/time.Second)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.api+"/fail?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("/fail: %s: %s", resp.Status, b)
	}
	return nil
}

// OTLPCall is one request with data the receiver answered.
type OTLPCall struct {
	UnixNano int64 `json:"unix_nano"`
	Status   int   `json:"status"`
}

// Time is when the request arrived.
func (c OTLPCall) Time() time.Time { return time.Unix(0, c.UnixNano) }

// Calls returns every request with data since the receiver started: its
// arrival and the status answered (200, or a Fail's).
func (r *OTLPReceiver) Calls(ctx context.Context) ([]OTLPCall, error) {
	var c []OTLPCall
	return c, r.get(ctx, "/calls", &c)
}

func (r *OTLPReceiver) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.api+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.Unmarshal(b, v)
}

// Attr returns a string attribute's value ("" and false when absent).
func Attr(kvs []OTLPKeyValue, key string) (string, bool) {
	for _, kv := range kvs {
		if kv.Key == key && kv.Value.StringValue != nil {
			return *kv.Value.StringValue, true
		}
	}
	return "", false
}

// Value returns a data point's value as a float64.
func (p *OTLPDataPoint) Value() float64 {
	if p.AsDouble != nil {
		return *p.AsDouble
	}
	if p.AsInt != nil {
		v, _ := strconv.ParseInt(*p.AsInt, 10, 64)
		return float64(v)
	}
	return 0
}
