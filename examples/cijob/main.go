// Command cijob meters one command the way a CI runner would meter a job: it
// runs the command in a fresh cgroup, samples the cgroup every 250 ms, and
// when the command ends prints a summary (wall time, CPU user and system
// seconds, peak memory, block I/O bytes, peak task count, throttled time),
// optionally also as JSON.
//
//	cijob [-json FILE] [-interval 250ms] -- CMD ARGS...
//
// Standard input, output and error are the command's own; SIGTERM, SIGHUP,
// SIGQUIT and SIGINT are passed to it (SIGINT only when standard input is not
// a terminal, where the terminal already sent it to the command). The exit
// status is the command's (128+N when signal N killed it). The cgroup is
// removed when the command ends, also after SIGINT; processes the command
// left behind in it are killed first. It needs root (it makes cgroups).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/metricsd/metricsd/cgroup"
)

func main() {
	if shimming() {
		shim() // never returns
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// Summary is what cijob reports; it is also the JSON schema of -json.
type Summary struct {
	Command         []string `json:"command"`
	ExitCode        int      `json:"exit_code"`
	WallSeconds     float64  `json:"wall_seconds"`
	UserSeconds     *float64 `json:"cpu_user_seconds"`     // null: unavailable
	SystemSeconds   *float64 `json:"cpu_system_seconds"`   // null: unavailable
	CPUSeconds      *float64 `json:"cpu_seconds"`          // exact total (user+system are tick-sampled on v1)
	PeakMemoryBytes *uint64  `json:"peak_memory_bytes"`    // memory.peak / max_usage_in_bytes, else the sampled maximum
	ReadBytes       *uint64  `json:"block_io_read_bytes"`  // summed over devices
	WriteBytes      *uint64  `json:"block_io_write_bytes"` // summed over devices
	PeakPids        *uint64  `json:"peak_pids"`            // pids.peak where the kernel has it, else the sampled maximum
	ThrottledSecs   *float64 `json:"throttled_seconds"`    // CFS throttled time
	CgroupVersion   int      `json:"cgroup_version"`       // 1 or 2
	Samples         int      `json:"samples"`              // Stat calls made
	Errors          []string `json:"errors,omitempty"`     // problems reading figures
}

func run(args []string, stderr io.Writer) int {
	fl := flag.NewFlagSet("cijob", flag.ContinueOnError)
	fl.SetOutput(stderr)
	jsonFile := fl.String("json", "", "also write the summary as JSON to `FILE`")
	interval := fl.Duration("interval", 250*time.Millisecond, "sampling interval")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: cijob [-json FILE] [-interval D] -- CMD ARGS...")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	argv := fl.Args()
	if len(argv) == 0 || *interval <= 0 {
		fl.Usage()
		return 2
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", err)
		return 127
	}

	ctx := context.Background()
	fs, err := cgroup.NewFS(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", err)
		return 2
	}
	job, err := newJobGroup(fs)
	if err != nil {
		fmt.Fprintf(stderr, "cijob: making the job's cgroup: %v\n", err)
		return 2
	}
	defer func() {
		if err := job.remove(); err != nil {
			fmt.Fprintf(stderr, "cijob: removing the job's cgroup: %v\n", err)
		}
	}()
	grp, err := fs.Open(ctx, job.path, cgroup.All)
	if err != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", err)
		return 2
	}
	defer grp.Close()

	// The shim (this program again) moves itself into the group and then
	// execs the command, so that nothing the command does escapes it.
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", err)
		return 2
	}
	cmd := exec.Command(self, append([]string{path}, argv[1:]...)...)
	cmd.Args[0] = argv[0]
	cmd.Env = append(os.Environ(), shimEnv+"="+strings.Join(job.procs, "\n"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", err)
		return 2
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var m meter
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-done:
			break loop
		case s := <-sigs:
			if s == syscall.SIGINT && isTerminal(os.Stdin) {
				continue // the terminal sent it to the command already
			}
			cmd.Process.Signal(s)
		case <-tick.C:
			m.sample(ctx, grp)
		}
	}
	wall := time.Since(start)
	m.sample(ctx, grp) // the final figures, before stragglers are killed
	sum := m.summary(argv, wall, grp.Version(), job)
	sum.ExitCode = exitCode(waitErr)

	fmt.Fprintln(stderr, sum.String())
	if *jsonFile != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "cijob: %v\n", err)
		}
	}
	return sum.ExitCode
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 127
}

// meter keeps the figures across samples.
type meter struct {
	last     cgroup.Stats
	ok       bool
	samples  int
	peakMem  uint64
	peakPids uint64
	errs     []string
}

func (m *meter) sample(ctx context.Context, g *cgroup.Group) {
	m.samples++
	if err := g.Stat(ctx, &m.last); err != nil {
		if len(m.errs) < 5 {
			m.errs = append(m.errs, err.Error())
		}
		return
	}
	m.ok = true
	if v, ok := m.last.Memory.Usage.Get(); ok && v > m.peakMem {
		m.peakMem = v
	}
	if v, ok := m.last.Pids.Current.Get(); ok && v > m.peakPids {
		m.peakPids = v
	}
}

func (m *meter) summary(argv []string, wall time.Duration, version int, job *jobGroup) Summary {
	s := Summary{Command: argv, WallSeconds: wall.Seconds(), CgroupVersion: version, Samples: m.samples, Errors: m.errs}
	if !m.ok {
		return s
	}
	st := &m.last
	secs := func(v cgroup.Value) *float64 {
		if n, ok := v.Get(); ok {
			f := float64(n) / 1e9
			return &f
		}
		return nil
	}
	s.UserSeconds, s.SystemSeconds, s.CPUSeconds = secs(st.CPU.User), secs(st.CPU.System), secs(st.CPU.Usage)
	s.ThrottledSecs = secs(st.CPU.ThrottledTime)
	if v, ok := st.Memory.Peak.Get(); ok && v >= m.peakMem {
		s.PeakMemoryBytes = &v
	} else if m.peakMem > 0 {
		s.PeakMemoryBytes = &m.peakMem
	}
	if r, ok := st.IO.ReadBytes.Get(); ok {
		s.ReadBytes = &r
	}
	if w, ok := st.IO.WriteBytes.Get(); ok {
		s.WriteBytes = &w
	}
	if v, ok := job.pidsPeak(); ok && v >= m.peakPids {
		s.PeakPids = &v
	} else if st.Pids.Current.Available() {
		s.PeakPids = &m.peakPids
	}
	return s
}

// String is the one-line summary printed to standard error.
func (s Summary) String() string {
	f := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.3fs", *p)
	}
	b := func(p *uint64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.1f MiB", float64(*p)/(1<<20))
	}
	n := func(p *uint64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("cijob: exit %d, wall %.3fs, cpu %s (user %s, system %s), peak memory %s, block I/O read %s write %s, peak pids %s, throttled %s",
		s.ExitCode, s.WallSeconds, f(s.CPUSeconds), f(s.UserSeconds), f(s.SystemSeconds), b(s.PeakMemoryBytes), b(s.ReadBytes), b(s.WriteBytes), n(s.PeakPids), f(s.ThrottledSecs))
}
