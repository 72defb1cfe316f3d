// Package metricsd collects container metrics from outside the containers:
// cheaply, exactly, and in a form other programs can embed.
//
// It is a library first. Each layer is a package of its own that a program
// can import alone:
//
//   - cgroup reads CPU, memory, block I/O, pids, hugetlb and pressure (PSI)
//     figures from cgroup v1, v2 and hybrid hosts. A Group keeps its files
//     open and re-reads them with pread into a Stats the caller owns: no
//     allocation per read, and "unavailable" is never a silent zero.
//   - netns reads per-container network statistics by entering the
//     container's network namespace once, on a locked OS thread, and keeping
//     the /proc/thread-self/net descriptors it opened there.
//   - runtime discovers containers through Docker, containerd, or, with no
//     daemon at all, the cgroup tree; sink writes samples to InfluxDB,
//     Prometheus or stdout.
//
// Importing cgroup pulls in no Docker, gRPC or Prometheus code; the runtime
// adapters and sinks each bring only their own client.
//
// This package joins the layers: a Collector (New) discovers the containers
// (by walking the cgroup tree unless given a discoverer, such as
// runtime/detect's, which picks Docker and containerd), opens a cgroup Group and a network Handle for
// each as it appears (one Handle per namespace, shared by the containers in
// it), closes them as soon as it goes, reads them all at every interval
// into a snapshot that is reused (no allocation per container), and writes
// it to the sinks. Collect takes one snapshot; Run collects on aligned ticks
// until its context ends, then flushes and closes the sinks; Watch keeps
// the tracked set current by the runtime's events for a caller that pulls
// with Collect; Close ends all of it. A network namespace that containers
// share is reported once (sink.NetState). Every snapshot
// carries the collector's own figures (sink.Self). examples/embed is the
// shortest useful embedding; examples/metricsd is the daemon.
//
// The lineage is docker-metricsd (2014), which added cgroup and network
// figures to Docker's API; the aim against today's peers (cAdvisor,
// Telegraf's docker input, Netdata's cgroups plugin) is an order of magnitude
// less CPU and memory per container, full cgroup v2 support, no global
// flags, and bounded label sets.
//
// The example reads this process's own cgroup.
package metricsd
