package sink

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/metricsd/metricsd/runtime"
)

// Tags is the allow-list of container attributes that become tags (InfluxDB,
// stdout) or labels (Prometheus). Nothing else does: in particular a
// container label becomes a tag only when it is listed in Labels, because
// exporting every label (cAdvisor's default) multiplies series without
// bound.
//
// The tag keys are fixed:
//
//	id         Container.ID (Prometheus: the cgroup path, as cAdvisor does; see sink/prometheus)
//	name       Container.Name
//	image      Container.Image
//	runtime    Container.Runtime
//	pod        Container.Pod.Name          } with Pod, for containers a
//	namespace  Container.Pod.Namespace     } kubelet made; empty (InfluxDB:
//	container  Container.Pod.Container     } omitted) for the others
//
// and, per entry of Labels, the tag it names, and the Global tags.
type Tags struct {
	ID, Name, Image, Runtime, Pod bool
	// RuntimeNamespace adds the tag runtime_namespace: Container.Namespace,
	// the containerd namespace ("moby", "k8s.io", or a plain containerd
	// user's own), which with the name identifies a containerd container
	// whose ID is not a 64-digit hash. Not in DefaultTags.
	RuntimeNamespace bool
	// Labels lists the container labels to export and the tag each becomes.
	Labels []LabelTag
	// Info adds a container_info series per container (a point in
	// InfluxDB and stdout, a series in Prometheus and remote_write, a
	// metric in OTLP) that carries every tag of the container once, with
	// the value 1 (the point: paused and start_time_s). Not in
	// DefaultTags: one more series per container.
	Info bool
	// InfoOnly writes container_info (it implies Info) and puts the
	// container's tags on it only: every other series and point carries the
	// id tag and the Global tags alone, and joins container_info on id
	// (in PromQL: "* on(id) group_left(name, image) container_info"). A
	// host's series then change only when a container comes or goes, not
	// when one of its labels does, and carry one label instead of seven or
	// more (google/cadvisor#2876). It needs ID. The OTLP sink keeps the
	// tags on each container's resource, OpenTelemetry's own place for
	// them, whatever InfoOnly says. Not in DefaultTags.
	InfoOnly bool
	// Global tags have fixed values and go on every point and series, the
	// collector's own (Snapshot.Self) included: the host's name (the
	// daemon's "host" tag), a cluster, an environment. Without them hosts
	// writing to one InfluxDB overwrite each other's points. A key follows
	// the rules of a LabelTag's; a value may not be empty, and must be
	// valid UTF-8 without control characters.
	Global []Tag
}

// LabelTag exports one container label as a tag.
type LabelTag struct {
	// Label is the container label's key, e.g. "com.example.team".
	Label string
	// Tag is the tag (or Prometheus label) name; empty means cAdvisor's
	// name for it: "container_label_" + Label with every character outside
	// [a-zA-Z0-9_] replaced by '_' ("container_label_com_example_team").
	Tag string
}

// DefaultTags is id, name, image, runtime and the pod tags, and no container
// label.
func DefaultTags() Tags {
	return Tags{ID: true, Name: true, Image: true, Runtime: true, Pod: true}
}

// Tag is one tag: a key and its value.
type Tag struct{ Key, Value string }

// The tag keys a sink's points add besides the container's (device,
// interface, ...). A LabelTag may not use them.
var reservedKeys = []string{"cpu", "device", "interface", "page_size", "resource", "state", "failure_type", "scope", "pagesize", "tcp_state", "udp_state", "event", "window", "le", "quantile", "job", "instance"}

type source uint8

const (
	srcID source = iota
	srcName
	srcImage
	srcRuntime
	srcPod
	srcNamespace
	srcContainer
	srcRuntimeNamespace
	srcLabel
	srcGlobal
)

type tagSpec struct {
	key   string
	src   source
	label string // srcLabel: the label; srcGlobal: the value
}

// Tagger is a compiled Tags: the tag keys in lexical order and how to fill
// them from a container. It is immutable and safe for concurrent use.
//
// Keys, Append and Values give the tags of a container's series; InfoKeys,
// AppendInfo and InfoValues those of its container_info series. They are
// the same unless Tags.InfoOnly is set: then the series have id and the
// global tags only.
type Tagger struct {
	specs    []tagSpec // the series' tags
	keys     []string
	info     []tagSpec // container_info's tags: every tag
	infoKeys []string
	global   []Tag // sorted by key
	// writeInfo: container_info is written (Tags.Info or Tags.InfoOnly).
	writeInfo bool
}

// NewTagger checks t and compiles it. It fails on a tag name that is not
// [a-zA-Z_][a-zA-Z0-9_]*, starts with "__", is used twice, or is one a sink
// uses for its own purposes (device, interface, ...).
func NewTagger(t Tags) (*Tagger, error) {
	var specs []tagSpec
	add := func(on bool, key string, src source) {
		if on {
			specs = append(specs, tagSpec{key: key, src: src})
		}
	}
	add(t.ID, "id", srcID)
	add(t.Name, "name", srcName)
	add(t.Image, "image", srcImage)
	add(t.Runtime, "runtime", srcRuntime)
	add(t.Pod, "pod", srcPod)
	add(t.Pod, "namespace", srcNamespace)
	add(t.Pod, "container", srcContainer)
	add(t.RuntimeNamespace, "runtime_namespace", srcRuntimeNamespace)
	var errs []error
	for _, l := range t.Labels {
		if l.Label == "" {
			errs = append(errs, errors.New("sink: a LabelTag with an empty Label"))
			continue
		}
		key := l.Tag
		if key == "" {
			key = LabelTagName(l.Label)
		}
		if !validTagKey(key) {
			errs = append(errs, fmt.Errorf("sink: tag name %q for label %q: want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __", key, l.Label))
			continue
		}
		if slices.Contains(reservedKeys, key) {
			errs = append(errs, fmt.Errorf("sink: tag name %q for label %q is reserved", key, l.Label))
			continue
		}
		specs = append(specs, tagSpec{key: key, src: srcLabel, label: l.Label})
	}
	var global []Tag
	for _, g := range t.Global {
		switch {
		case !validTagKey(g.Key):
			errs = append(errs, fmt.Errorf("sink: global tag name %q: want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __", g.Key))
		case slices.Contains(reservedKeys, g.Key):
			errs = append(errs, fmt.Errorf("sink: global tag name %q is reserved", g.Key))
		case g.Value == "":
			errs = append(errs, fmt.Errorf("sink: global tag %q has an empty value", g.Key))
		case !NewSanitizer(Limits{MaxValueLen: -1}).Clean(g.Value):
			errs = append(errs, fmt.Errorf("sink: global tag %q: %q is not valid UTF-8 or has control characters", g.Key, g.Value))
		default:
			specs = append(specs, tagSpec{key: g.Key, src: srcGlobal, label: g.Value})
			global = append(global, g)
		}
	}
	slices.SortFunc(global, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	slices.SortStableFunc(specs, func(a, b tagSpec) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(specs); i++ {
		if specs[i].key == specs[i-1].key {
			errs = append(errs, fmt.Errorf("sink: tag name %q used twice", specs[i].key))
		}
	}
	if t.InfoOnly && !t.ID {
		errs = append(errs, errors.New("sink: Tags.InfoOnly needs Tags.ID: the series join container_info on id"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	tg := &Tagger{specs: specs, info: specs, global: global, writeInfo: t.Info || t.InfoOnly}
	if t.InfoOnly {
		tg.specs = nil
		for _, s := range specs {
			if s.src == srcID || s.src == srcGlobal {
				tg.specs = append(tg.specs, s)
			}
		}
	}
	for _, s := range tg.specs {
		tg.keys = append(tg.keys, s.key)
	}
	for _, s := range tg.info {
		tg.infoKeys = append(tg.infoKeys, s.key)
	}
	return tg, nil
}

// MustTagger is NewTagger that panics on error, for Tags known to be valid
// such as DefaultTags().
func MustTagger(t Tags) *Tagger {
	tg, err := NewTagger(t)
	if err != nil {
		panic(err)
	}
	return tg
}

// Keys returns the tag keys of a container's series in lexical order. The
// caller must not modify it.
func (tg *Tagger) Keys() []string { return tg.keys }

// InfoKeys returns the tag keys of a container's container_info series in
// lexical order: every tag. The caller must not modify it.
func (tg *Tagger) InfoKeys() []string { return tg.infoKeys }

// InfoOnly reports whether the container tags go on container_info only
// (Tags.InfoOnly).
func (tg *Tagger) InfoOnly() bool { return len(tg.info) != len(tg.specs) }

// Info reports whether container_info is written (Tags.Info or
// Tags.InfoOnly).
func (tg *Tagger) Info() bool { return tg.writeInfo }

// Global returns the global tags (Tags.Global) sorted by key: the only
// tags of the collector's own points and series. The caller must not
// modify it.
func (tg *Tagger) Global() []Tag { return tg.global }

// Append appends c's series tags to dst, one per key in Keys order (so
// sorted by key); a tag whose attribute c does not have gets an empty
// Value.
func (tg *Tagger) Append(dst []Tag, c *runtime.Container) []Tag {
	return tg.appendTags(dst, tg.specs, c)
}

// AppendInfo appends c's container_info tags to dst, in InfoKeys order.
func (tg *Tagger) AppendInfo(dst []Tag, c *runtime.Container) []Tag {
	return tg.appendTags(dst, tg.info, c)
}

func (tg *Tagger) appendTags(dst []Tag, specs []tagSpec, c *runtime.Container) []Tag {
	for _, s := range specs {
		dst = append(dst, Tag{Key: s.key, Value: tg.value(&s, c)})
	}
	return dst
}

// SeriesFromInfo appends to dst the series tags (Keys) taken from info, a
// container's tags in InfoKeys order as AppendInfo gives them (sanitised,
// perhaps): the same tags, or with InfoOnly id and the global ones.
func (tg *Tagger) SeriesFromInfo(dst, info []Tag) []Tag {
	if !tg.InfoOnly() {
		return append(dst, info...)
	}
	j := 0
	for _, t := range info {
		if j < len(tg.keys) && t.Key == tg.keys[j] {
			dst = append(dst, t)
			j++
		}
	}
	return dst
}

// Values appends c's series tag values to dst in Keys order.
func (tg *Tagger) Values(dst []string, c *runtime.Container) []string {
	for _, s := range tg.specs {
		dst = append(dst, tg.value(&s, c))
	}
	return dst
}

// InfoValues appends c's container_info tag values to dst in InfoKeys
// order.
func (tg *Tagger) InfoValues(dst []string, c *runtime.Container) []string {
	for _, s := range tg.info {
		dst = append(dst, tg.value(&s, c))
	}
	return dst
}

func (tg *Tagger) value(s *tagSpec, c *runtime.Container) string {
	switch s.src {
	case srcID:
		return c.ID
	case srcName:
		return c.Name
	case srcImage:
		return c.Image
	case srcRuntime:
		return c.Runtime
	case srcPod:
		if c.Pod != nil {
			return c.Pod.Name
		}
	case srcNamespace:
		if c.Pod != nil {
			return c.Pod.Namespace
		}
	case srcContainer:
		if c.Pod != nil {
			return c.Pod.Container
		}
	case srcRuntimeNamespace:
		return c.Namespace
	case srcLabel:
		return c.Labels[s.label]
	case srcGlobal:
		return s.label
	}
	return ""
}

// LabelTagName is cAdvisor's name for a container label exported as a
// Prometheus label: "container_label_" + label with every character outside
// [a-zA-Z0-9_] replaced by '_'.
func LabelTagName(label string) string {
	b := []byte("container_label_")
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}

func validTagKey(k string) bool {
	if k == "" || strings.HasPrefix(k, "__") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
