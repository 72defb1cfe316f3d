package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/prometheus"
	"github.com/metricsd/metricsd/sink/stdout"
)

func globalTags() sink.Tags {
	t := sink.DefaultTags()
	t.Global = []sink.Tag{{Key: "host", Value: "node-7"}, {Key: "env", Value: "ci"}}
	return t
}

// TestGlobalTagsEverywhere: the global tags (the daemon's host tag and
// -tag) are on every point and series of the stdout sink (line protocol,
// the InfluxDB sink's encoder, and JSON) and the Prometheus sink, the
// collector's own included: without them hosts sharing an InfluxDB
// overwrite each other's self points. (sink/remotewrite checks its own.)
func TestGlobalTagsEverywhere(t *testing.T) {
	ctx := context.Background()
	snap := sinktest.MixedSnapshot(time.Unix(1700000000, 0))
	for _, f := range []stdout.Format{stdout.LineProtocol, stdout.JSONLines} {
		var out bytes.Buffer
		s, err := stdout.New(&out, stdout.WithFormat(f), stdout.WithTags(globalTags()))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, snap); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		self := 0
		for _, l := range lines {
			var host, env, name string
			if f == stdout.LineProtocol {
				head, _, _ := strings.Cut(l, " ")
				name, _, _ = strings.Cut(head, ",")
				for _, kv := range strings.Split(head, ",")[1:] {
					k, v, _ := strings.Cut(kv, "=")
					switch k {
					case "host":
						host = v
					case "env":
						env = v
					}
				}
			} else {
				var p struct {
					Name string            `json:"name"`
					Tags map[string]string `json:"tags"`
				}
				if err := json.Unmarshal([]byte(l), &p); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
				name, host, env = p.Name, p.Tags["host"], p.Tags["env"]
			}
			if host != "node-7" || env != "ci" {
				t.Errorf("format %v: point without the global tags: %s", f, l)
			}
			if name == "metricsd" {
				self++
			}
		}
		if self != 1 {
			t.Errorf("format %v: %d self points", f, self)
		}
	}

	p, err := prometheus.New(prometheus.WithTags(globalTags()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(ctx, snap); err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := p.WriteText(&page); err != nil {
		t.Fatal(err)
	}
	self := 0
	for _, l := range strings.Split(strings.TrimSpace(page.String()), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.Contains(l, `host="node-7"`) || !strings.Contains(l, `env="ci"`) {
			t.Errorf("prometheus: series without the global labels: %s", l)
		}
		if strings.HasPrefix(l, "metricsd_") {
			self++
		}
	}
	if self == 0 {
		t.Error("prometheus: no self series")
	}
}

// TestGlobalTagsChecked: a global tag with an invalid, reserved or
// duplicated key, or an empty value, is an error.
func TestGlobalTagsChecked(t *testing.T) {
	for _, g := range [][]sink.Tag{
		{{Key: "bad-key", Value: "x"}},
		{{Key: "interface", Value: "x"}},
		{{Key: "name", Value: "x"}},
		{{Key: "host", Value: "a"}, {Key: "host", Value: "b"}},
		{{Key: "host", Value: ""}},
	} {
		tags := sink.DefaultTags()
		tags.Global = g
		if _, err := sink.NewTagger(tags); err == nil {
			t.Errorf("global tags %v: no error", g)
		}
	}
}
