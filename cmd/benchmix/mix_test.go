package main

import (
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var testTools = tools{Python: "/usr/bin/python3", Go: "/usr/local/go/bin/go"}

func TestDeclareMB(t *testing.T) {
	tests := []struct{ peak, want int }{
		{0, 256}, {5, 256}, {128, 256}, {129, 512}, {205, 512}, {256, 512}, {257, 1024},
		{543, 2048}, {1507, 4096}, {2569, 8192}, {3083, 8192},
	}
	for _, tt := range tests {
		if got := declareMB(tt.peak); got != tt.want {
			t.Errorf("declareMB(%d) = %d, want %d", tt.peak, got, tt.want)
		}
	}
}

// The mix is what the brief of the benchmark says: 24 jobs, the same kinds
// of program as the shared mix, declarations about twice the real peak
// rounded to a power of two (at least 256 MB), three under-declared.
func TestMixTable(t *testing.T) {
	if len(mixJobs) != 24 {
		t.Errorf("%d jobs, want 24", len(mixJobs))
	}
	names := map[string]bool{}
	under := 0
	for _, j := range mixJobs {
		if names[j.Name] {
			t.Errorf("job %s twice", j.Name)
		}
		names[j.Name] = true
		if j.CPUs < 1 || j.TimeMin < 1 || j.PeakMB < 1 {
			t.Errorf("%s: cpus %d, time %d min, peak %d MB: all must be positive", j.Name, j.CPUs, j.TimeMin, j.PeakMB)
		}
		m := j.MemMB()
		if j.UnderMB > 0 {
			under++
			if m >= j.PeakMB {
				t.Errorf("%s: under-declared at %d MB, but its peak is %d MB", j.Name, m, j.PeakMB)
			}
			continue
		}
		if m < 256 || m&(m-1) != 0 || m < 2*j.PeakMB || (m > 256 && m >= 4*j.PeakMB) {
			t.Errorf("%s: declares %d MB for a %d MB peak: want ~2x rounded up to a power of two, >= 256", j.Name, m, j.PeakMB)
		}
	}
	if under != 3 {
		t.Errorf("%d jobs under-declare memory, want 3", under)
	}
	all := ""
	for _, j := range mixJobs {
		all += j.Cmd + "\n"
	}
	for _, prog := range []string{"xz ", "zstd ", "gzip ", "bzip2 ", "sort ", "md5sum ", "stress-ng ", "{py} src/ramp.py", "{go} build", " | "} {
		if !strings.Contains(all, prog) {
			t.Errorf("no job runs %q", prog)
		}
	}
}

// Every data file a command reads is among the job's Inputs (so it is
// generated), and every input is a known data file.
func TestJobInputs(t *testing.T) {
	known := map[string]bool{}
	for _, f := range dataFiles {
		known[f.Name] = true
	}
	re := regexp.MustCompile(`data/([A-Za-z0-9_.]+)`)
	for _, j := range mixJobs {
		for _, m := range re.FindAllStringSubmatch(j.Cmd, -1) {
			if !slices.Contains(j.Inputs, m[1]) {
				t.Errorf("%s reads data/%s but does not list it in Inputs", j.Name, m[1])
			}
		}
		for _, in := range j.Inputs {
			if !known[in] {
				t.Errorf("%s: input %s is not a data file", j.Name, in)
			}
		}
	}
}

func TestWriteJobsTSV(t *testing.T) {
	var b bytes.Buffer
	if err := writeJobsTSV(&b, mixJobs, testTools); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if want := "# name\tcpus\tmem_mb\ttime_min\tcommand"; lines[0] != want {
		t.Errorf("header %q, want %q", lines[0], want)
	}
	if len(lines) != 1+len(mixJobs) {
		t.Fatalf("%d lines, want %d", len(lines), 1+len(mixJobs))
	}
	for i, l := range lines[1:] {
		j := mixJobs[i]
		f := strings.SplitN(l, "\t", 5)
		want := []string{j.Name, strconv.Itoa(j.CPUs), strconv.Itoa(j.MemMB()), strconv.Itoa(j.TimeMin), j.command(testTools)}
		if !slices.Equal(f, want) {
			t.Errorf("line %d = %q, want %q", i+1, f, want)
		}
		if strings.ContainsAny(f[4], "{}") && !strings.Contains(f[4], "awk") {
			t.Errorf("line %d: placeholder left in %q", i+1, f[4])
		}
	}
	tests := []struct{ name, line string }{
		{"xz8_20m", "xz8_20m\t1\t512\t10\txz -8 -T1 -c data/text_a.20m > out/xz8_20m.xz"},
		{"py_under", "py_under\t1\t512\t10\t/usr/bin/python3 src/ramp.py 1536 32 1"},
		{"hold_3g", "hold_3g\t1\t8192\t5\tstress-ng --vm 1 --vm-bytes 3G --vm-hang 9 --vm-ops 1 --timeout 300s"},
	}
	for _, tt := range tests {
		if !slices.Contains(lines, tt.line) {
			t.Errorf("%s: no line %q", tt.name, tt.line)
		}
	}

	bad := []job{{Name: "x", CPUs: 1, PeakMB: 1, TimeMin: 1, Cmd: "a\tb"}}
	if err := writeJobsTSV(&bytes.Buffer{}, bad, testTools); err == nil {
		t.Error("a command with a tab was written")
	}
}

func TestSelectJobs(t *testing.T) {
	got, err := selectJobs([]string{"py_under", "cpu_fft", "xz6_12m"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range got {
		names = append(names, j.Name)
	}
	if want := []string{"cpu_fft", "xz6_12m", "py_under"}; !slices.Equal(names, want) {
		t.Errorf("got %v, want %v (mix order)", names, want)
	}
	if _, err := selectJobs([]string{"nope"}); err == nil {
		t.Error("an unknown job was selected")
	}
	if all, _ := selectJobs(nil); len(all) != len(mixJobs) {
		t.Errorf("no names selected %d jobs, want all %d", len(all), len(mixJobs))
	}
}

// The generators are deterministic, and a smaller file of the same kind and
// seed is a prefix of a larger one (text_a.12m is the start of text_a).
func TestGeneratorsDeterministicPrefix(t *testing.T) {
	gens := []struct {
		name      string
		write     func(*bytes.Buffer, int64, uint64) error
		lineBased bool
	}{
		{"text", func(b *bytes.Buffer, n int64, s uint64) error { return writeText(b, n, s) }, true},
		{"nums", func(b *bytes.Buffer, n int64, s uint64) error { return writeNums(b, n, s) }, true},
		{"rand", func(b *bytes.Buffer, n int64, s uint64) error { return writeRand(b, n, s) }, false},
	}
	for _, g := range gens {
		t.Run(g.name, func(t *testing.T) {
			gen := func(n int64, seed uint64) []byte {
				var b bytes.Buffer
				if err := g.write(&b, n, seed); err != nil {
					t.Fatal(err)
				}
				return b.Bytes()
			}
			small, big, again, other := gen(64<<10, 11), gen(256<<10, 11), gen(256<<10, 11), gen(256<<10, 12)
			if !bytes.Equal(big, again) {
				t.Error("same seed, different bytes")
			}
			if bytes.Equal(big, other) {
				t.Error("different seeds, same bytes")
			}
			if !bytes.HasPrefix(big, small) {
				t.Error("the smaller file is not a prefix of the larger one")
			}
			if int64(len(big)) > 256<<10 || len(big) < 250<<10 {
				t.Errorf("%d bytes for 256 KiB asked", len(big))
			}
			if g.lineBased && (!bytes.HasSuffix(small, []byte("\n")) || !bytes.HasSuffix(big, []byte("\n"))) {
				t.Error("not cut at a line end")
			}
			if !g.lineBased && len(big) != 256<<10 {
				t.Errorf("%d bytes, want exactly %d", len(big), 256<<10)
			}
		})
	}
}

func TestTextLooksLikeText(t *testing.T) {
	var b bytes.Buffer
	if err := writeText(&b, 1<<20, 11); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	words := map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 6 || len(f) > 14 {
			t.Fatalf("line of %d words: %q", len(f), l)
		}
		for _, w := range f {
			words[w]++
		}
	}
	// Zipf: a few words are very common, most are rare.
	if len(words) < 5000 {
		t.Errorf("%d distinct words in 1 MiB, want a large vocabulary", len(words))
	}
}
