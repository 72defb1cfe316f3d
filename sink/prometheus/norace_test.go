//go:build !race

package prometheus_test

const raceEnabled = false
