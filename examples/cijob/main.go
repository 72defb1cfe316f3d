// Command cijob meters one command the way a CI runner meters a job, with
// the library's cgroup/job package: it runs the command in a cgroup of its
// own (made beside cijob's own group, or under -parent), and when the
// command and everything it started have ended prints a summary: exit status
// or signal, wall time, CPU user, system and total seconds, peak memory,
// block I/O bytes and operations, peak task count, fork failures, OOM kills,
// CPU throttling and pressure stall totals; optionally also as JSON.
//
//	cijob [-json FILE] [-parent PATH] [-kill-leftovers] [-cpus N] [-memory BYTES] [-pids N] -- CMD ARGS...
//
// Standard input, output and error are the command's own; SIGTERM, SIGHUP,
// SIGQUIT and SIGINT are passed to it (SIGINT only when standard input is not
// a terminal, where the terminal already sent it to the command). The exit
// status is the command's (128+N when signal N killed it). cijob waits for
// what the command left running in its group, or with -kill-leftovers kills
// it, and removes the group.
//
// Where no group can be made (no root, a read-only /sys/fs/cgroup, a private
// cgroup namespace), the command runs all the same: the summary then holds
// the getrusage figures of the command and the processes it waited for,
// marked "(rusage)", and cijob says on standard error what is missing. With
// a limit asked for (-cpus, -memory, -pids) it does not run the command
// there: the limit can not be kept.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/cgroup/job"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// Summary is what cijob reports; it is also the JSON schema of -json. A
// null figure is one the kernel could not give (see errors).
type Summary struct {
	Command       []string `json:"command"`
	ExitCode      int      `json:"exit_code"` // 128+N when signal N killed the command
	Signal        string   `json:"signal,omitempty"`
	Metered       bool     `json:"metered"`          // false: figures from getrusage (rusage)
	Group         string   `json:"group,omitempty"`  // the job's cgroup
	CgroupVersion int      `json:"cgroup_version"`   // 1 or 2; 0 when not metered
	WallSeconds   float64  `json:"wall_seconds"`     // start to the command's exit
	UserSeconds   *float64 `json:"cpu_user_seconds"` // null: unavailable
	SystemSeconds *float64 `json:"cpu_system_seconds"`
	CPUSeconds    *float64 `json:"cpu_seconds"`       // exact (user and system are tick-sampled on v1)
	PeakMemory    *uint64  `json:"peak_memory_bytes"` // the group's peak; rusage: the largest process's
	ReadBytes     *uint64  `json:"block_io_read_bytes"`
	WriteBytes    *uint64  `json:"block_io_write_bytes"`
	ReadOps       *uint64  `json:"block_io_read_ops"`
	WriteOps      *uint64  `json:"block_io_write_ops"`
	PeakPids      *uint64  `json:"peak_pids"`
	ForkFailures  *uint64  `json:"fork_failures"` // forks refused at pids.max
	OOMKills      *uint64  `json:"oom_kills"`
	ThrottledSecs *float64 `json:"throttled_seconds"` // CFS throttled time
	// Stall totals (PSI "some" and "full") in seconds, by resource.
	Pressure map[string]*float64 `json:"pressure_seconds,omitempty"`
	// Rusage is getrusage's figures for the command and the processes it
	// waited for, metered or not.
	Rusage Rusage   `json:"rusage"`
	Errors []string `json:"errors,omitempty"` // what is missing, and why
}

// Rusage is the JSON form of job.Rusage.
type Rusage struct {
	UserSeconds   float64 `json:"cpu_user_seconds"`
	SystemSeconds float64 `json:"cpu_system_seconds"`
	MaxRSS        uint64  `json:"max_rss_bytes"` // the largest process's
	ReadBytes     uint64  `json:"read_bytes"`
	WriteBytes    uint64  `json:"write_bytes"`
}

// config is what the flags ask for.
type config struct {
	argv     []string
	jsonFile string
	opts     []job.Option
}

func run(args []string, stderr io.Writer) int {
	c, code := parseFlags(args, stderr)
	if c == nil {
		return code
	}
	path, err := exec.LookPath(c.argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", err)
		return 127
	}
	cmd := exec.Command(path, c.argv[1:]...)
	cmd.Args[0] = c.argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)

	j, err := job.Start(context.Background(), cmd, c.opts...)
	if err != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", err)
		return 2
	}
	tot, werr := waitForwarding(j, cmd, sigs)
	sum := summarize(c.argv, tot, werr)
	if werr != nil {
		fmt.Fprintf(stderr, "cijob: %v\n", werr)
	}
	fmt.Fprintln(stderr, sum.String())
	if c.jsonFile != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(c.jsonFile, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "cijob: %v\n", err)
		}
	}
	return sum.ExitCode
}

// parseFlags returns the configuration, or nil and the exit status.
func parseFlags(args []string, stderr io.Writer) (*config, int) {
	fl := flag.NewFlagSet("cijob", flag.ContinueOnError)
	fl.SetOutput(stderr)
	jsonFile := fl.String("json", "", "also write the summary as JSON to `FILE`")
	parent := fl.String("parent", "", "make the job's cgroup under the cgroup `PATH` (default: beside cijob's own)")
	kill := fl.Bool("kill-leftovers", false, "kill what the command leaves running once it has exited (default: wait for it)")
	cpus := fl.Float64("cpus", 0, "limit the job to `N` CPUs (0: no limit)")
	memory := fl.Uint64("memory", 0, "limit the job's memory to `BYTES` (0: no limit)")
	pids := fl.Uint64("pids", 0, "limit the job to `N` tasks (0: no limit)")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: cijob [-json FILE] [-parent PATH] [-kill-leftovers] [-cpus N] [-memory BYTES] [-pids N] -- CMD ARGS...")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return nil, 2
	}
	c := &config{argv: fl.Args(), jsonFile: *jsonFile}
	if len(c.argv) == 0 {
		fl.Usage()
		return nil, 2
	}
	if *parent != "" {
		c.opts = append(c.opts, job.WithParent(*parent))
	}
	if *kill {
		c.opts = append(c.opts, job.WithKillLeftovers())
	}
	if *cpus != 0 {
		c.opts = append(c.opts, job.WithCPULimit(*cpus))
	}
	if *memory != 0 {
		c.opts = append(c.opts, job.WithMemoryLimit(*memory))
	}
	if *pids != 0 {
		c.opts = append(c.opts, job.WithPidsLimit(*pids))
	}
	return c, 0
}

// waitForwarding waits for the job, passing the signals cijob receives to
// the command.
func waitForwarding(j *job.Job, cmd *exec.Cmd, sigs <-chan os.Signal) (*job.Totals, error) {
	type result struct {
		t   *job.Totals
		err error
	}
	done := make(chan result, 1)
	go func() {
		t, err := j.Wait()
		done <- result{t, err}
	}()
	for {
		select {
		case r := <-done:
			return r.t, r.err
		case s := <-sigs:
			if s == syscall.SIGINT && isTerminal(os.Stdin) {
				continue // the terminal sent it to the command already
			}
			cmd.Process.Signal(s)
		}
	}
}

// summarize turns the job's totals into the summary: cgroup figures where
// the job was metered, else getrusage's.
func summarize(argv []string, t *job.Totals, err error) Summary {
	s := Summary{Command: argv, ExitCode: t.ExitCode, Signal: t.Signal, Metered: t.Metered(),
		Group: t.Path, CgroupVersion: t.Version, WallSeconds: t.Wall.Seconds()}
	if t.Signal != "" {
		s.ExitCode = 128 + int(unix.SignalNum(t.Signal))
	}
	s.Rusage = Rusage{UserSeconds: t.Tree.User.Seconds(), SystemSeconds: t.Tree.System.Seconds(),
		MaxRSS: t.Tree.MaxRSS, ReadBytes: t.Tree.ReadBytes, WriteBytes: t.Tree.WriteBytes}
	for _, e := range unjoin(err) {
		s.Errors = append(s.Errors, e.Error())
	}
	secs := func(v cgroup.Value) *float64 {
		if n, ok := v.Get(); ok {
			f := float64(n) / 1e9
			return &f
		}
		return nil
	}
	num := func(v cgroup.Value) *uint64 {
		if n, ok := v.Get(); ok {
			return &n
		}
		return nil
	}
	if !s.Metered {
		u, sy := t.Tree.User.Seconds(), t.Tree.System.Seconds()
		tot := u + sy
		rss, r, w := t.Tree.MaxRSS, t.Tree.ReadBytes, t.Tree.WriteBytes
		s.UserSeconds, s.SystemSeconds, s.CPUSeconds = &u, &sy, &tot
		s.PeakMemory, s.ReadBytes, s.WriteBytes = &rss, &r, &w
		return s
	}
	s.UserSeconds, s.SystemSeconds, s.CPUSeconds = secs(t.CPU.User), secs(t.CPU.System), secs(t.CPU.Total)
	s.ThrottledSecs = secs(t.CPU.Throttled)
	s.PeakMemory = num(t.MemoryPeak)
	s.ReadBytes, s.WriteBytes = num(t.IO.ReadBytes), num(t.IO.WriteBytes)
	s.ReadOps, s.WriteOps = num(t.IO.ReadOps), num(t.IO.WriteOps)
	s.PeakPids, s.ForkFailures, s.OOMKills = num(t.PidsPeak), num(t.ForkFailures), num(t.OOMKills)
	for name, p := range map[string]cgroup.PSI{"cpu": t.Pressure.CPU, "memory": t.Pressure.Memory, "io": t.Pressure.IO} {
		for kind, l := range map[string]cgroup.PSILine{"some": p.Some, "full": p.Full} {
			if v := secs(l.Total); v != nil {
				if s.Pressure == nil {
					s.Pressure = make(map[string]*float64)
				}
				s.Pressure[name+"_"+kind] = v
			}
		}
	}
	return s
}

// unjoin lists the errors errors.Join joined (err itself otherwise).
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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
	exit := fmt.Sprintf("exit %d", s.ExitCode)
	if s.Signal != "" {
		exit += " (" + s.Signal + ")"
	}
	if !s.Metered {
		return fmt.Sprintf("cijob: %s, wall %.3fs, not metered in a cgroup: (rusage) cpu %s (user %s, system %s), largest process %s, block I/O read %s write %s",
			exit, s.WallSeconds, f(s.CPUSeconds), f(s.UserSeconds), f(s.SystemSeconds), b(s.PeakMemory), b(s.ReadBytes), b(s.WriteBytes))
	}
	return fmt.Sprintf("cijob: %s, wall %.3fs, cpu %s (user %s, system %s), peak memory %s, block I/O read %s (%s ops) write %s (%s ops), peak pids %s, fork failures %s, OOM kills %s, throttled %s",
		exit, s.WallSeconds, f(s.CPUSeconds), f(s.UserSeconds), f(s.SystemSeconds), b(s.PeakMemory),
		b(s.ReadBytes), n(s.ReadOps), b(s.WriteBytes), n(s.WriteOps), n(s.PeakPids), n(s.ForkFailures), n(s.OOMKills), f(s.ThrottledSecs))
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
