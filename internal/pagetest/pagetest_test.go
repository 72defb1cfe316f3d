// Package pagetest tests the daemon's live page (sink/live) in a real
// browser: headless Chromium (Debian's chromium), driven over the DevTools
// protocol with chromedp, loads the page of a metricsd daemon watching the
// test containerd (scripts/daemons.sh). It is a module of its own so that
// chromedp stays out of the library's go.mod; scripts/test.sh runs it.
package pagetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// hostile is the name the hostile container gives itself: a Kubernetes
// container name (io.kubernetes.container.name, taken as the name in
// containerd's k8s.io namespace) that, parsed as markup, would run its
// onerror handler and mark the page.
const hostile = `<img src=x onerror="document.body.dataset.pwned='name'">`

// hostileLabel is a label value, shown in the container's details.
const hostileLabel = `<svg onload="document.body.dataset.pwned='label'"></svg><b>bold</b>`

// hostileLinks are the names of a veth pair the hostile container makes in
// its own network namespace (the kernel allows <, > and = in them).
var hostileLinks = [2]string{"<i>i", "<u>u"}

// EnvScreenshot names where TestLivePageInChromium saves its screenshot
// (default: metricsd-live-page.png in the temporary directory).
const EnvScreenshot = "METRICSD_PAGETEST_SCREENSHOT"

// TestLivePageInChromium runs the daemon (-runtime containerd against the
// test containerd, -interval 1s) with three containers of its own, one
// loaded (CPU under a 10% quota, ping on its loopback), and a hostile one,
// and loads its page in headless Chromium. In the DOM it checks: every
// test container is listed by name; after a few intervals the loaded
// container's CPU and network charts have drawn non-zero values (the
// page's record of what it drew, and coloured pixels on the canvas); the
// hostile name, label and interface names appear literally as text, no element they
// describe exists and their payload never ran (it would set
// data-pwned on the body). It saves a screenshot (PNG) and logs its path.
func TestLivePageInChromium(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon reads containers' cgroups and namespaces")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		rttest.Unavailable(t, "no chromium in PATH (Debian package chromium; scripts/test.sh installs it)")
	}
	v := rttest.Need(t, rttest.EnvContainerd, rttest.EnvRootfs)
	rttest.Lock(t, false)

	// The daemon, built from this tree as the Dockerfile builds it.
	bin := filepath.Join(t.TempDir(), "metricsd")
	build := exec.Command("go", "build", "-o", bin, "./examples/metricsd")
	build.Dir = "../.." // the library's module
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ns := fmt.Sprintf("pagetest-%d", os.Getpid())
	names := []string{"web-" + ns, "db-" + ns, "cache-" + ns}
	rttest.CtrRun(t, ns, names[0], nil, "--cpu-quota", "10000", "--cpu-period", "100000")
	rttest.CtrRun(t, ns, names[1], nil)
	rttest.CtrRun(t, ns, names[2], nil)
	for _, cmd := range []string{"while :; do :; done", "ping -q 127.0.0.1"} {
		rttest.Ctr(t, ns, "task", "exec", "-d", "--exec-id", fmt.Sprintf("load%d", len(cmd)), names[0], "/bin/sh", "-c", cmd)
	}
	evilID := "evil-" + ns
	evilPID := rttest.CtrRun(t, "k8s.io", evilID, []string{
		"io.kubernetes.container.name=" + hostile,
		"io.kubernetes.pod.name=evil", "io.kubernetes.pod.namespace=default", "io.kubernetes.pod.uid=" + ns,
		"note=" + hostileLabel,
	})
	rttest.Run(t, "nsenter", "--net=/proc/"+strconv.Itoa(evilPID)+"/ns/net", "ip", "link", "add", hostileLinks[0], "type", "veth", "peer", "name", hostileLinks[1])

	port, err := sinktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var errOut rttest.Buffer
	daemon := exec.Command(bin, "-runtime", "containerd", "-containerd-address", v[0], "-interval", "1s",
		"-listen", fmt.Sprintf("127.0.0.1:%d", port), "-labels", "note", "-sink", "stdout", "-log-level", "info")
	daemon.Stderr = &errOut
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Signal(os.Interrupt)
		daemon.Wait()
		if t.Failed() {
			t.Logf("daemon's log:\n%s", errOut.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelA := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1360, 800),
		chromedp.UserDataDir(t.TempDir()))...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelB()

	// wait evaluates a JavaScript expression every 200 ms until it is
	// true, and fails the test with what it says otherwise.
	wait := func(what, expr string, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				dom, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
				t.Fatalf("%s: not within %v; the page shows:\n%s", what, d, dom)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{}, names...), hostile)
	wait("every test container listed by name", fmt.Sprintf(`(function () {
		var shown = Array.from(document.querySelectorAll("tbody td.name"), function (td) { return td.textContent; });
		return %s.every(function (n) { return shown.indexOf(n) >= 0; });
	})()`, jsStrings(want)), 30*time.Second)

	// The loaded container's charts, after a few intervals.
	click := func(name string) {
		t.Helper()
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf(`(function () {
			var row = Array.from(document.querySelectorAll("tbody tr")).find(function (r) { return r.cells[0].textContent === %s; });
			if (row) row.cells[0].click();
			return !!row;
		})()`, strconv.Quote(name))))
		if err != nil || !ok {
			t.Fatalf("click %q: %v %v", name, ok, err)
		}
	}
	click(names[0])
	charted := func(id string, minPoints int) string {
		return fmt.Sprintf(`(function () {
			var c = document.getElementById(%q);
			if (document.getElementById("detail-name").textContent !== %q) return false;
			if (Number(c.dataset.points) < %d || Number(c.dataset.nonzero) < 1) return false;
			// Coloured pixels: the lines, not the grey axis and labels.
			var d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, n = 0;
			for (var i = 0; i < d.length; i += 4) {
				var r = d[i], g = d[i + 1], b = d[i + 2];
				if (d[i + 3] > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
			}
			return n > 20;
		})()`, id, names[0], minPoints)
	}
	wait("the loaded container's CPU chart drawn with non-zero values", charted("chart-cpu", 4), 30*time.Second)
	wait("the loaded container's network chart drawn with non-zero values", charted("chart-net", 4), 15*time.Second)
	wait("the loaded container's memory chart drawn with non-zero values", charted("chart-mem", 4), 15*time.Second)

	cpu, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("tr.selected").cells[3].textContent`))
	t.Logf("%s: CPU %s in the table", names[0], cpu)

	// Sorting: a click on the CPU % header puts the busiest first, a
	// second click last.
	for _, want := range []string{"first", "last"} {
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('th[data-key="cpu"]').click(), true`)); err != nil {
			t.Fatal(err)
		}
		idx := "0"
		if want == "last" {
			idx = "document.querySelectorAll('tbody tr').length - 1"
		}
		wait("sorted by CPU %, the loaded container "+want, fmt.Sprintf(
			`document.querySelectorAll("tbody tr")[%s].cells[0].textContent === %s`, idx, strconv.Quote(names[0])), 5*time.Second)
	}

	// The hostile container: its name and label as text, nothing they
	// describe made, nothing run.
	click(hostile)
	wait("the hostile container's details shown", fmt.Sprintf(`document.getElementById("detail-name").textContent === %s`,
		strconv.Quote(hostile)), 15*time.Second)
	type verdict struct {
		Cells, Details, Label int
		Interfaces            string
		Elements              int
		Pwned, Title          string
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[verdict](fmt.Sprintf(`(function () {
		var h = %s, l = %s;
		return {
			Cells: Array.from(document.querySelectorAll("tbody td.name")).filter(function (td) { return td.textContent === h && td.children.length === 0; }).length,
			Details: document.getElementById("detail-name").textContent === h ? 1 : 0,
			Label: Array.from(document.querySelectorAll("#detail-info dd")).filter(function (dd) { return dd.textContent === l && dd.children.length === 0; }).length,
			Interfaces: Array.from(document.querySelectorAll("#detail-info dt")).filter(function (dt) { return dt.textContent === "Interfaces"; }).map(function (dt) { return dt.nextElementSibling.children.length ? "markup" : dt.nextElementSibling.textContent; }).join(),
			Elements: document.querySelectorAll("main img, main svg, main b, main i, main u").length,
			Pwned: document.body.dataset.pwned || "",
			Title: document.title
		};
	})()`, strconv.Quote(hostile), strconv.Quote(hostileLabel))))
	if err != nil {
		t.Fatal(err)
	}
	// The interfaces in the kernel's order, which need not be that of
	// their making.
	ifaces := strings.Split(got.Interfaces, ", ")
	sort.Strings(ifaces)
	wantIfaces := []string{hostileLinks[0], hostileLinks[1], "lo"}
	if got.Cells != 1 || got.Details != 1 || got.Label != 1 || !slices.Equal(ifaces, wantIfaces) || got.Elements != 0 || got.Pwned != "" || got.Title != "metricsd" {
		t.Errorf("hostile strings: %+v; want the name as the text of 1 cell and the details' title, the label as 1 value's text, interfaces %q as text (in any order), no img/svg/b/i/u element, no payload run, the title unchanged", got, wantIfaces)
	}

	// The screenshot, of the loaded container's charts over a dozen
	// points, the table sorted by CPU %.
	chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('th[data-key="cpu"]').click(), true`))
	click(names[0])
	wait("charts of a dozen points", charted("chart-cpu", 12), 30*time.Second)
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(EnvScreenshot)
	if path == "" {
		path = filepath.Join(os.TempDir(), "metricsd-live-page.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot (PNG, %d bytes): %s", len(png), path)
	if !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("the screenshot is not a PNG")
	}
}

// jsStrings writes strings as a JavaScript array literal of JSON strings.
func jsStrings(ss []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(s)) // Go's quoting of these ASCII strings is valid JavaScript
	}
	b.WriteByte(']')
	return b.String()
}
