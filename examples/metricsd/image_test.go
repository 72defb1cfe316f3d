package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/rttest"
	"github.com/metricsd/metricsd/internal/sinktest"
)

// readmeDockerRun returns the arguments (after "docker") of the README's
// `docker run` of the image.
func readmeDockerRun(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\ndocker run -d --name metricsd ")
	if i < 0 {
		t.Fatal("README.md has no `docker run -d --name metricsd ...` block")
	}
	end := strings.Index(s[i:], "\n```")
	if end < 0 {
		t.Fatal("README.md: the docker run block does not end")
	}
	cmd := strings.ReplaceAll(s[i+1:i+end], "\\\n", " ")
	f := strings.Fields(cmd)
	return f[1:]
}

// imageFiles lists the regular files of an image's layers (docker save).
func imageFiles(t *testing.T, host, image string) []string {
	t.Helper()
	out, err := exec.Command("docker", "-H", host, "save", image).Output()
	if err != nil {
		t.Fatalf("docker save %s: %v", image, err)
	}
	var files []string
	outer := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := outer.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, "layer.tar") && !strings.HasPrefix(h.Name, "blobs/") {
			continue
		}
		layer := tar.NewReader(outer)
		for {
			lh, err := layer.Next()
			if err != nil {
				break // the end, or a blob that is not a layer
			}
			if lh.Typeflag == tar.TypeReg {
				files = append(files, lh.Name)
			}
		}
	}
	slices.Sort(files)
	return files
}

// TestImage builds the image with deploy/docker/build.sh on the test
// dockerd (which, started with --bridge=none, has no route out: the build
// may fetch nothing) and runs it with the README's own `docker run`
// command, read from README.md, with three changes: the test dockerd's
// socket is mounted in place of /var/run/docker.sock, and -listen (a free
// loopback port) and -interval 1s are added. It checks that the image
// holds the binary and the CA bundle only, that -version runs, that
// /healthz and /readyz answer, and that /metrics reports the test's
// containers by name, with the loopback traffic of one of them (its
// network namespace entered with only the two capabilities the command
// adds).
func TestImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the test dockerd, and a container with the host's PID namespace)")
	}
	v := rttest.Need(t, rttest.EnvDockerHost, rttest.EnvImage, rttest.EnvCgroupParent)
	rttest.Lock(t, false)
	host := v[0]
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Fatalf("%s is not a unix socket", host)
	}

	build := exec.Command("sh", buildScript)
	build.Env = append(os.Environ(), "DOCKER_HOST="+host)
	var buildErr strings.Builder
	build.Stderr = &buildErr
	start := time.Now()
	out, err := build.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", buildScript, err, buildErr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	image := lines[len(lines)-1]
	t.Logf("%s built %s in %v", buildScript, image, time.Since(start).Round(time.Second))
	if files := imageFiles(t, host, image); !slices.Equal(files, []string{"etc/ssl/certs/ca-certificates.crt", "metricsd"}) {
		t.Errorf("image files %v, want the binary and the CA bundle only", files)
	}
	if out, err := exec.Command("docker", "-H", host, "run", "--rm", image, "-version").Output(); err != nil || !strings.HasPrefix(string(out), "metricsd ") {
		t.Errorf("docker run %s -version: %v, %q", image, err, out)
	}

	// The containers it must report: one moves traffic over its loopback.
	idle, busy := rttest.Name("img-idle"), rttest.Name("img-busy")
	rttest.DockerRun(t, idle, nil)
	busyID := rttest.DockerRunCmd(t, busy, nil, "/bin/sleep", "600")
	const sent = 256 << 10
	if got := rttest.LoopbackTraffic(t, busyID, sent>>10); got != sent {
		t.Fatalf("sent %d, want %d", got, sent)
	}

	args := readmeDockerRun(t)
	port, err := sinktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	name := rttest.Name("metricsd")
	sawImage, sawSocket := false, false
	for i, a := range args {
		switch {
		case a == "metricsd" && i > 0 && args[i-1] == "--name":
			args[i] = name
		case a == "/var/run/docker.sock:/var/run/docker.sock":
			args[i] = sock + ":/var/run/docker.sock"
			sawSocket = true
		case a == image:
			sawImage = true
		}
	}
	if !sawImage || !sawSocket {
		t.Fatalf("README's docker run %q: want the image %s and the mount /var/run/docker.sock:/var/run/docker.sock", args, image)
	}
	args = append(args, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-interval", "1s")
	t.Logf("docker %s", strings.Join(args, " "))
	id := rttest.Docker(t, args...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "-H", host, "logs", "--tail", "30", id).CombinedOutput()
			t.Logf("the metricsd container's log:\n%s", logs)
		}
		_, _ = rttest.Try("docker", "-H", host, "rm", "-f", id)
	})
	var inspect []struct {
		HostConfig struct {
			CapAdd, CapDrop []string
			ReadonlyRootfs  bool
			PidMode         string
		}
	}
	if err := json.Unmarshal([]byte(rttest.Docker(t, "inspect", id)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("docker inspect: %v", err)
	}
	t.Logf("running with %+v", inspect[0].HostConfig)

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitStatus(t, base+"/healthz", 200, "ok", 60*time.Second)
	waitStatus(t, base+"/readyz", 200, "ok", 60*time.Second)
	var metrics string
	cpuRE := func(n string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^container_cpu_usage_seconds_total\{[^}]*name="` + regexp.QuoteMeta(n) + `"[^}]*\} [0-9.e+-]+$`)
	}
	loRE := regexp.MustCompile(`(?m)^container_network_receive_bytes_total\{[^}]*interface="lo"[^}]*name="` + regexp.QuoteMeta(busy) + `"[^}]*\} ([0-9.e+]+)$`)
	rttest.Eventually(t, 30*time.Second, func() error {
		code, body := get(base + "/metrics")
		if code != 200 {
			return fmt.Errorf("/metrics: %d", code)
		}
		metrics = body
		for _, n := range []string{idle, busy} {
			if !cpuRE(n).MatchString(body) {
				return fmt.Errorf("%s not in /metrics", n)
			}
		}
		if !loRE.MatchString(body) {
			return fmt.Errorf("no lo receive bytes for %s in /metrics", busy)
		}
		return nil
	})
	rx, err := strconv.ParseFloat(loRE.FindStringSubmatch(metrics)[1], 64)
	if err != nil || rx < sent {
		t.Errorf("%s: lo received %v bytes (%v), want at least the %d sent", busy, rx, err, sent)
	}
}
