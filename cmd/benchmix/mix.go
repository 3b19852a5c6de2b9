package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// job is one program of the mix and what its user declares for it.
type job struct {
	Name string
	CPUs int // declared cores: sbatch --cpus-per-task, prescient submit --cpu
	// PeakMB is the job's real peak memory (working set, MB), measured with
	// the job alone on the reference 2-core machine; the declaration follows
	// from it (declareMB) unless UnderMB is set.
	PeakMB int
	// UnderMB, when nonzero, is a memory declaration below the real peak: the
	// user guessed too low, as happens in real life.
	UnderMB int
	TimeMin int      // declared time limit (sbatch --time), generously rounded up
	Inputs  []string // files under data/ the job reads, generated on demand
	// Cmd is run by bash with the mix directory as working directory;
	// {py} and {go} stand for the python3 and go binaries found at
	// generation time.
	Cmd string
}

// MemMB is the job's declared memory in MB.
func (j job) MemMB() int {
	if j.UnderMB > 0 {
		return j.UnderMB
	}
	return declareMB(j.PeakMB)
}

// declareMB is what a typical user declares for a program whose peak is
// peakMB: about twice the peak, rounded up to a power of two, at least 256 MB.
func declareMB(peakMB int) int {
	m := 256
	for m < 2*peakMB {
		m *= 2
	}
	return m
}

// mixJobs is the whole mix: 24 real programs of the kinds a batch node runs
// (compressors, sorts, checksums, CPU and memory stressors, python memory
// ramps, a Go build, a shell pipeline). Every job is work-based (fixed input,
// --cpu-ops/--vm-ops), so it does the same work whatever the contention. The
// hold_* jobs touch X bytes and then sleep: stress-ng --vm-hang H --vm-ops 1
// holds for about 2*H s after populating. Peaks are from a run of the same
// programs on the same inputs on the reference machine (2 cores, 24 GiB).
var mixJobs = []job{
	{Name: "xz8_20m", CPUs: 1, PeakMB: 205, TimeMin: 10, Inputs: []string{"text_a.20m"}, Cmd: "xz -8 -T1 -c data/text_a.20m > out/xz8_20m.xz"},
	{Name: "hold_1500m", CPUs: 1, PeakMB: 1507, TimeMin: 5, Cmd: "stress-ng --vm 1 --vm-bytes 1500M --vm-hang 10 --vm-ops 1 --timeout 300s"},
	{Name: "sort_cols", CPUs: 1, PeakMB: 543, TimeMin: 10, Inputs: []string{"text_a"}, Cmd: "TMPDIR=tmp sort -k3,3 -k1,1 --parallel=1 data/text_a > out/sort_cols.txt"},
	{Name: "cpu_fft", CPUs: 1, PeakMB: 5, TimeMin: 5, Cmd: "stress-ng --cpu 1 --cpu-method fft --cpu-ops 9000 --timeout 300s"},
	{Name: "py_ramp_2500", CPUs: 1, PeakMB: 2569, TimeMin: 10, Cmd: "{py} src/ramp.py 2560 32 2"},
	{Name: "gzip6_96m", CPUs: 1, PeakMB: 15, TimeMin: 5, Inputs: []string{"text_a.96m"}, Cmd: "gzip -6 -c data/text_a.96m > out/gzip6_96m.gz"},
	{Name: "zstd_under", CPUs: 1, PeakMB: 710, UnderMB: 256, TimeMin: 10, Inputs: []string{"text_b"}, Cmd: "sh -c 'zstd -22 --ultra -T1 -q -c data/text_b > out/zstd_under.zst'"},
	{Name: "go_build", CPUs: 2, PeakMB: 286, TimeMin: 10, Cmd: `rm -rf tmp/gocache && cd src/gobuild && GOCACHE="$OLDPWD/tmp/gocache" GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod {go} build -p 2 -o "$OLDPWD/out/gobuild" .`},
	{Name: "hold_768m", CPUs: 1, PeakMB: 774, TimeMin: 5, Cmd: "stress-ng --vm 1 --vm-bytes 768M --vm-hang 18 --vm-ops 1 --timeout 300s"},
	{Name: "zstd15_20m", CPUs: 1, PeakMB: 94, TimeMin: 10, Inputs: []string{"text_a.20m"}, Cmd: "zstd -15 -T1 -q -c data/text_a.20m > out/zstd15_20m.zst"},
	{Name: "sort_par2", CPUs: 2, PeakMB: 604, TimeMin: 10, Inputs: []string{"text_a"}, Cmd: "TMPDIR=tmp sort --parallel=2 -k2,2 data/text_a > out/sort_par2.txt"},
	{Name: "vm_churn_384m", CPUs: 1, PeakMB: 389, TimeMin: 5, Cmd: "stress-ng --vm 1 --vm-bytes 384M --vm-ops 250000 --timeout 300s"},
	{Name: "xz6_12m", CPUs: 1, PeakMB: 94, TimeMin: 5, Inputs: []string{"text_a.12m"}, Cmd: "xz -6 -T1 -c data/text_a.12m > out/xz6_12m.xz"},
	{Name: "hold_3g", CPUs: 1, PeakMB: 3083, TimeMin: 5, Cmd: "stress-ng --vm 1 --vm-bytes 3G --vm-hang 9 --vm-ops 1 --timeout 300s"},
	{Name: "md5_768m", CPUs: 1, PeakMB: 39, TimeMin: 5, Inputs: []string{"rand_768m", "text_a"}, Cmd: "md5sum data/rand_768m data/text_a > out/md5_768m.txt"},
	{Name: "py_under", CPUs: 1, PeakMB: 1543, UnderMB: 512, TimeMin: 10, Cmd: "{py} src/ramp.py 1536 32 1"},
	{Name: "cpu_int", CPUs: 1, PeakMB: 5, TimeMin: 5, Cmd: "stress-ng --cpu 1 --cpu-method int64 --cpu-ops 20000 --timeout 300s"},
	{Name: "xz4_mt", CPUs: 2, PeakMB: 136, TimeMin: 10, Inputs: []string{"text_b"}, Cmd: "xz -4 -T2 -c data/text_b > out/xz4_mt.xz"},
	{Name: "sort_nums", CPUs: 1, PeakMB: 256, TimeMin: 10, Inputs: []string{"nums"}, Cmd: "TMPDIR=tmp sort -n -k3,3 --parallel=1 data/nums > out/sort_nums.txt"},
	{Name: "bzip2_96m", CPUs: 1, PeakMB: 25, TimeMin: 5, Inputs: []string{"text_a.96m"}, Cmd: "bzip2 -6 -c data/text_a.96m > out/bzip2_96m.bz2"},
	{Name: "hold_1200m", CPUs: 1, PeakMB: 1207, TimeMin: 5, Cmd: "stress-ng --vm 1 --vm-bytes 1200M --vm-hang 11 --vm-ops 1 --timeout 300s"},
	{Name: "cpu2_mix", CPUs: 2, PeakMB: 8, TimeMin: 5, Cmd: "stress-ng --cpu 2 --cpu-ops 24000 --timeout 300s"},
	{Name: "pipe_under", CPUs: 1, PeakMB: 613, UnderMB: 384, TimeMin: 10, Inputs: []string{"text_a", "text_c"}, Cmd: "cat data/text_a data/text_c | TMPDIR=tmp sort -S 60% -k2,2 --parallel=1 | gzip -1 > out/pipe_under.gz"},
	{Name: "xz9_28m", CPUs: 1, PeakMB: 279, TimeMin: 10, Inputs: []string{"text_c"}, Cmd: "xz -9 -T1 -c data/text_c > out/xz9_28m.xz"},
}

// dataKind says how a data file is generated.
type dataKind int

const (
	kindText dataKind = iota // word-like text, Zipf vocabulary
	kindNums                 // numeric records: id, float, int
	kindRand                 // random bytes
)

// dataFile is one generated input. Files of the same kind and seed are
// prefixes of one another (text_a.12m is the first 12 MiB of text_a, cut at
// a line end).
type dataFile struct {
	Name string
	MiB  int64
	Kind dataKind
	Seed uint64
}

var dataFiles = []dataFile{
	{"text_a", 320, kindText, 11},
	{"text_a.12m", 12, kindText, 11},
	{"text_a.20m", 20, kindText, 11},
	{"text_a.96m", 96, kindText, 11},
	{"text_b", 48, kindText, 12},
	{"text_c", 28, kindText, 15},
	{"nums", 80, kindNums, 13},
	{"rand_768m", 768, kindRand, 14},
}

// genVersion changes whenever the generators' output changes; files written
// by another version are generated again.
const genVersion = "benchmix-data-2"

// tools are the programs the commands name by placeholder.
type tools struct{ Python, Go string }

// findTools locates python3 (the system one first, as a batch job would)
// and go.
func findTools() (tools, error) {
	var t tools
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			t.Python = path
			break
		}
	}
	if t.Python == "" {
		return t, fmt.Errorf("python3 not found: %w", exec.ErrNotFound)
	}
	path, err := exec.LookPath("go")
	if err != nil {
		return t, fmt.Errorf("go: %w", err)
	}
	t.Go = path
	return t, nil
}

// command is j's shell command with the placeholders filled in.
func (j job) command(t tools) string {
	return strings.NewReplacer("{py}", t.Python, "{go}", t.Go).Replace(j.Cmd)
}

// selectJobs returns the jobs of the mix named in names (all of them for
// an empty list), in mix order.
func selectJobs(names []string) ([]job, error) {
	if len(names) == 0 {
		return mixJobs, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []job
	for _, j := range mixJobs {
		if want[j.Name] {
			out = append(out, j)
			delete(want, j.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("no job %q in the mix", n)
	}
	return out, nil
}

// writeJobsTSV writes jobs in the shared harness's format: a comment header
// and one tab-separated line per job: name cpus mem_mb time_min command.
func writeJobsTSV(w io.Writer, jobs []job, t tools) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# name\tcpus\tmem_mb\ttime_min\tcommand\n")
	for _, j := range jobs {
		cmd := j.command(t)
		if strings.ContainsAny(cmd, "\t\n") {
			return fmt.Errorf("job %s: command holds a tab or newline", j.Name)
		}
		fmt.Fprintf(bw, "%s\t%d\t%d\t%d\t%s\n", j.Name, j.CPUs, j.MemMB(), j.TimeMin, cmd)
	}
	return bw.Flush()
}

// generate writes the mix for jobs under dir: jobs.tsv, src/ (the python
// ramp, a small Go module) and the data files the jobs read (data/, only
// those missing or written by another generator version). It is
// deterministic: the same bytes on every machine.
func generate(dir string, jobs []job, t tools, logf func(string, ...any)) error {
	for _, d := range []string{"data", "src/gobuild", "out", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	for name, body := range sources {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	need := map[string]bool{}
	for _, j := range jobs {
		for _, in := range j.Inputs {
			need[in] = true
		}
	}
	for _, f := range dataFiles {
		if !need[f.Name] {
			continue
		}
		if err := ensureData(filepath.Join(dir, "data"), f, logf); err != nil {
			return err
		}
	}
	var b strings.Builder
	if err := writeJobsTSV(&b, jobs, t); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "jobs.tsv"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

// ensureData generates f under dataDir unless a file of this generator
// version is there (a NAME.version stamp written after the file).
func ensureData(dataDir string, f dataFile, logf func(string, ...any)) error {
	path := filepath.Join(dataDir, f.Name)
	stamp := path + ".version"
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == genVersion {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
	logf("generating data/%s (%d MiB)", f.Name, f.MiB)
	tmp := path + ".part"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("generate %s: %w", f.Name, err)
	}
	err = writeData(out, f)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = os.WriteFile(stamp, []byte(genVersion+"\n"), 0o644)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("generate %s: %w", f.Name, err)
	}
	return nil
}

// writeData writes f's bytes to w.
func writeData(w io.Writer, f dataFile) error {
	size := f.MiB << 20
	switch f.Kind {
	case kindText:
		return writeText(w, size, f.Seed)
	case kindNums:
		return writeNums(w, size, f.Seed)
	case kindRand:
		return writeRand(w, size, f.Seed)
	}
	return fmt.Errorf("data kind %d unknown", f.Kind)
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// writeText writes word-like text, at most size bytes, cut at a line end:
// 6..14 words a line from a 50,000-word vocabulary of English-like letter
// frequencies, word ranks Zipf-like, so compressors and sorts see something
// like prose.
func writeText(w io.Writer, size int64, seed uint64) error {
	r := newRand(seed)
	const letters = "etaoinshrdlcumwfgypbvkjxqz"
	weights := []int{12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1}
	var pick []byte // letters repeated by weight: a uniform pick is a weighted one
	for i, wt := range weights {
		for range wt {
			pick = append(pick, letters[i])
		}
	}
	vocab := make([][]byte, 50000)
	for i := range vocab {
		word := make([]byte, 2+r.IntN(10))
		for k := range word {
			word[k] = pick[r.IntN(len(pick))]
		}
		vocab[i] = word
	}
	// Zipf–Mandelbrot ranks: P(rank i) ∝ (i+10)^-0.9, drawn by inverting the
	// cumulative weights.
	cum := make([]float64, len(vocab))
	acc := 0.0
	for i := range cum {
		acc += math.Pow(float64(i+10), -0.9)
		cum[i] = acc
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	for n := int64(0); ; {
		line = line[:0]
		for k := range 6 + r.IntN(9) {
			if k > 0 {
				line = append(line, ' ')
			}
			line = append(line, vocab[min(sort.SearchFloat64s(cum, r.Float64()*acc), len(vocab)-1)]...)
		}
		line = append(line, '\n')
		if n+int64(len(line)) > size {
			break
		}
		if _, err := bw.Write(line); err != nil {
			return err
		}
		n += int64(len(line))
	}
	return bw.Flush()
}

// writeNums writes numeric records "id float int", at most size bytes: ids
// below 10^9, floats log-normal over many magnitudes with either sign.
func writeNums(w io.Writer, size int64, seed uint64) error {
	r := newRand(seed)
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	for n := int64(0); ; {
		line = strconv.AppendInt(line[:0], r.Int64N(1e9), 10)
		line = append(line, ' ')
		x := math.Exp(4 * r.NormFloat64())
		if r.IntN(2) == 0 {
			x = -x
		}
		line = strconv.AppendFloat(line, x, 'g', 6, 64)
		line = append(line, ' ')
		line = strconv.AppendInt(line, r.Int64N(1000), 10)
		line = append(line, '\n')
		if n+int64(len(line)) > size {
			break
		}
		if _, err := bw.Write(line); err != nil {
			return err
		}
		n += int64(len(line))
	}
	return bw.Flush()
}

// writeRand writes size pseudo-random bytes (ChaCha8 from seed).
func writeRand(w io.Writer, size int64, seed uint64) error {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	_, err := io.CopyN(w, rand.NewChaCha8(key), size)
	return err
}

// sources are the mix's small source files, by path under the mix dir.
var sources = map[string]string{
	"src/ramp.py": `# Memory ramp: grow to PEAK_MB in STEP_MB steps (touch + hash each step),
# hold while hashing the held memory PASSES times, then shrink step by step.
import hashlib, sys
peak_mb, step_mb, passes = (int(a) for a in sys.argv[1:4])
h = hashlib.sha256()
chunks = []
for i in range(peak_mb // step_mb):
    b = bytearray(step_mb * 2**20)
    for j in range(0, len(b), 4096):
        b[j] = (i + j) & 255
    h.update(b)
    chunks.append(b)
for _ in range(passes):
    for b in chunks:
        h.update(b)
while chunks:
    b = chunks.pop()
    h.update(b[: 2**20])
print(h.hexdigest())
`,
	"src/gobuild/go.mod": "module example.com/gobuild\n\ngo 1.22\n",
	"src/gobuild/main.go": `// A small program whose build compiles a good part of the standard
// library (net/http, crypto/tls, encoding/json, text/template, compress/gzip).
package main

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"text/template"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path})
	})
	zw := gzip.NewWriter(os.Stdout)
	t := template.Must(template.New("x").Parse("{{.}}\n"))
	_ = t.Execute(zw, "benchmix")
	_ = zw.Close()
	fmt.Println(len(os.Args))
}
`,
}
