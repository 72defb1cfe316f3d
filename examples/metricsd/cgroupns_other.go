//go:build !linux

package main

import "log/slog"

// enterHostCgroupNS: cgroup namespaces are Linux's.
func enterHostCgroupNS(root string, log *slog.Logger) {}
