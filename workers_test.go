package metricsd

import "testing"

// TestWorkers: one goroutine reads a few dozen containers; more start per
// 128 cgroups and namespaces, never more than WithConcurrency allows.
func TestWorkers(t *testing.T) {
	for _, c := range []struct{ limit, items, want int }{
		{2, 0, 1}, {2, 66, 1}, {2, 127, 1}, {2, 128, 2}, {2, 1100, 2},
		{8, 300, 3}, {8, 100000, 8}, {1, 100000, 1},
	} {
		if got := workers(c.limit, c.items); got != c.want {
			t.Errorf("workers(%d, %d) = %d, want %d", c.limit, c.items, got, c.want)
		}
	}
}
