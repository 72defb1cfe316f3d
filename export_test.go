package metricsd

// OOMWatching returns how many groups c's OOM watcher watches, for the
// tests that check a container's watch goes with it.
func OOMWatching(c *Collector) int {
	if c.oom == nil {
		return 0
	}
	return c.oom.Watching()
}

// OOMKillsOf returns the count of OOM kills c has for the tracked
// container id (0 when it tracks none by that ID).
func OOMKillsOf(c *Collector, id string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.tracked {
		if e.id == id {
			return e.oomTotal.Load()
		}
	}
	return 0
}
