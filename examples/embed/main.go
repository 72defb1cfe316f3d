// Command embed is the shortest useful embedding of metricsd: every
// container on the host, every 10 s, as JSON lines on standard output.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/metricsd/metricsd"
	"github.com/metricsd/metricsd/sink/stdout"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	out, err := stdout.New(os.Stdout, stdout.WithFormat(stdout.JSONLines))
	if err != nil {
		log.Fatal(err)
	}
	// With no discoverer the Collector walks the cgroup tree: no daemon
	// needed, no runtime client linked. For Docker and containerd names,
	// add metricsd.WithDiscoverer(d) with d from runtime/detect's New.
	c, err := metricsd.New(ctx,
		metricsd.WithInterval(10*time.Second),
		metricsd.WithSinks(out),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Run(ctx); err != nil { // until Ctrl-C; then flushes the sink
		log.Fatal(err)
	}
}
