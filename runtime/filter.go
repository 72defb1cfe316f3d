package runtime

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Filter selects containers by name, label, runtime and namespace. A zero
// Filter selects every container.
//
// A container is selected when, for each of the four kinds that has
// include rules, it matches at least one of them, and it matches no exclude
// rule of any kind. So Names {"web-*", "api-*"} with ExcludeLabels
// {"tier=test"} selects the web and API containers that are not labelled
// tier=test.
//
// Patterns are globs on the whole value: "*" matches any run of characters
// (also "/" and none), "?" any one character, and every other character
// itself ("\*" and "\?" match a literal star and question mark). They are
// compiled to regular expressions, so matching takes time linear in the
// value, whatever a container names itself.
//
// Names and labels are chosen by whoever starts a container: a filter on
// them is a convenience, not a security boundary. A container can name or
// label itself into an include rule, or out of reach of an exclude rule
// meant for others; select by runtime and namespace (set by the runtime's
// operator) where that matters.
type Filter struct {
	// Names and ExcludeNames are patterns on Container.Name.
	Names, ExcludeNames []string
	// Labels and ExcludeLabels are "key" (the label is present, with any
	// value) or "key=pattern" (present with a value the pattern matches).
	// Keys are exact. Kubernetes containers carry their pod's namespace as
	// the label io.kubernetes.pod.namespace.
	Labels, ExcludeLabels []string
	// Runtimes and ExcludeRuntimes are patterns on Container.Runtime
	// ("docker", "containerd", "cgroupfs").
	Runtimes, ExcludeRuntimes []string
	// Namespaces and ExcludeNamespaces are patterns on Container.Namespace,
	// the containerd namespace: "k8s.io" for the CRI's containers, "moby"
	// for Docker's (from either adapter), "" for the cgroup tree's.
	Namespaces, ExcludeNamespaces []string
}

// ErrBadFilter reports a Filter rule that can not be used (an empty
// pattern or label key). Errors from NewFiltered wrap it.
var ErrBadFilter = errors.New("bad container filter")

// IsZero reports whether f selects every container.
func (f Filter) IsZero() bool {
	return len(f.Names)+len(f.ExcludeNames)+len(f.Labels)+len(f.ExcludeLabels)+
		len(f.Runtimes)+len(f.ExcludeRuntimes)+len(f.Namespaces)+len(f.ExcludeNamespaces) == 0
}

// matcher is a compiled Filter.
type matcher struct {
	names, runtimes, namespaces          []*regexp.Regexp
	xnames, xruntimes, xnamespaces       []*regexp.Regexp
	labels, xlabels                      []labelRule
	hasNames, hasRuntimes, hasNamespaces bool
}

type labelRule struct {
	key   string
	value *regexp.Regexp // nil: any value
}

// glob compiles a pattern into an anchored regular expression.
func glob(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '\\':
			if i+1 < len(p) {
				i++
			}
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString(`)$`)
	return regexp.Compile(b.String())
}

func globs(kind string, ps []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range ps {
		if p == "" {
			return nil, fmt.Errorf("%w: %s: empty pattern", ErrBadFilter, kind)
		}
		re, err := glob(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q: %v", ErrBadFilter, kind, p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func labelRules(kind string, ls []string) ([]labelRule, error) {
	var out []labelRule
	for _, l := range ls {
		k, v, hasValue := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf("%w: %s %q: empty label key", ErrBadFilter, kind, l)
		}
		r := labelRule{key: k}
		if hasValue {
			re, err := glob(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s %q: %v", ErrBadFilter, kind, l, err)
			}
			r.value = re
		}
		out = append(out, r)
	}
	return out, nil
}

func (f Filter) compile() (*matcher, error) {
	m := &matcher{hasNames: len(f.Names) > 0, hasRuntimes: len(f.Runtimes) > 0, hasNamespaces: len(f.Namespaces) > 0}
	var errs []error
	add := func(dst *[]*regexp.Regexp, kind string, ps []string) {
		re, err := globs(kind, ps)
		*dst = re
		errs = append(errs, err)
	}
	add(&m.names, "name", f.Names)
	add(&m.xnames, "exclude name", f.ExcludeNames)
	add(&m.runtimes, "runtime", f.Runtimes)
	add(&m.xruntimes, "exclude runtime", f.ExcludeRuntimes)
	add(&m.namespaces, "namespace", f.Namespaces)
	add(&m.xnamespaces, "exclude namespace", f.ExcludeNamespaces)
	var err error
	m.labels, err = labelRules("label", f.Labels)
	errs = append(errs, err)
	m.xlabels, err = labelRules("exclude label", f.ExcludeLabels)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func (r labelRule) match(labels map[string]string) bool {
	v, ok := labels[r.key]
	return ok && (r.value == nil || r.value.MatchString(v))
}

func anyLabel(rules []labelRule, labels map[string]string) bool {
	for _, r := range rules {
		if r.match(labels) {
			return true
		}
	}
	return false
}

func (m *matcher) selects(c *Container) bool {
	switch {
	case m.hasNames && !anyMatch(m.names, c.Name),
		len(m.labels) > 0 && !anyLabel(m.labels, c.Labels),
		m.hasRuntimes && !anyMatch(m.runtimes, c.Runtime),
		m.hasNamespaces && !anyMatch(m.namespaces, c.Namespace):
		return false
	}
	return !anyMatch(m.xnames, c.Name) && !anyLabel(m.xlabels, c.Labels) &&
		!anyMatch(m.xruntimes, c.Runtime) && !anyMatch(m.xnamespaces, c.Namespace)
}

// Filtered is a Discoverer that reports only the containers a Filter
// selects, from another Discoverer.
//
// List drops the others. Watch drops the started events of the others and
// passes every other event on: a stop or removal event may carry no more
// than the container's ID and runtime, too little to judge, and a consumer
// that never tracked the container ignores it. A container that a later
// listing shows renamed or relabelled out of the filter is no longer
// listed, so a consumer that reconciles with List (metricsd.Collector)
// stops tracking it then.
type Filtered struct {
	d Discoverer
	m *matcher
}

var _ Discoverer = (*Filtered)(nil)

// NewFiltered wraps d. It fails, with an error matching ErrBadFilter, when a
// rule of f can not be used. Closing the Filtered closes d.
func NewFiltered(d Discoverer, f Filter) (*Filtered, error) {
	m, err := f.compile()
	if err != nil {
		return nil, err
	}
	return &Filtered{d: d, m: m}, nil
}

// Selects reports whether the filter selects c.
func (f *Filtered) Selects(c *Container) bool { return f.m.selects(c) }

// Unwrap returns the wrapped Discoverer.
func (f *Filtered) Unwrap() Discoverer { return f.d }

// Name is the wrapped Discoverer's name.
func (f *Filtered) Name() string { return f.d.Name() }

// List lists the wrapped Discoverer's containers that the filter selects.
func (f *Filtered) List(ctx context.Context) ([]Container, error) {
	cs, err := f.d.List(ctx)
	var partial *PartialError
	if err != nil && !errors.As(err, &partial) {
		return nil, err
	}
	kept := cs[:0]
	for i := range cs {
		if f.m.selects(&cs[i]) {
			kept = append(kept, cs[i])
		}
	}
	clear(cs[len(kept):])
	return kept, err // a *PartialError: the others, as listed
}

// Watch streams the wrapped Discoverer's events without the started events
// of containers the filter does not select. The channel closes when the
// wrapped one does.
func (f *Filtered) Watch(ctx context.Context) (<-chan Event, error) {
	in, err := f.d.Watch(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan Event, cap(in))
	go func() {
		defer close(out)
		for ev := range in {
			if ev.Type == EventStarted && !f.m.selects(&ev.Container) {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				for range in { // let the wrapped watcher end
				}
				return
			}
		}
	}()
	return out, nil
}

// Close closes the wrapped Discoverer.
func (f *Filtered) Close() error { return f.d.Close() }
