// Command otlpreceiver is the OpenTelemetry Collector's own OTLP receiver
// (go.opentelemetry.io/collector/receiver/otlpreceiver, the reference
// implementation of OTLP/HTTP) in a test binary: what it accepts on
// -otlp (POST /v1/metrics, protobuf or JSON, gzip or not) it keeps in
// memory, decoded by the Collector's pdata, and serves back on -api:
//
//	GET /metrics   every request's metrics, as a JSON array of OTLP/JSON
//	               ExportMetricsServiceRequest objects (pmetric's marshaler),
//	               in arrival order
//	GET /headers   the Authorization and X-Test headers of each request
//
// It is a module of its own so that the library's go.mod stays free of the
// Collector. sink/otlp's tests run it (scripts/servers.sh builds it and
// sets METRICSD_TEST_OTLPRECEIVER); it stops on SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

type store struct {
	mu      sync.Mutex
	metrics []json.RawMessage
	headers []map[string][]string
}

func main() {
	otlpAddr := flag.String("otlp", "127.0.0.1:4318", "OTLP/HTTP listen address")
	apiAddr := flag.String("api", "127.0.0.1:4319", "read-back API listen address")
	flag.Parse()
	if err := run(*otlpAddr, *apiAddr); err != nil {
		fmt.Fprintln(os.Stderr, "otlpreceiver:", err)
		os.Exit(1)
	}
}

func run(otlpAddr, apiAddr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	st := &store{}
	var marshaler pmetric.JSONMarshaler
	next, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		b, err := marshaler.MarshalMetrics(md)
		if err != nil {
			return err
		}
		info := client.FromContext(ctx)
		h := map[string][]string{
			"Authorization": info.Metadata.Get("Authorization"),
			"X-Test":        info.Metadata.Get("X-Test"),
		}
		st.mu.Lock()
		st.metrics = append(st.metrics, b)
		st.headers = append(st.headers, h)
		st.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	h := cfg.Protocols.HTTP.GetOrInsertDefault()
	h.ServerConfig.NetAddr.Endpoint = otlpAddr
	h.ServerConfig.IncludeMetadata = true
	rcv, err := f.CreateMetrics(ctx, receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		return err
	}
	if err := rcv.Start(ctx, componenttest.NewNopHost()); err != nil {
		return err
	}
	defer rcv.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		defer st.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st.metrics)
	})
	mux.HandleFunc("GET /headers", func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		defer st.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st.headers)
	})
	api := &http.Server{Addr: apiAddr, Handler: mux}
	errc := make(chan error, 1)
	go func() { errc <- api.ListenAndServe() }()
	select {
	case <-ctx.Done():
		api.Close()
		return nil
	case err := <-errc:
		return err
	}
}
