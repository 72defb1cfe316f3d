package ratelog_test

import (
	"log/slog"
	"os"
	"time"

	"github.com/metricsd/metricsd/internal/ratelog"
)

func Example() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	rl := ratelog.New(log, time.Hour)
	for range 3 {
		rl.Warn("cap", "connection cap reached", "max", 256)
	}
	// Output: level=WARN msg="connection cap reached" max=256
}
