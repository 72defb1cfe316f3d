package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
)

// TestThousandInterfaces: a container (a group beneath -cgroup-subtree
// whose process is in a network namespace the test made) has 1,000
// interfaces besides lo (500 veth pairs, both ends in the namespace; this
// kernel has no dummy driver), which NET_ADMIN in its own namespace allows
// any container to make. The daemon, with its default -max-interfaces, serves
// /metrics to a real Prometheus: the container's network series name
// exactly 128 interfaces (sink.DefaultMaxInterfaces, the first in the
// kernel's order, lo among them), its series are bounded accordingly, and
// metricsd_sink_interfaces_left_out_total counts the 873 left out at each
// snapshot. Without the bound the issue measured 8,088 series.
func TestThousandInterfaces(t *testing.T) {
	tr := rttest.NewTree(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	promBin, why := sinktest.Binary("METRICSD_TEST_PROMETHEUS")
	if promBin == "" {
		rttest.Unavailable(t, "%s", why)
	}
	const links = 1000
	ns := rttest.Name("mdifs")
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	var batch strings.Builder
	for i := range links / 2 {
		fmt.Fprintf(&batch, "link add v%d type veth peer name w%d\n", i, i)
	}
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v %s", err, out)
	}
	id := fmt.Sprintf("%064x", 0x1f5)
	tr.SpawnShell("docker/"+id, "exec ip netns exec "+ns+" sleep 600")
	last := fmt.Sprintf("v%d:", links/2-1)
	if !sinktest.Poll(10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(tr.Dir("docker/"+id), "cgroup.procs"))
		pid := strings.TrimSpace(string(b))
		dev, _ := os.ReadFile("/proc/" + pid + "/net/dev")
		return pid != "" && strings.Contains(string(dev), last)
	}) {
		t.Fatal("the workload did not enter the namespace")
	}

	_, addr := daemon(t, "-runtime", "cgroupfs", "-cgroup-subtree", tr.Base, "-sink", "prometheus", "-interval", "1s")
	p, err := sinktest.StartPrometheus(promBin, t.TempDir(), addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scalar := func(q string) (float64, error) {
		r, err := p.Query(ctx, q)
		if err != nil {
			return 0, err
		}
		if len(r) != 1 {
			return 0, fmt.Errorf("%s: %d samples, want 1", q, len(r))
		}
		return r[0].Value, nil
	}
	sel := fmt.Sprintf(`id=~".*%s.*"`, id)
	net := fmt.Sprintf(`{__name__=~"container_network_.+",%s}`, sel)
	var ifaces float64
	rttest.Eventually(t, 60*time.Second, func() error {
		if up, err := scalar(`up{job="metricsd"}`); err != nil || up != 1 {
			return fmt.Errorf("up = %v %v", up, err)
		}
		ifaces, err = scalar(fmt.Sprintf(`count(count by (interface) (%s))`, net))
		if err != nil {
			return err
		}
		if ifaces < sink.DefaultMaxInterfaces {
			return fmt.Errorf("%v interfaces scraped so far", ifaces)
		}
		return nil
	})
	if ifaces != sink.DefaultMaxInterfaces {
		t.Errorf("%v interfaces in the container's series, want %d of its %d", ifaces, sink.DefaultMaxInterfaces, links+1)
	}
	if _, err := scalar(fmt.Sprintf(`count(%s)`, strings.Replace(net, "}", `,interface="lo"}`, 1))); err != nil {
		t.Errorf("lo, the kernel's first interface, is not among them: %v", err)
	}
	total, err := scalar(fmt.Sprintf(`count({%s})`, sel))
	if err != nil {
		t.Fatal(err)
	}
	other, err := scalar(fmt.Sprintf(`count({__name__!~"container_network_.+",%s})`, sel))
	if err != nil {
		t.Fatal(err)
	}
	perIface, err := scalar(fmt.Sprintf(`count(%s)`, strings.Replace(net, "}", `,interface="lo"}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if bound := other + sink.DefaultMaxInterfaces*perIface; total > bound {
		t.Errorf("%v series for the container, want at most %v (%v not per interface, %v per interface)", total, bound, other, perIface)
	}
	t.Logf("%v series for the container: %v not per interface, %v for each of %v interfaces", total, other, perIface, ifaces)
	left, err := scalar(`metricsd_sink_interfaces_left_out_total`)
	if err != nil {
		t.Fatal(err)
	}
	if per := float64(links + 1 - sink.DefaultMaxInterfaces); left < per || left != per*float64(int(left/per)) {
		t.Errorf("metricsd_sink_interfaces_left_out_total = %v, want a multiple of %v (per snapshot)", left, per)
	}
}
