package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"strings"

	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/otlp"
	"github.com/metricsd/metricsd/sink/remotewrite"
)

// secret is a secret flag: its value from the flag itself, from a file
// (-NAME-file, read at start, trailing newline trimmed), or from an
// environment variable. A command line shows in ps and /proc/<pid>/cmdline
// to every user of the host: the file (a Kubernetes Secret or a systemd
// credential) or the environment is the way to pass it.
type secret struct {
	name, env  string
	flag, file string
	value      string
}

func addSecret(fl *flag.FlagSet, name, env, usage string) *secret {
	s := &secret{name: name, env: env}
	fl.StringVar(&s.flag, name, "", usage+"; shows in ps: prefer -"+name+"-file or $"+env)
	fl.StringVar(&s.file, name+"-file", "", "file holding -"+name+" (trailing newline trimmed)")
	return s
}

// resolve sets s.value: the flag, else the file, else the environment. A
// flag and a file both given is an error.
func (s *secret) resolve() error {
	switch {
	case s.flag != "" && s.file != "":
		return fmt.Errorf("-%s and -%s-file: give one", s.name, s.name)
	case s.flag != "":
		s.value = s.flag
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return fmt.Errorf("-%s-file: %w", s.name, err)
		}
		s.value = strings.TrimRight(string(b), "\r\n")
	default:
		s.value = os.Getenv(s.env)
	}
	return nil
}

// pushFlags are the flags of -sink remotewrite and -sink otlp, and the
// secrets of every sink.
type pushFlags struct {
	influxPassword, influxToken *secret

	rwURL, rwUser, rwLabels, rwHeaders string
	rwBatch, rwBuffer                  int
	rwPassword, rwToken                *secret

	otlpURL, otlpAttrs string
	otlpBuffer         int
	otlpHeaders        *secret

	limits sink.Limits
}

func addPushFlags(fl *flag.FlagSet) *pushFlags {
	p := &pushFlags{}
	fl.StringVar(&p.rwURL, "remotewrite-url", "", "remote_write receiver's write URL (Prometheus, VictoriaMetrics: http://HOST:PORT/api/v1/write; Mimir, Cortex: .../api/v1/push)")
	fl.StringVar(&p.rwUser, "remotewrite-user", "", "remote_write basic auth user (with -remotewrite-password)")
	p.rwPassword = addSecret(fl, "remotewrite-password", "METRICSD_REMOTEWRITE_PASSWORD", "remote_write basic auth password")
	p.rwToken = addSecret(fl, "remotewrite-bearer-token", "METRICSD_REMOTEWRITE_BEARER_TOKEN", "remote_write bearer token")
	fl.StringVar(&p.rwLabels, "remotewrite-labels", "job=metricsd,instance=$HOSTNAME", "external labels on every remote_write series, k=v,k=v ($HOSTNAME is this host's name)")
	fl.StringVar(&p.rwHeaders, "remotewrite-headers", "", "extra remote_write HTTP headers, k=v,k=v (X-Scope-OrgID=tenant for Mimir)")
	fl.IntVar(&p.rwBatch, "remotewrite-batch", remotewrite.DefaultBatchSize, "most samples per remote_write request (a series' samples of one flush go in one TimeSeries)")
	fl.IntVar(&p.rwBuffer, "remotewrite-buffer", remotewrite.DefaultBufferSnapshots, "snapshots buffered while the receiver is unreachable (however many containers); the oldest past them are dropped and counted")
	fl.StringVar(&p.otlpURL, "otlp-url", "http://127.0.0.1:4318/v1/metrics", "OTLP/HTTP metrics endpoint")
	fl.IntVar(&p.otlpBuffer, "otlp-buffer", otlp.DefaultBufferSnapshots, "snapshots buffered while the OTLP endpoint is unreachable; the oldest past them are dropped and counted")
	p.otlpHeaders = addSecret(fl, "otlp-headers", "METRICSD_OTLP_HEADERS", "OTLP HTTP headers, k=v,k=v (values URL-encoded, as OTEL_EXPORTER_OTLP_HEADERS, which is read too)")
	fl.StringVar(&p.otlpAttrs, "otlp-resource-attributes", "", "resource attributes on every OTLP resource, k=v,k=v (added to $OTEL_RESOURCE_ATTRIBUTES; host.name is set)")
	return p
}

// addInfluxSecrets replaces the InfluxDB password and token flags with
// secrets (flag, -file or environment).
func (p *pushFlags) addInfluxSecrets(fl *flag.FlagSet) {
	p.influxPassword = addSecret(fl, "influx-password", "METRICSD_INFLUX_PASSWORD", "InfluxDB 1.x password")
	p.influxToken = addSecret(fl, "influx-token", "METRICSD_INFLUX_TOKEN", "InfluxDB 2.x token")
}

// resolve reads every secret and checks the numbers.
func (p *pushFlags) resolve() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"-remotewrite-buffer", p.rwBuffer}, {"-otlp-buffer", p.otlpBuffer}, {"-remotewrite-batch", p.rwBatch}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", f.name, f.v))
		}
	}
	for _, s := range []*secret{p.influxPassword, p.influxToken, p.rwPassword, p.rwToken, p.otlpHeaders} {
		if s != nil {
			errs = append(errs, s.resolve())
		}
	}
	return errors.Join(errs...)
}

// keyValues parses k=v,k=v; with unescape, values are URL-encoded (the
// OTEL_EXPORTER_OTLP_HEADERS format). $HOSTNAME in a value is the host's
// name.
func keyValues(s string, unescape bool, into map[string]string) error {
	for _, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q: want key=value", kv)
		}
		v = strings.TrimSpace(v)
		if unescape {
			u, err := url.PathUnescape(v)
			if err != nil {
				return fmt.Errorf("%q: %v", kv, err)
			}
			v = u
		}
		if strings.Contains(v, "$HOSTNAME") {
			h, err := os.Hostname()
			if err != nil {
				return err
			}
			v = strings.ReplaceAll(v, "$HOSTNAME", h)
		}
		into[k] = v
	}
	return nil
}

func (p *pushFlags) openRemoteWrite(tags sink.Tags, log *slog.Logger) (sink.Sink, error) {
	if p.rwURL == "" {
		return nil, errors.New("needs -remotewrite-url")
	}
	labels, headers := map[string]string{}, map[string]string{}
	if err := keyValues(p.rwLabels, false, labels); err != nil {
		return nil, fmt.Errorf("-remotewrite-labels: %v", err)
	}
	if err := keyValues(p.rwHeaders, false, headers); err != nil {
		return nil, fmt.Errorf("-remotewrite-headers: %v", err)
	}
	opts := []remotewrite.Option{
		remotewrite.WithTags(tags), remotewrite.WithLogger(log), remotewrite.WithExternalLabels(labels), remotewrite.WithLimits(p.limits),
		remotewrite.WithHeaders(headers), remotewrite.WithBatchSize(p.rwBatch), remotewrite.WithBufferSnapshots(p.rwBuffer),
	}
	if p.rwUser != "" || p.rwPassword.value != "" {
		opts = append(opts, remotewrite.WithBasicAuth(p.rwUser, p.rwPassword.value))
	}
	if p.rwToken.value != "" {
		opts = append(opts, remotewrite.WithBearerToken(p.rwToken.value))
	}
	return remotewrite.New(p.rwURL, opts...)
}

func (p *pushFlags) openOTLP(tags sink.Tags, version string, log *slog.Logger) (sink.Sink, error) {
	headers, attrs := map[string]string{}, map[string]string{}
	for _, env := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"} {
		if err := keyValues(os.Getenv(env), true, headers); err != nil {
			return nil, fmt.Errorf("$%s: %v", env, err)
		}
	}
	if err := keyValues(p.otlpHeaders.value, true, headers); err != nil {
		return nil, fmt.Errorf("-otlp-headers: %v", err)
	}
	if h, err := os.Hostname(); err == nil {
		attrs["host.name"] = h
	}
	if err := keyValues(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), true, attrs); err != nil {
		return nil, fmt.Errorf("$OTEL_RESOURCE_ATTRIBUTES: %v", err)
	}
	if err := keyValues(p.otlpAttrs, false, attrs); err != nil {
		return nil, fmt.Errorf("-otlp-resource-attributes: %v", err)
	}
	return otlp.New(p.otlpURL, otlp.WithTags(tags), otlp.WithLogger(log), otlp.WithHeaders(headers),
		otlp.WithResourceAttributes(attrs), otlp.WithScopeVersion(version), otlp.WithBufferSnapshots(p.otlpBuffer),
		otlp.WithLimits(p.limits))
}

// moduleVersion is the module version from the build information ("" for
// a development build), the OTLP instrumentation scope's version.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}
