package metricsd

// OOMWatching returns how many groups c's OOM watcher watches, for the
// tests that check a container's watch goes with it.
func OOMWatching(c *Collector) int {
	if c.oom == nil {
		return 0
	}
	return c.oom.Watching()
}
