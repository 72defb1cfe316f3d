package live

import (
	"bytes"
	"embed"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/sink"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy every answer of the handler carries:
// the page's own script, style and API only; no inline script or style, no
// plugin, no frame, no form.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// Handler returns the handler of the page, its static files and the JSON
// API, at paths relative to where it is mounted (with http.StripPrefix, it
// works beneath any prefix that ends in a slash):
//
//	/                      the page (index.html)
//	/static/live.js        its script, /static/live.css its style
//	/api/v1/containers     every container's last figures (docs/LIVE.md)
//	/api/v1/series?ref=N   one container's ring of points (docs/LIVE.md)
//
// Other paths are 404; methods other than GET and HEAD are 405.
func (k *Sink) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "live: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		switch p := strings.TrimPrefix(r.URL.Path, "/"); p {
		case "", "index.html":
			serveStatic(w, "static/index.html", "text/html; charset=utf-8")
		case "static/live.js":
			serveStatic(w, "static/live.js", "text/javascript; charset=utf-8")
		case "static/live.css":
			serveStatic(w, "static/live.css", "text/css; charset=utf-8")
		case "api/v1/containers":
			c := k.containers()
			serveJSON(w, http.StatusOK, c.appendJSON(make([]byte, 0, 512+1024*len(c.Containers))))
		case "api/v1/series":
			ref, err := strconv.ParseUint(r.URL.Query().Get("ref"), 10, 64)
			s, ok := k.seriesOf(ref)
			if err != nil || !ok {
				serveJSON(w, http.StatusNotFound, []byte(`{"error":"no container with this ref"}`))
				return
			}
			serveJSON(w, http.StatusOK, s.appendJSON(make([]byte, 0, 512+96*len(s.Time))))
		default:
			http.NotFound(w, r)
		}
	})
}

func serveStatic(w http.ResponseWriter, name, ctype string) {
	b, err := static.ReadFile(name)
	if err != nil { // embedded at build time: can not happen
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// serveJSON answers a JSON document (written with <, > and & escaped as
// \u003c...: inert even if sniffed as HTML).
func serveJSON(w http.ResponseWriter, code int, b []byte) {
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

// num is a float written as a JSON number, or null when NaN or infinite.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', 6, 64), nil
}

// nums is a column of points' figures: numbers, null where NaN.
type nums []float32

func (ns nums) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(ns)*8 + 2)
	b.WriteByte('[')
	for i, v := range ns {
		if i > 0 {
			b.WriteByte(',')
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			b.WriteString("null")
			continue
		}
		b.Write(strconv.AppendFloat(b.AvailableBuffer(), float64(v), 'g', -1, 32))
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// Containers is the answer of /api/v1/containers.
type Containers struct {
	// Time is the last snapshot's time; null before the first.
	Time *time.Time `json:"time"`
	// IntervalSeconds is the time between the last two snapshots (0
	// before the second).
	IntervalSeconds float64 `json:"interval_seconds"`
	Snapshots       uint64  `json:"snapshots"`
	// Points and MaxContainers are the ring's bounds (WithPoints,
	// WithMaxContainers).
	Points        int `json:"points"`
	MaxContainers int `json:"max_containers"`
	// DroppedPoints counts the points not kept, their container past
	// MaxContainers; NotKept is the number of containers not kept at the
	// last snapshot.
	DroppedPoints uint64      `json:"dropped_points"`
	NotKept       int         `json:"containers_not_kept"`
	Self          *Self       `json:"self"`
	Containers    []Container `json:"containers"`
}

// Self is the collector's own figures at the last snapshot (sink.Self).
type Self struct {
	ScrapeSeconds float64           `json:"scrape_seconds"`
	Containers    int               `json:"containers"`
	Namespaces    int               `json:"namespaces"`
	Errors        map[string]uint64 `json:"errors"`
}

// Container is one container in /api/v1/containers: what it is and its
// figures at the last snapshot it was in. Values the kernel did not give
// are null; an unlimited limit is -1 (as cgroup.Value writes it).
type Container struct {
	Ref          uint64            `json:"ref"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Runtime      string            `json:"runtime"`
	Namespace    string            `json:"namespace,omitempty"`
	Image        string            `json:"image"`
	PodName      string            `json:"pod_name,omitempty"`
	PodNamespace string            `json:"pod_namespace,omitempty"`
	Labels       map[string]string `json:"labels"`
	Interfaces   []string          `json:"interfaces"`
	State        string            `json:"state"` // "running" or "departed"
	LastSeen     time.Time         `json:"last_seen"`

	CPUPercent       num          `json:"cpu_percent"`
	CPULimitCores    num          `json:"cpu_limit_cores"`
	ThrottledPercent num          `json:"throttled_percent"`
	ThrottledPeriods cgroup.Value `json:"throttled_periods_total"`
	ThrottledSeconds num          `json:"throttled_seconds_total"`
	MemoryUsage      cgroup.Value `json:"memory_usage_bytes"`
	MemoryWorkingSet cgroup.Value `json:"memory_working_set_bytes"`
	MemoryLimit      cgroup.Value `json:"memory_limit_bytes"`
	Pids             cgroup.Value `json:"pids"`
	PidsLimit        cgroup.Value `json:"pids_limit"`
	OOMKills         cgroup.Value `json:"oom_kills_total"`
	Network          string       `json:"network"`
	NetworkCarrier   string       `json:"network_carrier,omitempty"`
	NetRxBytes       *uint64      `json:"net_rx_bytes_total"`
	NetTxBytes       *uint64      `json:"net_tx_bytes_total"`
	NetRxRate        num          `json:"net_rx_bytes_per_second"`
	NetTxRate        num          `json:"net_tx_bytes_per_second"`
	PSICPU           num          `json:"psi_cpu_some_avg10"`
	PSIMemory        num          `json:"psi_memory_some_avg10"`
	PSIIO            num          `json:"psi_io_some_avg10"`
}

// Series is the answer of /api/v1/series: one container's points, oldest
// first, as columns of the same length. Rates and figures that were not
// available are null.
type Series struct {
	Ref  uint64 `json:"ref"`
	Name string `json:"name"`
	// IntervalSeconds and Points as in Containers.
	IntervalSeconds float64 `json:"interval_seconds"`
	Points          int     `json:"points"`
	// Time: each point's time, Unix milliseconds (to 100 ms).
	Time             []int64      `json:"t"`
	CPUPercent       nums         `json:"cpu_percent"`
	MemoryWorkingSet nums         `json:"memory_working_set_bytes"`
	MemoryLimit      cgroup.Value `json:"memory_limit_bytes"`
	NetRxRate        nums         `json:"net_rx_bytes_per_second"`
	NetTxRate        nums         `json:"net_tx_bytes_per_second"`
	Pids             nums         `json:"pids"`
	PSICPU           nums         `json:"psi_cpu_some_avg10"`
	PSIMemory        nums         `json:"psi_memory_some_avg10"`
	PSIIO            nums         `json:"psi_io_some_avg10"`
}

func (k *Sink) containers() *Containers {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := &Containers{Snapshots: k.snapshots, IntervalSeconds: k.interval.Seconds(), Points: k.o.points,
		MaxContainers: k.o.maxContainers, DroppedPoints: k.dropped, NotKept: k.refused, Containers: []Container{}}
	if k.snapshots > 0 {
		t := k.last
		out.Time = &t
	}
	if k.self != nil {
		out.Self = &Self{ScrapeSeconds: k.self.ScrapeSeconds, Containers: k.self.Containers, Namespaces: k.self.Namespaces, Errors: map[string]uint64{}}
		for _, e := range k.self.Errors {
			out.Self.Errors[e.Stage] = e.Count
		}
	}
	for _, se := range k.series {
		in, cur := &se.info, &se.now
		c := Container{
			Ref: se.ref, ID: in.id, Name: in.name, Runtime: in.runtime, Namespace: in.namespace, Image: in.image,
			PodName: in.podName, PodNamespace: in.podNamespace, Labels: map[string]string{}, Interfaces: in.interfaces,
			State: "running", LastSeen: se.prevT,
			CPUPercent: num(cur.cpuPercent), CPULimitCores: num(math.NaN()), ThrottledPercent: num(cur.throttledPercent),
			ThrottledPeriods: cur.throttledPeriods, ThrottledSeconds: num(math.NaN()),
			MemoryUsage: cur.memUsage, MemoryWorkingSet: cur.memWS, MemoryLimit: cur.memLimit,
			Pids: cur.pids, PidsLimit: cur.pidsLimit, OOMKills: cur.oomKills,
			Network: cur.netState.String(), NetworkCarrier: cur.netCarrier,
			NetRxRate: num(cur.rxRate), NetTxRate: num(cur.txRate),
			PSICPU: num(cur.psi[0]), PSIMemory: num(cur.psi[1]), PSIIO: num(cur.psi[2]),
		}
		if c.Interfaces == nil {
			c.Interfaces = []string{}
		}
		for _, l := range in.labels {
			c.Labels[l.Key] = l.Value
		}
		if !se.gone.IsZero() {
			c.State = "departed"
		}
		switch cur.cpuLimit.State {
		case cgroup.Known:
			c.CPULimitCores = num(cur.cpuLimitCores)
		case cgroup.Unlimited:
			c.CPULimitCores = -1
		}
		if v, ok := cur.throttledNS.Get(); ok {
			c.ThrottledSeconds = num(float64(v) / 1e9)
		}
		if cur.netState == sink.NetOwn {
			rx, tx := cur.rxBytes, cur.txBytes
			c.NetRxBytes, c.NetTxBytes = &rx, &tx
		}
		out.Containers = append(out.Containers, c)
	}
	sort.Slice(out.Containers, func(i, j int) bool {
		a, b := &out.Containers[i], &out.Containers[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Ref < b.Ref
	})
	return out
}

func (k *Sink) seriesOf(ref uint64) (*Series, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, se := range k.series {
		if se.ref != ref {
			continue
		}
		n := len(se.pts)
		out := &Series{Ref: ref, Name: se.info.name, IntervalSeconds: k.interval.Seconds(), Points: k.o.points,
			MemoryLimit: se.now.memLimit, Time: make([]int64, n),
			CPUPercent: make(nums, n), MemoryWorkingSet: make(nums, n), NetRxRate: make(nums, n), NetTxRate: make(nums, n),
			Pids: make(nums, n), PSICPU: make(nums, n), PSIMemory: make(nums, n), PSIIO: make(nums, n)}
		epoch := k.epoch.UnixMilli()
		for i := range n {
			p := &se.pts[(se.head+i)%n]
			out.Time[i] = epoch + int64(p.t)*100
			out.CPUPercent[i], out.MemoryWorkingSet[i], out.NetRxRate[i], out.NetTxRate[i] = p.cpu, p.mem, p.rx, p.tx
			out.Pids[i], out.PSICPU[i], out.PSIMemory[i], out.PSIIO[i] = p.pids, p.psiCPU, p.psiMemory, p.psiIO
		}
		return out, true
	}
	return nil, false
}
