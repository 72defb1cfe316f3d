package cgroup

import (
	"bytes"
	"strings"

	"github.com/metricsd/metricsd/internal/parse"
)

// mount is one cgroup or cgroup2 line of a mountinfo file.
type mount struct {
	// point is where the hierarchy is mounted, as the mountinfo shows it.
	point string
	// root is the directory of the hierarchy that is mounted there, relative
	// to the reader's cgroup namespace ("/", "/docker/<id>", "/..").
	root string
	// v2 is true for cgroup2.
	v2 bool
	// controllers lists a v1 mount's controllers from its super options
	// ("cpu", "cpuacct", "name=systemd"); empty for cgroup2.
	controllers []string
}

// parseMountinfo returns the cgroup and cgroup2 mounts of a
// /proc/<pid>/mountinfo file (see proc(5)). Other lines are skipped; a cgroup
// line too short to hold the fields proc(5) names is a parse error.
func parseMountinfo(b []byte) ([]mount, error) {
	var mounts []mount
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = parse.Line(b)
		if len(parse.TrimSpace(line)) == 0 {
			continue
		}
		// Fields: id parent maj:min root point options [optional...] - fstype source superopts
		pre, post, ok := bytes.Cut(line, []byte(" - "))
		if !ok {
			return nil, errAt(n, parse.ErrSyntax)
		}
		fstype, rest := parse.Field(post)
		if !bytes.Equal(fstype, []byte("cgroup")) && !bytes.Equal(fstype, []byte("cgroup2")) {
			continue
		}
		var f [6][]byte
		for i := range f {
			f[i], pre = parse.Field(pre)
			if len(f[i]) == 0 {
				return nil, errAt(n, parse.ErrSyntax)
			}
		}
		_, rest = parse.Field(rest) // source
		superOpts, _ := parse.Field(rest)
		m := mount{
			root:  unescapeOctal(string(f[3])),
			point: unescapeOctal(string(f[4])),
			v2:    string(fstype) == "cgroup2",
		}
		if !m.v2 {
			for _, o := range strings.Split(string(superOpts), ",") {
				switch o {
				case "rw", "ro", "", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods", "nsdelegate":
				default:
					if strings.HasPrefix(o, "release_agent=") {
						continue
					}
					m.controllers = append(m.controllers, o)
				}
			}
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
}

// unescapeOctal undoes the \NNN escapes the kernel writes for space, tab,
// newline and backslash in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			sb.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
