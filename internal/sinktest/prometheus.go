package sinktest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Prometheus is a Prometheus server on 127.0.0.1 scraping one target, its
// TSDB in a directory of its own.
type Prometheus struct {
	// URL is the HTTP API's base, "http://127.0.0.1:PORT".
	URL  string
	proc proc
}

// StartPrometheus starts bin (prometheus) scraping target ("127.0.0.1:PORT",
// path /metrics) every interval, job "metricsd", and waits (at most 60 s)
// until /-/ready answers.
func StartPrometheus(bin, dir, target string, interval time.Duration) (*Prometheus, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
scrape_configs:
  - job_name: metricsd
    static_configs:
      - targets: [%q]
`, interval, interval, target)
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p := &Prometheus{
		URL: fmt.Sprintf("http://127.0.0.1:%d", port),
		proc: proc{name: "prometheus", log: filepath.Join(dir, "prometheus.log"), args: []string{bin,
			"--config.file=" + confPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--log.level=warn",
		}},
	}
	if err := p.proc.start(); err != nil {
		return nil, err
	}
	if err := p.proc.waitHTTP(p.URL+"/-/ready", http.StatusOK, 60*time.Second); err != nil {
		p.proc.stop()
		return nil, err
	}
	return p, nil
}

// Stop stops prometheus by its PID and waits for it to exit.
func (p *Prometheus) Stop() { p.proc.stop() }

// Log returns the end of prometheus's log.
func (p *Prometheus) Log() string { return p.proc.logTail() }

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query through /api/v1/query and returns the
// vector.
func (p *Prometheus) Query(ctx context.Context, q string) ([]Sample, error) {
	return queryVector(ctx, p.URL, url.Values{"query": {q}}, nil)
}
