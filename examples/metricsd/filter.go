package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/metricsd/metricsd/runtime"
)

// filterFlags are the container filter's flags (runtime.Filter), each
// repeatable, one pattern per use.
type filterFlags struct{ f runtime.Filter }

func addFilterFlags(fl *flag.FlagSet) *filterFlags {
	ff := &filterFlags{}
	add := func(dst *[]string, name, usage string) { fl.Var((*multi)(dst), name, usage+" (repeatable)") }
	add(&ff.f.Names, "include-name", "report only containers whose name matches this glob (* and ?)")
	add(&ff.f.ExcludeNames, "exclude-name", "do not report containers whose name matches this glob")
	add(&ff.f.Labels, "include-label", "report only containers with this label: key, or key=glob on its value")
	add(&ff.f.ExcludeLabels, "exclude-label", "do not report containers with this label: key, or key=glob")
	add(&ff.f.Runtimes, "include-runtime", "report only containers of this runtime: docker, containerd or cgroupfs")
	add(&ff.f.ExcludeRuntimes, "exclude-runtime", "do not report containers of this runtime")
	add(&ff.f.Namespaces, "include-namespace", "report only containers in this containerd namespace (glob; Docker's is moby, the CRI's k8s.io)")
	add(&ff.f.ExcludeNamespaces, "exclude-namespace", "do not report containers in this containerd namespace (glob)")
	return ff
}

// check rejects a rule runtime.NewFiltered would refuse, and a runtime name
// that is not a pattern and names no runtime the daemon has: a typo would
// otherwise select nothing, or exclude nothing, without a word.
func (ff *filterFlags) check() error {
	for _, rs := range [][]string{ff.f.Runtimes, ff.f.ExcludeRuntimes} {
		for _, r := range rs {
			switch {
			case strings.ContainsAny(r, `*?\`):
			case r == "docker", r == "containerd", r == "cgroupfs":
			default:
				return fmt.Errorf("-include-runtime/-exclude-runtime: unknown runtime %q: want docker, containerd or cgroupfs", r)
			}
		}
	}
	_, err := runtime.NewFiltered(nil, ff.f) // only compiles the rules
	return err
}

// wrap applies the filter (checked by check) to d; d itself when there is
// none.
func (ff *filterFlags) wrap(d runtime.Discoverer) runtime.Discoverer {
	if ff.f.IsZero() {
		return d
	}
	f, err := runtime.NewFiltered(d, ff.f)
	if err != nil {
		panic(err) // check passed: the same rules compile
	}
	return f
}
