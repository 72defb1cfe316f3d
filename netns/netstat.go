package netns

const fileNetstat = "net/netstat"

// parseNetstat parses net/netstat into s.TCPExt and s.IPExt. Other
// protocols (MPTcpExt, ...) are skipped. c is as for parseSNMP.
func parseNetstat(b []byte, s *Stats, c *pairCache) error {
	s.TCPExt, s.IPExt = TCPExt{}, IPExt{}
	return parsePairs(fileNetstat, b, s, c, func(proto, key []byte) *Value {
		switch string(proto) {
		case "TcpExt":
			return s.TCPExt.field(key)
		case "IpExt":
			return s.IPExt.field(key)
		}
		return nil
	})
}
