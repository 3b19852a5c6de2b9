package profile

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseUint(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want uint64
		ok   bool
	}{
		{"plain", "42", 42, true},
		{"newline", "42\n", 42, true},
		{"leading space", "  7\t\r\n", 7, true},
		{"zero", "0\n", 0, true},
		{"max", "18446744073709551615\n", 1<<64 - 1, true},
		{"overflow", "18446744073709551616", 0, false},
		{"empty", "", 0, false},
		{"only newline", "\n", 0, false},
		{"negative", "-1", 0, false},
		{"trailing junk", "12abc", 0, false},
		{"two numbers", "1 2", 0, false},
		{"v2 max", "max\n", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseUint([]byte(c.in))
			if got != c.want || ok != c.ok {
				t.Errorf("parseUint(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestParseFlatKeyed(t *testing.T) {
	keys := []string{"inactive_file", "anon"}
	for _, c := range []struct {
		name      string
		in        string
		wantFound uint32
		want      [2]uint64
	}{
		{"both", "anon 5\nfile 9\ninactive_file 3\n", 3, [2]uint64{3, 5}},
		{"prefix is not a match", "total_inactive_file 3\nanon_thp 4\n", 0, [2]uint64{}},
		{"key as a prefix of a line", "inactive_file_x 3\ninactive_file 4\n", 1, [2]uint64{4, 0}},
		{"first occurrence wins", "anon 1\nanon 2\n", 2, [2]uint64{0, 1}},
		{"bad value, then good", "anon x\nanon 8\n", 2, [2]uint64{0, 8}},
		{"no trailing newline", "inactive_file 11", 1, [2]uint64{11, 0}},
		{"empty lines and junk", "\n\n junk\nanon\nanon 6\n", 2, [2]uint64{0, 6}},
		{"empty", "", 0, [2]uint64{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out [2]uint64
			found := parseFlatKeyed([]byte(c.in), keys, out[:])
			if found != c.wantFound {
				t.Fatalf("found = %b, want %b", found, c.wantFound)
			}
			for k := range keys {
				if found&(1<<k) != 0 && out[k] != c.want[k] {
					t.Errorf("%s = %d, want %d", keys[k], out[k], c.want[k])
				}
			}
		})
	}
}

func TestParseV1IOServicedTotal(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want uint64
		ok   bool
	}{
		{"devices", v1IOServiced(500, 20), 520, true},
		{"no devices", "Total 0\n", 0, true},
		{"device total only", "254:0 Total 5\n", 0, false},
		{"empty", "", 0, false},
		{"bad number", "Total x\n", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseV1IOServicedTotal([]byte(c.in))
			if got != c.want || ok != c.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestParseV2IOStatOps(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want uint64
		ok   bool
	}{
		{"two devices", v2IOStat(1, 2, 3, 4), 10, true},
		{"empty", "", 0, true},
		{"dios not counted", "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n", 7, true},
		{"extra keys", "8:0 rios=3 wios=4 cost.usage=99 cost.wait=1\n", 7, true},
		{"not a device line", "rios=3 wios=4\n", 0, false},
		{"bad value", "8:0 rios=3x wios=4\n", 0, false},
		{"blank lines", "\n8:0 rios=1 wios=1\n\n", 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseV2IOStatOps([]byte(c.in))
			if got != c.want || ok != c.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// Reference implementations with the strings package, against which the
// fuzzers check the hand-written parsers.

func refParseUint(s string) (uint64, bool) {
	s = strings.TrimLeft(s, " \t")
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if strings.Trim(s[end:], " \t\n\r") != "" {
		return 0, false
	}
	v, err := strconv.ParseUint(s[:end], 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

func refParseFlatKeyed(s string, keys []string) (found uint32, out []uint64) {
	out = make([]uint64, len(keys))
	for _, line := range strings.Split(s, "\n") {
		key, val, ok := strings.Cut(line, " ")
		if !ok || key == "" {
			continue
		}
		for k, want := range keys {
			if key != want || found&(1<<k) != 0 {
				continue
			}
			if v, ok := refParseUint(val); ok {
				out[k], found = v, found|1<<k
			}
		}
	}
	return found, out
}

func refParseV2IOStatOps(s string) (uint64, bool) {
	var sum uint64
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		dev, rest, ok := strings.Cut(line, " ")
		if !ok || dev == "" || strings.IndexByte(dev, ':') <= 0 {
			return 0, false
		}
		for _, field := range strings.Split(rest, " ") {
			k, v, ok := strings.Cut(field, "=")
			if !ok || (k != "rios" && k != "wios") {
				continue
			}
			n, ok := refParseUint(v)
			if !ok {
				return 0, false
			}
			sum += n
		}
	}
	return sum, true
}

func FuzzParseUint(f *testing.F) {
	for _, s := range []string{"0", "42\n", " 7 ", "18446744073709551615", "18446744073709551616", "-1", "1e3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUint([]byte(s))
		want, wantOK := refParseUint(s)
		if got != want || ok != wantOK {
			t.Errorf("parseUint(%q) = %d, %v; reference %d, %v", s, got, ok, want, wantOK)
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add(v1MemStat(100, 200))
	f.Add(v2MemStat(1, 2))
	f.Add("usage_usec 12\nuser_usec 3\n")
	f.Add("anon 1\nanon 2\ninactive_file x\n")
	keys := []string{"inactive_file", "anon", "total_inactive_file", "total_rss", "usage_usec"}
	f.Fuzz(func(t *testing.T, s string) {
		out := make([]uint64, len(keys))
		found := parseFlatKeyed([]byte(s), keys, out)
		wantFound, want := refParseFlatKeyed(s, keys)
		if found != wantFound {
			t.Fatalf("found %b, reference %b", found, wantFound)
		}
		for k := range keys {
			if found&(1<<k) != 0 && out[k] != want[k] {
				t.Errorf("%s = %d, reference %d", keys[k], out[k], want[k])
			}
		}
	})
}

func FuzzParseV2IOStatOps(f *testing.F) {
	f.Add(v2IOStat(1, 2, 3, 4))
	f.Add("")
	f.Add("8:0 rios=1 wios=x\n")
	f.Add("8:0  rios=1\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseV2IOStatOps([]byte(s))
		want, wantOK := refParseV2IOStatOps(s)
		if got != want || ok != wantOK {
			t.Errorf("got %d, %v; reference %d, %v", got, ok, want, wantOK)
		}
	})
}

func FuzzParseV1IOServicedTotal(f *testing.F) {
	f.Add(v1IOServiced(1, 2))
	f.Add("Total 0\n")
	f.Add("Total \n")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseV1IOServicedTotal([]byte(s))
		var want uint64
		var wantOK bool
		for _, line := range strings.Split(s, "\n") {
			if rest, found := strings.CutPrefix(line, "Total "); found && rest != "" {
				want, wantOK = refParseUint(rest)
				break
			}
		}
		if got != want || ok != wantOK {
			t.Errorf("got %d, %v; reference %d, %v", got, ok, want, wantOK)
		}
	})
}
