package prometheus_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/runtime"
	"github.com/metricsd/metricsd/sink"
	sinkprom "github.com/metricsd/metricsd/sink/prometheus"
)

// parsed is a text exposition parsed by Prometheus's own parser, as a
// Gatherer.
func parsed(t *testing.T, b []byte) prometheus.Gatherer {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Prometheus's parser refuses the exposition: %v\n%s", err, b)
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var out []*dto.MetricFamily
		for _, k := range slices.Sorted(maps.Keys(fams)) {
			out = append(out, fams[k])
		}
		return out, nil
	})
}

// TestWriteTextMatchesRegistry: the exposition Handler serves, parsed by
// Prometheus's parser, holds exactly the families, types, help texts,
// series and values that client_golang's pedantic registry gathers from
// the same Collector, for snapshots with every network part, with odd
// label values (quotes, backslashes, a newline, UTF-8) and with the self
// series.
func TestWriteTextMatchesRegistry(t *testing.T) {
	ctx := context.Background()
	full := sinktest.FullSnapshot(5, 3, t0)
	for i := range full.Containers {
		if n := full.Containers[i].Net; n != nil {
			n.Parts = netns.TierAll
		}
	}
	odd := snapshot2(t0)
	odd.Containers[0].Container.Name = `we"ird\name` + "\nline ü"
	odd.Containers[1].Container.Image = `C:\images\x`
	odd.Self = &sink.Self{ScrapeSeconds: 0.25, Containers: 2, Namespaces: 1,
		Errors: []sink.StageErrors{{Stage: "open", Count: 3}, {Stage: "cgroup"}}, SinkDropped: 7, SinkWriteSeconds: 1e-3}
	for name, snap := range map[string]*sink.Snapshot{"full": full, "odd": odd} {
		c := newCollector(t)
		if err := c.Write(ctx, snap); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		want := gather(t, reg)
		var buf bytes.Buffer
		if err := c.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		got := gather(t, parsed(t, buf.Bytes()))
		if len(got) != len(want) {
			t.Errorf("%s: %d families, the registry %d", name, len(got), len(want))
		}
		for fam, series := range want {
			if !maps.Equal(got[fam], series) {
				t.Errorf("%s: %s:\n text     %v\n registry %v", name, fam, got[fam], series)
			}
		}
		// Types and help, family by family.
		mfs, _ := reg.Gather()
		p := expfmt.NewTextParser(model.UTF8Validation)
		text, _ := p.TextToMetricFamilies(bytes.NewReader(buf.Bytes()))
		for _, mf := range mfs {
			tf := text[mf.GetName()]
			if tf == nil || tf.GetType() != mf.GetType() || tf.GetHelp() != mf.GetHelp() {
				t.Errorf("%s: %s: text type %v help %q, registry %v %q", name, mf.GetName(), tf.GetType(), tf.GetHelp(), mf.GetType(), mf.GetHelp())
			}
		}
	}
}

// TestHandlerGzip: a scraper that accepts gzip gets the same exposition
// gzipped, with the text format's content type; one that refuses it (q=0)
// or does not ask gets it plain.
func TestHandlerGzip(t *testing.T) {
	c := newCollector(t)
	if err := c.Write(context.Background(), sinktest.FullSnapshot(3, 2, t0)); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := c.WriteText(&want); err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	for _, c := range []struct {
		ae  string
		zip bool
	}{
		{"gzip", true}, {"deflate, gzip;q=0.9", true}, {"identity, gzip ; q=1", true},
		{"", false}, {"gzip;q=0", false}, {"deflate", false},
	} {
		ae := c.ae
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		h.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("%q: content type %q", ae, ct)
		}
		body := rec.Body.Bytes()
		zipped := rec.Header().Get("Content-Encoding") == "gzip"
		if zipped != c.zip {
			t.Errorf("%q: gzipped %v, want %v", ae, zipped, c.zip)
		}
		if zipped {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%q: %v", ae, err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%q: %v", ae, err)
			}
		}
		if !bytes.Equal(body, want.Bytes()) {
			t.Errorf("%q: body differs from WriteText (%d vs %d bytes)", ae, len(body), want.Len())
		}
	}
}

// TestWriteTextAllocs: a text scrape reuses its buffers and label pairs:
// a few allocations per container (device labels, the self series), not a
// message per series as the registry's Gather makes.
func TestWriteTextAllocs(t *testing.T) {
	c := newCollector(t)
	if err := c.Write(context.Background(), sinktest.FullSnapshot(100, 4, t0)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	c.WriteText(io.Discard)
	text := testing.AllocsPerRun(20, func() { c.WriteText(io.Discard) })
	gathered := testing.AllocsPerRun(5, func() { reg.Gather() })
	// 8 per container; 16 under the race detector, whose sync.Pool drops
	// pooled scrape buffers at random (measured: 413 without it, 636-914
	// with it, since the issue 14 series; 414 and 493-651 before them).
	perContainer := 8.0
	if raceEnabled {
		perContainer = 16
	}
	if text > 100*perContainer || text > gathered/20 {
		t.Errorf("WriteText allocates %v times per scrape of 100 containers, Gather %v: want at most %v per container and a twentieth of Gather's", text, gathered, perContainer)
	}
	t.Logf("allocations per scrape of 100 containers: WriteText %v, Gather %v", text, gathered)
}

// FuzzWriteText: whatever a container names itself, labels itself and
// calls an interface, the page WriteText writes is parsed by Prometheus's
// own text parser (expfmt), the registry path gathers without error, and
// the values read back are the sanitised ones (sink.Sanitizer). An invalid
// UTF-8 interface name made the whole page invalid, and Gather fail.
func FuzzWriteText(f *testing.F) {
	f.Add("web", "core", "eth0", "u\xff\xfe")
	f.Add("we\"ird\\name\n", "a\xffb", "x\\", "t\x01b")
	f.Add("", "\xc3", "\x00", "lo")
	tags := sink.DefaultTags()
	tags.Labels = []sink.LabelTag{{Label: "team"}}
	c, err := sinkprom.New(sinkprom.WithTags(tags))
	if err != nil {
		f.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	f.Fuzz(func(t *testing.T, name, label, if1, if2 string) {
		if if1 == "" || if2 == "" || if1 == if2 || if1 == "lo" || if2 == "lo" {
			return // the kernel's names are not empty, and unique in a namespace
		}
		// One container with its CPU usage and three interfaces: the
		// series the hostile values reach, and few others.
		net := &netns.Stats{Parts: netns.PartDev, Interfaces: []netns.Interface{
			sinktest.Iface("lo", 1, 1, 1, 1), sinktest.Iface(if1, 2, 2, 2, 2), sinktest.Iface(if2, 3, 3, 3, 3)}}
		snap := &sink.Snapshot{Time: t0, Containers: []sink.Sample{{
			Container: runtime.Container{ID: "c1", Name: name, Labels: map[string]string{"team": label}, CgroupPath: "/docker/c1"},
			Cgroup:    cgroup.Stats{CPU: cgroup.CPUStats{Usage: sinktest.K(1e9)}},
			Net:       net, Network: sink.NetOwn,
		}}}
		if err := c.Write(context.Background(), snap); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := c.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatalf("Prometheus's parser refuses the page: %v\n%s", err, b.Bytes())
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("Gather: %v", err)
		}
		z := sink.NewSanitizer(sink.Limits{})
		want := map[string]string{"name": z.Value(name), "container_label_team": z.Value(label)}
		wantIfs := map[string]bool{"lo": true, z.Value(if1): true, z.Value(if2): true}
		for _, m := range fams["container_network_receive_bytes_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if w, ok := want[l.GetName()]; ok && l.GetValue() != w {
					t.Errorf("%s = %q, want %q", l.GetName(), l.GetValue(), w)
				}
				if l.GetName() == "interface" && !wantIfs[l.GetValue()] {
					t.Errorf("interface %q, want one of %q", l.GetValue(), slices.Collect(maps.Keys(wantIfs)))
				}
			}
		}
		if n := len(fams["container_network_receive_bytes_total"].GetMetric()); n != len(wantIfs) {
			t.Errorf("%d interfaces written, want %d (%q)", n, len(wantIfs), slices.Collect(maps.Keys(wantIfs)))
		}
	})
}
