package sinktest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// MetricsDoc reads docs/METRICS.md from the module root (found from the
// working directory up) and returns its sections, by heading ("##" and
// "###" lines, the heading text as written), each with every name written
// in backticks in it, brace alternatives expanded:
// `container_pressure_{cpu,io}_waiting` gives both names.
func MetricsDoc() (map[string]map[string]bool, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	var b []byte
	for {
		b, err = os.ReadFile(filepath.Join(dir, "docs", "METRICS.md"))
		if err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, err
		}
		dir = parent
	}
	secs := map[string]map[string]bool{}
	cur := map[string]bool{}
	secs[""] = cur
	tick := regexp.MustCompile("`([^`]+)`")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "## ") || strings.HasPrefix(l, "### ") {
			cur = map[string]bool{}
			secs[strings.TrimSpace(strings.TrimLeft(l, "#"))] = cur
		}
		for _, m := range tick.FindAllStringSubmatch(l, -1) {
			for _, n := range expandBraces(m[1]) {
				cur[n] = true
			}
		}
	}
	return secs, nil
}

// expandBraces expands the first {a,b,c} of s, recursively; a label set
// ({device}, {failure_type="x",scope="y"}) is dropped.
func expandBraces(s string) []string {
	i := strings.IndexByte(s, '{')
	j := strings.LastIndexByte(s, '}')
	if i < 0 || j < i {
		return []string{s}
	}
	if in := s[i+1 : j]; !strings.Contains(in, ",") || strings.Contains(in, "=") {
		return []string{s[:i] + s[j+1:]}
	}
	j = i + strings.IndexByte(s[i:], '}')
	var out []string
	for _, alt := range strings.Split(s[i+1:j], ",") {
		out = append(out, expandBraces(s[:i]+alt+s[j+1:])...)
	}
	return out
}

// Section returns the names of the first section whose heading starts
// with prefix.
func Section(secs map[string]map[string]bool, prefix string) map[string]bool {
	for h, names := range secs {
		if strings.HasPrefix(h, prefix) {
			return names
		}
	}
	return nil
}
