package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// shimEnv carries, to the re-executed cijob, the cgroup.procs files it must
// join before it execs the command.
const shimEnv = "METRICSD_CIJOB_SHIM"

func shimming() bool { return os.Getenv(shimEnv) != "" }

// shim moves this process into the job's group, then replaces itself with
// the command (os.Args[1:] hold its path and arguments). It never returns.
func shim() {
	procs := strings.Split(os.Getenv(shimEnv), "\n")
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, p := range procs {
		if err := os.WriteFile(p, pid, 0); err != nil {
			fmt.Fprintf(os.Stderr, "cijob: joining the job's cgroup: %v\n", err)
			os.Exit(126)
		}
	}
	env := os.Environ()
	for i, e := range env {
		if strings.HasPrefix(e, shimEnv+"=") {
			env = append(env[:i], env[i+1:]...)
			break
		}
	}
	if len(os.Args) < 2 {
		os.Exit(126)
	}
	argv := append([]string{os.Args[0]}, os.Args[2:]...)
	err := syscall.Exec(os.Args[1], argv, env)
	fmt.Fprintf(os.Stderr, "cijob: exec %s: %v\n", os.Args[1], err)
	os.Exit(126)
}
