package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
	"github.com/metricsd/metricsd/sink/points"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
)

type dashboard struct {
	Title, UID string
	Templating struct {
		List []struct {
			Name, Type string
			Query      any
			Current    struct{ Value any }
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
	"$timeFilter", "time > now() - 1h", "$container", ".*", "$host", ".*",
	"$exclude_interface", "lo",
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
		rttest.Unavailable(t, "%s", "PromQL syntax not checked: "+why)
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
	points.NewWalker(sink.MustTagger(sink.DefaultTags()), nil).Walk(snap, rec)
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
		rttest.Unavailable(t, "%s", "InfluxQL not run: "+why)
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

	// The network panels on real data: two hosts (the daemon's host tag)
	// with the same two containers, two snapshots 10 s apart in which lo
	// moved 100,000 bytes each way and eth0 1,000 (host a) or 2,000 (host
	// b). Each panel gives one series per host and name, at eth0's rate.
	t0 := time.Now().Truncate(10 * time.Second).Add(-time.Minute)
	for i, host := range []string{"a", "b"} {
		tags := sink.DefaultTags()
		tags.Global = []sink.Tag{{Key: "host", Value: host}}
		s, err := influx.New(srv.URL, influx.WithV1("dash", ""), influx.WithTags(tags), influx.WithFlushInterval(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for step := range 2 {
			snap := sinktest.FullSnapshot(2, 2, t0.Add(time.Duration(step)*10*time.Second))
			for _, c := range snap.Containers {
				for j := range c.Net.Interfaces {
					bump := uint64(100_000) // lo
					if c.Net.Interfaces[j].Name != "lo" {
						bump = uint64(1000 * (i + 1))
					}
					c.Net.Interfaces[j].RxBytes.V += uint64(step) * bump
					c.Net.Interfaces[j].TxBytes.V += uint64(step) * bump
				}
			}
			if err := s.Write(ctx, snap); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Every panel has data for every host and container. (The panels that
	// aggregate a subquery had no time condition on the outer query, and
	// InfluxDB 1.x answered them with nothing.)
	for _, q := range queries {
		ss, err := srv.Query(ctx, "dash", grafanaVars.Replace(q))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, se := range ss {
			seen[se.Tags["host"]+"/"+se.Tags["name"]] = true
		}
		if len(seen) != 4 {
			t.Errorf("%q: data for %v, want hosts a and b, containers c-0 and c-1", q, seen)
		}
	}
	nets := 0
	for _, q := range queries {
		if !strings.Contains(q, `"container_net"`) {
			continue
		}
		nets++
		ss, err := srv.Query(ctx, "dash", grafanaVars.Replace(q))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, se := range ss {
			if len(se.Values) != 1 {
				t.Errorf("%q: series %v has %d values, want 1 (the second snapshot's rate)", q, se.Tags, len(se.Values))
				continue
			}
			got[se.Tags["host"]+"/"+se.Tags["name"]] = num(t, se.Values[0][1])
		}
		want := map[string]float64{"a/c-0": 100, "a/c-1": 100, "b/c-0": 200, "b/c-1": 200}
		if len(got) != len(want) {
			t.Errorf("%q: series %v, want %v", q, got, want)
		}
		for k, w := range want {
			if math.Abs(got[k]-w) > 1e-9 {
				t.Errorf("%q: %s = %v B/s, want %v (eth0 alone, lo left out)", q, k, got[k], w)
			}
		}
	}
	if nets == 0 {
		t.Error("no network panel")
	}
}

// num converts a value InfluxDB returned (a json.Number) to a float.
func num(t *testing.T, v any) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(fmt.Sprint(v), &f); err != nil {
		t.Fatalf("not a number: %v", v)
	}
	return f
}

func itoa(i int) string { return string(rune('a' + i)) }

// variable returns a dashboard variable's query (a PromQL or InfluxQL
// string) and its default value.
func (d *dashboard) variable(t *testing.T, name string) (query string, def any) {
	t.Helper()
	for _, v := range d.Templating.List {
		if v.Name == name {
			switch q := v.Query.(type) {
			case string:
				return q, v.Current.Value
			case map[string]any:
				s, _ := q["query"].(string)
				return s, v.Current.Value
			}
		}
	}
	t.Fatalf("%s: no variable %s", d.Title, name)
	return "", nil
}

// targets returns every panel query (PromQL or InfluxQL) of d.
func (d *dashboard) targets() []string {
	var qs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, tg.Expr+tg.Query)
		}
	}
	return qs
}

// TestHostAndInterfaces checks both dashboards by their text: a host
// variable (the daemon's host tag) that the container variable depends
// on; every query filtered by host and container and, where it groups,
// grouped by host and name; every network query leaving out the
// interfaces of the exclude_interface variable, whose default is lo (a
// container's loopback traffic never leaves it, and cAdvisor users
// filter it out by hand). The queries' results are checked against real
// data in TestPrometheusNetworkPanels and TestInfluxDBDashboard.
func TestHostAndInterfaces(t *testing.T) {
	for _, tc := range []struct {
		file                       string
		hostVar, containerVar      string
		hostSel, nameSel, ifaceSel string
		groupRE, netRE             *regexp.Regexp
	}{
		{
			"prometheus.json",
			"label_values(container_last_seen, host)", `label_values(container_last_seen{host=~"$host"}, name)`,
			`host=~"$host"`, `name=~"$container"`, `interface!~"$exclude_interface"`,
			regexp.MustCompile(`\bby \(([^)]*)\)`), regexp.MustCompile(`container_network_`),
		},
		{
			"influxdb.json",
			`SHOW TAG VALUES FROM "container_cpu" WITH KEY = "host"`, `SHOW TAG VALUES FROM "container_cpu" WITH KEY = "name" WHERE "host" =~ /^$host$/`,
			`"host" =~ /^$host$/`, `"name" =~ /^$container$/`, `"interface" !~ /^$exclude_interface$/`,
			regexp.MustCompile(`GROUP BY time\(\$__interval\), ((?:"[a-z]+"(?:, )?)+)`), regexp.MustCompile(`"container_net"`),
		},
	} {
		d := load(t, tc.file)
		if q, _ := d.variable(t, "host"); q != tc.hostVar {
			t.Errorf("%s: host variable query %q, want %q", tc.file, q, tc.hostVar)
		}
		if q, _ := d.variable(t, "container"); q != tc.containerVar {
			t.Errorf("%s: container variable query %q, want %q", tc.file, q, tc.containerVar)
		}
		if _, def := d.variable(t, "exclude_interface"); def != "lo" {
			t.Errorf("%s: exclude_interface defaults to %v, want lo", tc.file, def)
		}
		nets := 0
		for _, q := range d.targets() {
			if strings.Count(q, tc.hostSel) == 0 || strings.Count(q, tc.hostSel) != strings.Count(q, tc.nameSel) {
				t.Errorf("%s: %q: every container selection must filter by host (%s) and container (%s)", tc.file, q, tc.hostSel, tc.nameSel)
			}
			for _, g := range tc.groupRE.FindAllStringSubmatch(q, -1) {
				if !strings.Contains(g[1], "host") || !strings.Contains(g[1], "name") {
					t.Errorf("%s: %q groups by %s, want host and name", tc.file, q, g[1])
				}
			}
			if tc.netRE.MatchString(q) {
				nets++
				if !strings.Contains(q, tc.ifaceSel) {
					t.Errorf("%s: network query %q does not leave out $exclude_interface (%s)", tc.file, q, tc.ifaceSel)
				}
			}
		}
		if nets == 0 {
			t.Errorf("%s: no network panel", tc.file)
		}
	}
}

// TestPrometheusNetworkPanels evaluates the network panels' expressions
// with promtool test rules (Prometheus's own engine) on two hosts' series
// of one container name, each with lo and eth0: the result is one series
// per host and name, with eth0's rate alone.
func TestPrometheusNetworkPanels(t *testing.T) {
	promtool, why := sinktest.Binary("METRICSD_TEST_PROMTOOL")
	if promtool == "" {
		t.Skip("promtool not available: " + why)
	}
	d := load(t, "prometheus.json")
	var tests strings.Builder
	tests.WriteString("rule_files: []\nevaluation_interval: 1m\ntests:\n- interval: 10s\n  input_series:\n")
	// Per 10 s: lo moves 10,000 bytes, eth0 1,000 on host a, 2,000 on b.
	for _, m := range []string{"receive", "transmit"} {
		for _, s := range []struct{ host, iface, values string }{
			{"a", "lo", "0+10000x60"}, {"a", "eth0", "0+1000x60"},
			{"b", "lo", "0+10000x60"}, {"b", "eth0", "0+2000x60"},
		} {
			fmt.Fprintf(&tests, "  - series: 'container_network_%s_bytes_total{host=%q,name=\"web\",interface=%q,id=\"/x\"}'\n    values: '%s'\n", m, s.host, s.iface, s.values)
		}
	}
	tests.WriteString("  promql_expr_test:\n")
	n := 0
	for _, q := range d.targets() {
		if !strings.Contains(q, "container_network_") {
			continue
		}
		n++
		js, _ := json.Marshal(grafanaVars.Replace(q))
		fmt.Fprintf(&tests, "  - expr: %s\n    eval_time: 5m\n    exp_samples:\n", js)
		tests.WriteString("    - labels: '{host=\"a\",name=\"web\"}'\n      value: 100\n")
		tests.WriteString("    - labels: '{host=\"b\",name=\"web\"}'\n      value: 200\n")
	}
	if n == 0 {
		t.Fatal("no network panel")
	}
	f := filepath.Join(t.TempDir(), "tests.yml")
	if err := os.WriteFile(f, []byte(tests.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s\n%s", err, out, tests.String())
	}
}
