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
//	POST /fail     ?status=S&n=N[&retry_after=SECONDS][&message=TEXT]:
//	               the next N requests with data are refused with HTTP
//	               status S (429, 503, 400, 401, 403 or 500), queued after
//	               earlier /fail calls. The refusal is the Collector's own:
//	               the consumer returns the gRPC status the receiver maps
//	               to S (ResourceExhausted, Unavailable, InvalidArgument,
//	               Unauthenticated, PermissionDenied, Internal), with a
//	               RetryInfo detail for retry_after, and the receiver
//	               writes the status code, the Retry-After header and the
//	               google.rpc.Status body. Refused data is not kept.
//	GET /calls     every request with data: its arrival (Unix ns) and the
//	               status answered
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
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

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
	fails   []failure
	calls   []call
}

// failure is one scripted refusal (POST /fail).
type failure struct {
	status     int
	retryAfter time.Duration
	message    string
}

type call struct {
	UnixNano int64 `json:"unix_nano"`
	Status   int   `json:"status"`
}

// codeFor is the gRPC code the Collector's OTLP/HTTP receiver answers with
// HTTP status s (its internal/errors.GetHTTPStatusCodeFromStatus).
var codeFor = map[int]codes.Code{
	http.StatusTooManyRequests:     codes.ResourceExhausted,
	http.StatusServiceUnavailable:  codes.Unavailable,
	http.StatusBadRequest:          codes.InvalidArgument,
	http.StatusUnauthorized:        codes.Unauthenticated,
	http.StatusForbidden:           codes.PermissionDenied,
	http.StatusInternalServerError: codes.Internal,
}

// refusal returns the error the consumer returns for f.
func (f failure) refusal() error {
	st := status.New(codeFor[f.status], f.message)
	if f.retryAfter > 0 {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryAfter)}); err == nil {
			st = d
		}
	}
	return st.Err()
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
		st.mu.Lock()
		if len(st.fails) > 0 {
			f := st.fails[0]
			st.fails = st.fails[1:]
			st.calls = append(st.calls, call{UnixNano: time.Now().UnixNano(), Status: f.status})
			st.mu.Unlock()
			return f.refusal()
		}
		st.calls = append(st.calls, call{UnixNano: time.Now().UnixNano(), Status: http.StatusOK})
		st.mu.Unlock()
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
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := failure{message: q.Get("message")}
		var err error
		if f.status, err = strconv.Atoi(q.Get("status")); err != nil || codeFor[f.status] == codes.OK {
			http.Error(w, "status: want one of 429, 503, 400, 401, 403, 500 (the Collector's receiver answers no other)", http.StatusBadRequest)
			return
		}
		n, err := strconv.Atoi(q.Get("n"))
		if err != nil || n < 1 {
			http.Error(w, "n: want a positive count", http.StatusBadRequest)
			return
		}
		if ra := q.Get("retry_after"); ra != "" {
			sec, err := strconv.Atoi(ra)
			if err != nil || sec < 0 {
				http.Error(w, "retry_after: want seconds", http.StatusBadRequest)
				return
			}
			f.retryAfter = time.Duration(sec) * time.Second
		}
		st.mu.Lock()
		for range n {
			st.fails = append(st.fails, f)
		}
		st.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		defer st.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st.calls)
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
