package profile

import "bytes"

// The parsers below read the cgroup stat files on the sampling hot path.
// They are hand-written on purpose: strings.Split/strings.Fields and
// strconv on string conversions allocate per line, and a sampler reads
// several files per task every second for every running task. These walk
// the bytes once, compare keys with string(b) == key (which the compiler
// does without allocating) and never allocate. They accept any input
// without panicking (see the fuzz tests), and are checked against a
// strings-based reference implementation in those tests.

// parseUint parses a decimal unsigned integer at the start of b, after
// optional spaces or tabs, and ignores trailing whitespace. It reports false
// for an empty number, a non-digit before the trailing whitespace, or an
// overflow of uint64.
func parseUint(b []byte) (uint64, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	start := i
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if i == start {
		return 0, false
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return 0, false
		}
	}
	return v, true
}

// nextLine returns the line of b starting at offset i (without its '\n')
// and the offset of the line after it.
func nextLine(b []byte, i int) (line []byte, next int) {
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return b[i:], len(b)
	}
	return b[i : i+j], i + j + 1
}

// parseFlatKeyed reads a flat-keyed cgroup file ("key value" per line, as
// in memory.stat and cpu.stat) and stores the value of keys[k] in out[k].
// It returns a bit set with bit k set when keys[k] was found with a valid
// value. len(out) must be at least len(keys); at most 32 keys. When a key
// occurs on several lines, the first with a valid value wins.
//
// Rather than walking every line it searches for each key with bytes.Index
// (vectorised), which matters for v1 memory.stat, whose total_* keys come
// after 30-odd other lines.
func parseFlatKeyed(b []byte, keys []string, out []uint64) (found uint32) {
	for k, key := range keys {
		if key == "" {
			continue
		}
		for from := 0; from < len(b); {
			i := bytes.Index(b[from:], []byte(key))
			if i < 0 {
				break
			}
			i += from
			end := i + len(key)
			from = end
			// A match must be a whole key: at a line start, followed by ' '.
			if (i > 0 && b[i-1] != '\n') || end >= len(b) || b[end] != ' ' {
				continue
			}
			line, _ := nextLine(b, end+1)
			if v, ok := parseUint(line); ok {
				out[k] = v
				found |= 1 << k
				break
			}
		}
	}
	return found
}

// parseV1IOServicedTotal returns the value of the device-less "Total N"
// line of a cgroup v1 blkio.throttle.io_serviced file (the sum over all
// devices and directions). Per-device lines ("254:0 Total N") are skipped.
func parseV1IOServicedTotal(b []byte) (uint64, bool) {
	for i := 0; i < len(b); {
		var line []byte
		line, i = nextLine(b, i)
		if len(line) > 6 && string(line[:6]) == "Total " {
			return parseUint(line[6:])
		}
	}
	return 0, false
}

// parseV2IOStatOps sums rios and wios over every device line of a cgroup
// v2 io.stat file ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. ..."). An
// empty file is valid (no IO yet) and sums to 0; a line that is not a
// device line, or a rios/wios value that does not parse, makes it report
// false.
func parseV2IOStatOps(b []byte) (uint64, bool) {
	var sum uint64
	for i := 0; i < len(b); {
		var line []byte
		line, i = nextLine(b, i)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		// The first field is the device; the rest are key=value pairs.
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 || bytes.IndexByte(line[:sp], ':') <= 0 {
			return 0, false
		}
		for j := sp + 1; j < len(line); {
			end := bytes.IndexByte(line[j:], ' ')
			if end < 0 {
				end = len(line)
			} else {
				end += j
			}
			field := line[j:end]
			j = end + 1
			eq := bytes.IndexByte(field, '=')
			if eq < 0 {
				continue
			}
			if k := field[:eq]; string(k) != "rios" && string(k) != "wios" {
				continue
			}
			v, ok := parseUint(field[eq+1:])
			if !ok {
				return 0, false
			}
			sum += v
		}
	}
	return sum, true
}
