//go:build race

package prometheus_test

// raceEnabled: the race detector is on. Its sync.Pool drops a quarter of
// what it is given, at random, so a pooled buffer is allocated again now
// and then, and allocation counts vary from run to run.
const raceEnabled = true
