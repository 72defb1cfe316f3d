package metricsd

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Capabilities the Collector needs for other users' containers.
const (
	capSysPtrace = 19 // open /proc/<pid>/ns/net of a process the agent does not own
	capSysAdmin  = 21 // setns(2) into a network namespace
)

// effectiveCaps returns the process's effective capability set.
func effectiveCaps() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("CapEff:")); ok {
			caps, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return caps, err == nil
		}
	}
	return 0, false
}

// warnPrivileges warns when the process can not enter the network
// namespaces of other users' containers: their network figures will be
// unavailable (their cgroup figures are not affected).
func warnPrivileges(log *slog.Logger) {
	caps, ok := effectiveCaps()
	if !ok {
		return
	}
	var missing []string
	if caps&(1<<capSysAdmin) == 0 {
		missing = append(missing, "CAP_SYS_ADMIN")
	}
	if caps&(1<<capSysPtrace) == 0 {
		missing = append(missing, "CAP_SYS_PTRACE")
	}
	if len(missing) > 0 {
		log.Warn("metricsd: without these capabilities other users' containers' network namespaces can not be opened: their network figures will be unavailable (run as root, or grant them)",
			"missing", missing, "euid", os.Geteuid())
	}
}

// openFDs counts the process's open descriptors.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// warnFDs warns when RLIMIT_NOFILE can not hold every container listed:
// perContainer descriptors each (measured on the first one opened), n
// containers.
func (c *Collector) warnFDs(perContainer, n int) {
	var lim unix.Rlimit
	if perContainer <= 0 || unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	need := uint64(openFDs() + perContainer*(n-1))
	if need > lim.Cur {
		c.o.log.Warn("metricsd: RLIMIT_NOFILE is too low for the containers listed: those beyond it can not be opened (raise it: ulimit -n, LimitNOFILE=, docker run --ulimit nofile=)",
			"containers", n, "descriptors_each", perContainer, "need", need, "soft_limit", lim.Cur, "hard_limit", lim.Max)
	}
}
