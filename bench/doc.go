// Package bench holds side-by-side benchmarks of metricsd against peer
// libraries. It is a separate module so that the peers never enter the
// library's own go.mod; see docs/BENCHMARKS.md for results and commands.
package bench
