package metricsd_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/internal/cgtest"
	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/influx"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
	"github.com/metricsd/metricsd/sink/stdout"
)

// hostileLinks are interface names a container may give its own
// interfaces (NET_ADMIN in its namespace), made here as veth pairs in a
// namespace the test made: invalid UTF-8 twice (u\xff\xfe and u\xfe are
// both u\uFFFD once sanitised), a trailing backslash (line protocol) and a
// control character.
var hostileLinks = [][2]string{{"u\xff\xfe", "p1"}, {"u\xfe", "p2"}, {`x\`, "t\x01b"}}

// TestHostileInterfaceNames: a container whose network namespace holds
// interfaces named with invalid UTF-8, a trailing backslash and a control
// character, beside a plain neighbour, written to every sink:
//
//   - Prometheus: the page is valid (a real Prometheus scrapes it, up == 1,
//     and promtool checks it), the registry path gathers without error
//     (promhttp answers 200), the names are u\uFFFD and t\uFFFDb, and u\xfe,
//     which would be a duplicate series, is left out;
//   - line protocol: every point written, x\ as x\uFFFD (the neighbour's
//     and the container's points were left out, and -once failed);
//   - InfluxDB: the points read back under the sanitised names;
//   - the self-metrics count what each sink changed.
func TestHostileInterfaceNames(t *testing.T) {
	cgtest.NeedRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	// Every server of the test is required (skipped without, failed
	// under CI=true but where the run has no servers by design, as in
	// the v2 lane's guests): promtool and InfluxDB were once left out
	// without a word when their variable was unset, and the test passed
	// unseen.
	var bins [3]string
	for i, env := range []string{"METRICSD_TEST_PROMETHEUS", "METRICSD_TEST_PROMTOOL", "METRICSD_TEST_INFLUXD"} {
		var why string
		if bins[i], why = sinktest.Binary(env); bins[i] == "" {
			rttest.ServerUnavailable(t, "%s", why)
		}
	}
	promBin, promtool, influxdBin := bins[0], bins[1], bins[2]
	ns := netnsAdd(t)
	for _, l := range hostileLinks {
		ip(t, "-n", ns, "link", "add", l[0], "type", "veth", "peer", "name", l[1])
	}
	var cs []runtime.Container
	for _, name := range []string{"hostile", "neighbour"} {
		g := cgtest.New(t, "cpu", "cpuacct", "memory")
		w := cgtest.Start(t, g, cgtest.Spec{})
		c := runtime.Container{ID: "id-" + name, Name: name, Runtime: "test", PID: w.Pid, CgroupPath: g.Path, State: runtime.StateRunning}
		if name == "hostile" {
			c.NetNS = runtime.NetNS{Path: "/run/netns/" + ns}
		}
		cs = append(cs, c)
	}
	d := &listed{}
	d.set(cs...)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prom, err := sinkprom.New()
	if err != nil {
		t.Fatal(err)
	}
	var lp bytes.Buffer
	lineSink, err := stdout.New(&lp)
	if err != nil {
		t.Fatal(err)
	}
	influxd, err := sinktest.StartInfluxd(influxdBin, t.TempDir(), sinktest.InfluxdConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer influxd.Stop()
	if err := influxd.Exec(ctx, "CREATE DATABASE hostile"); err != nil {
		t.Fatal(err)
	}
	ifx, err := influx.New(influxd.URL, influx.WithV1("hostile", ""))
	if err != nil {
		t.Fatal(err)
	}
	sinks := []sink.Sink{prom, lineSink, ifx}
	col, err := metricsd.New(ctx, metricsd.WithDiscoverer(d), metricsd.WithSinks(sinks...))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	var snap *sink.Snapshot
	for range 2 { // the second snapshot carries what the sinks counted of the first
		if snap, err = col.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		lp.Reset()
		for _, s := range sinks {
			if err := s.Write(ctx, snap); err != nil {
				t.Fatalf("%T.Write = %v", s, err)
			}
		}
	}
	if len(snap.Containers) != 2 {
		t.Fatalf("%d containers in the snapshot", len(snap.Containers))
	}

	// Line protocol: every line decodes; the container's interfaces are
	// there under their sanitised names.
	ifaces := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(lp.String(), "\n"), "\n") {
		if i := strings.Index(l, ",interface="); i >= 0 && strings.HasPrefix(l, "container_net,") {
			v := l[i+len(",interface="):]
			ifaces[v[:strings.IndexAny(v, ", ")]] = true
		}
	}
	for _, want := range []string{"lo", "u\uFFFD", "p1", "p2", "x\uFFFD", "t\uFFFDb"} {
		if !ifaces[want] {
			t.Errorf("line protocol: interface %q missing; have %v", want, ifaces)
		}
	}
	if len(ifaces) != 6 {
		t.Errorf("line protocol: interfaces %v, want 6 (u\\xfe left out)", ifaces)
	}
	if !strings.Contains(lp.String(), "name=neighbour") {
		t.Error("line protocol: the neighbour's points are missing")
	}

	// Self-metrics: per snapshot written, Prometheus changed 3 names
	// (u\xff\xfe, u\xfe, t\x01b) and left one out; line protocol changed
	// x\ too (stdout and InfluxDB each).
	perLP := sink.Sanitized{Replaced: 4, Interfaces: 1}
	want := sink.Sanitized{Replaced: 3, Interfaces: 1}.Add(perLP).Add(perLP)
	if snap.Self.Sanitized != want {
		t.Errorf("Self.Sanitized = %+v, want %+v (one snapshot written to each sink)", snap.Self.Sanitized, want)
	}

	// Prometheus: the page the Handler serves, the registry path, promtool.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prom)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("registry Gather = %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", prom.Handler())
	mux.Handle("/registry", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	defer hs.Close()
	base := "http://" + l.Addr().String()
	page := map[string]string{}
	for _, path := range []string{"/metrics", "/registry"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%.500s", path, resp.Status, b.String())
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatalf("GET %s: not a valid page: %v", path, err)
		}
		n := 0
		for _, m := range fams["container_network_receive_bytes_total"].GetMetric() {
			for _, lb := range m.GetLabel() {
				if lb.GetName() == "interface" && (lb.GetValue() == "u\uFFFD" || lb.GetValue() == "t\uFFFDb" || lb.GetValue() == `x\`) {
					n++
				}
			}
		}
		if n != 3 {
			t.Errorf("GET %s: %d of the interfaces u\\uFFFD, t\\uFFFDb, x\\ found", path, n)
		}
		page[path] = b.String()
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(page["/metrics"])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	p, err := sinktest.StartPrometheus(promBin, t.TempDir(), l.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	var r []sinktest.Sample
	if !sinktest.Poll(60*time.Second, func() bool {
		r, err = p.Query(ctx, `up`)
		return err == nil && len(r) == 1 && r[0].Value == 1
	}) {
		t.Fatalf("up = %v %v: Prometheus marked the target down\n%s", r, err, p.Log())
	}
	// (PromQL's lexer refuses U+FFFD in a string: read the labels back.)
	r, err = p.Query(ctx, `container_network_receive_bytes_total{name="hostile"}`)
	got := map[string]bool{}
	for _, s := range r {
		got[s.Metric["interface"]] = true
	}
	if err != nil || len(got) != 6 || !got["u\uFFFD"] || !got["t\uFFFDb"] || !got[`x\`] {
		t.Errorf("Prometheus has the interfaces %v (%v), want lo, p1, p2, u\uFFFD, t\uFFFDb, x\\", got, err)
	}
	for _, q := range []string{
		`container_cpu_usage_seconds_total{name="neighbour",cpu="total"}`,
		`metricsd_sink_values_changed_total{change="replaced"}`,
	} {
		if r, err := p.Query(ctx, q); err != nil || len(r) != 1 {
			t.Errorf("%s = %v %v, want one series", q, r, err)
		}
	}

	// InfluxDB: read back under the sanitised names.
	if err := ifx.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"u\uFFFD", "x\uFFFD", "t\uFFFDb", "p1"} {
		ss, err := influxd.Query(ctx, "hostile", fmt.Sprintf(`SELECT count("rx_bytes") FROM "container_net" WHERE "name" = 'hostile' AND "interface" = '%s'`, strings.ReplaceAll(name, `\`, `\\`)))
		if err != nil || len(ss) != 1 || fmt.Sprint(ss[0].Values[0][1]) != "2" {
			t.Errorf("InfluxDB: interface %q: %v %v, want 2 points", name, ss, err)
		}
	}
	if st := ifx.Stats(); st.Sent != st.Written || st.Rejected != 0 || st.Skipped != 0 {
		t.Errorf("InfluxDB stats %+v", st)
	}
}
