package job

// WithPlaceFault has the move of a traced command into a hierarchy fail
// with what f returns for that hierarchy's cgroup.procs (nil: no fault): a
// fault the tests can not cause for real.
func WithPlaceFault(f func(procs string) error) Option {
	return func(c *config) error { c.placeFault = f; return nil }
}
