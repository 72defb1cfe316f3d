package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/points"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
)

type dashboard struct {
	Title, UID string
	Templating struct {
		List []struct {
			Name  string
			Query any
		}
	}
	Panels []struct {
		ID, Type, Title string `json:"-"`
		Targets         []struct {
			RefID string
			Expr  string // PromQL
			Query string // InfluxQL
		}
	}
}

func load(t *testing.T, name string) dashboard {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: not valid JSON: %v", name, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: a dashboard needs a title, a uid and panels", name)
	}
	for i, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %d has no query", name, i)
		}
	}
	return d
}

// grafanaVars replaces the dashboards' variables with values a server
// accepts.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m", "$__range", "1h", "$__interval", "10s",
	"$timeFilter", "time > now() - 1h", "$container", ".*",
)

var snap = sinktest.FullSnapshot(2, 2, time.Date(2026, 11, 28, 7, 0, 0, 0, time.UTC))

func TestPrometheusDashboard(t *testing.T) {
	d := load(t, "prometheus.json")
	// The series the Prometheus sink exposes.
	c, err := sinkprom.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	name := regexp.MustCompile(`container_[a-z0-9_]+`)
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			exprs = append(exprs, q["query"].(string))
		}
	}
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			if !have[m] {
				t.Errorf("query %q uses %s, which the Prometheus sink does not write", e, m)
			}
		}
	}
	// promtool parses every expression, as recording rules.
	promtool, why := sinktest.Binary("METRICSD_TEST_PROMTOOL")
	if promtool == "" {
		t.Skip("PromQL syntax not checked: " + why)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	for i, p := range d.Panels {
		for j, tg := range p.Targets {
			js, _ := json.Marshal(grafanaVars.Replace(tg.Expr))
			rules.WriteString("  - record: dashboard:panel" + itoa(i) + "_" + itoa(j) + "\n    expr: " + string(js) + "\n")
		}
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	os.WriteFile(f, []byte(rules.String()), 0o644)
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// fields records the measurements and fields the points schema writes.
type fields struct {
	m   map[string]map[string]bool
	cur string
}

func (f *fields) Container([]sink.Tag)      {}
func (f *fields) End(time.Time)             {}
func (f *fields) Int(k string, _ int64)     { f.m[f.cur][k] = true }
func (f *fields) Float(k string, _ float64) { f.m[f.cur][k] = true }
func (f *fields) Begin(m string, _ sink.Tag) {
	f.cur = m
	if f.m[m] == nil {
		f.m[m] = map[string]bool{}
	}
}

func TestInfluxDBDashboard(t *testing.T) {
	d := load(t, "influxdb.json")
	rec := &fields{m: map[string]map[string]bool{}}
	points.NewWalker(sink.MustTagger(sink.DefaultTags())).Walk(snap, rec)
	have := rec.m
	from := regexp.MustCompile(`FROM "(container_[a-z_]+)"`)
	fn := regexp.MustCompile(`(?:mean|sum|last|max)\("([a-z0-9_]+)"\)`)
	var queries []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, tg.Query)
			ms := from.FindAllStringSubmatch(tg.Query, -1)
			if len(ms) == 0 {
				t.Errorf("query %q reads no container measurement", tg.Query)
				continue
			}
			m := ms[len(ms)-1][1] // the innermost FROM
			if have[m] == nil {
				t.Errorf("query %q reads %s, which the InfluxDB sink does not write", tg.Query, m)
				continue
			}
			for _, f := range fn.FindAllStringSubmatch(tg.Query, -1) {
				if !have[m][f[1]] && !strings.Contains(tg.Query, `AS "`+f[1]+`"`) {
					t.Errorf("query %q reads field %s, which %s does not have", tg.Query, f[1], m)
				}
			}
		}
	}
	// A real InfluxDB parses and runs every query.
	bin, why := sinktest.Binary("METRICSD_TEST_INFLUXD")
	if bin == "" {
		t.Skip("InfluxQL not run: " + why)
	}
	srv, err := sinktest.StartInfluxd(bin, t.TempDir(), sinktest.InfluxdConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx := context.Background()
	if err := srv.Exec(ctx, "CREATE DATABASE dash"); err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		if _, err := srv.Query(ctx, "dash", grafanaVars.Replace(q)); err != nil {
			t.Errorf("InfluxDB refused %q: %v", q, err)
		}
	}
}

func itoa(i int) string { return string(rune('a' + i)) }
