package profile

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeProc writes a /proc tree with the given files under a temp dir.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, body := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	stat0 = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\ncpu1 50 0 50 350 50 0 0 0 0 0\nintr 1 2\nprocs_running 3\nprocs_blocked 1\n"
	// 200 more jiffies over both cores: 150 busy (user 100, system 50), 50 idle.
	stat1   = "cpu  200 0 150 750 100 0 0 0 0 0\ncpu0 100 0 75 375 50 0 0 0 0 0\ncpu1 100 0 75 375 50 0 0 0 0 0\nprocs_running 5\nprocs_blocked 0\n"
	meminfo = "MemTotal:       4096000 kB\nMemFree:         100000 kB\nMemAvailable:    1024000 kB\n"
	psi0    = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	psi1    = "some avg10=5.00 avg60=1.00 avg300=0.10 total=1500000\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=200000\n"
)

func TestNodeSampler(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  NodeSet // after the second sample
	}{
		{"all", map[string]string{"stat": stat0, "meminfo": meminfo, "pressure/cpu": psi0, "pressure/memory": psi0, "pressure/io": psi0},
			NodeCPU | NodeMemory | NodeProcs | NodeCPUPressure | NodeMemoryPressure | NodeIOPressure},
		{"no psi", map[string]string{"stat": stat0, "meminfo": meminfo}, NodeCPU | NodeMemory | NodeProcs},
		{"cpu psi without full", map[string]string{"stat": stat0, "pressure/cpu": "some avg10=0 avg60=0 avg300=0 total=1000000\n"}, NodeCPU | NodeProcs | NodeCPUPressure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fakeProc(t, tt.files)
			n, err := NewNodeSampler(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			t0 := time.Unix(1000, 0)
			s0 := n.Sample(t0)
			if s0.Avail.Has(NodeCPU) || s0.Avail&(NodeCPUPressure|NodeMemoryPressure|NodeIOPressure) != 0 {
				t.Fatalf("first sample has rates: %+v", s0)
			}
			for rel, body := range map[string]string{"stat": stat1, "pressure/cpu": psi1, "pressure/memory": psi1, "pressure/io": psi1} {
				if _, ok := tt.files[rel]; ok {
					if err := os.WriteFile(filepath.Join(dir, rel), []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			s := n.Sample(t0.Add(time.Second))
			if s.Avail != tt.want {
				t.Fatalf("avail %b, want %b (%+v)", s.Avail, tt.want, s)
			}
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if !near(s.Cores, 2) || !near(s.CPUBusy, 1.5) || !near(s.CPUUtil(), 0.75) {
				t.Errorf("cpu: cores %v busy %v util %v; want 2, 1.5, 0.75", s.Cores, s.CPUBusy, s.CPUUtil())
			}
			if s.Runnable != 5 || s.Blocked != 0 {
				t.Errorf("procs %v/%v, want 5/0", s.Runnable, s.Blocked)
			}
			if s.Avail.Has(NodeMemory) && (!near(s.MemTotalMB, 4000) || !near(s.MemAvailableMB, 1000) || !near(s.MemoryUtil(), 0.75)) {
				t.Errorf("memory %v/%v MB util %v", s.MemAvailableMB, s.MemTotalMB, s.MemoryUtil())
			}
			if s.Avail.Has(NodeCPUPressure) && !near(s.CPUPressure.Some, 0.5) {
				t.Errorf("cpu pressure %+v, want some 0.5", s.CPUPressure)
			}
			if s.Avail.Has(NodeIOPressure) && !near(s.IOPressure.Full, 0.2) {
				t.Errorf("io pressure %+v, want full 0.2", s.IOPressure)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if s := n.Sample(t0.Add(2 * time.Second)); s.Avail != 0 {
				t.Fatalf("sample after close: %+v", s)
			}
		})
	}
}

func TestNodeSamplerNoSource(t *testing.T) {
	if _, err := NewNodeSampler(t.TempDir()); err == nil {
		t.Fatal("want ErrNoSource for an empty /proc")
	}
}

// TestNodeSamplerReal reads this machine's /proc.
func TestNodeSamplerReal(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat here")
	}
	n, err := NewNodeSampler("")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Sample(time.Now())
	time.Sleep(20 * time.Millisecond)
	s := n.Sample(time.Now())
	if !s.Avail.Has(NodeMemory|NodeProcs) || s.MemTotalMB <= 0 || s.Runnable < 1 {
		t.Fatalf("sample %+v", s)
	}
	if s.Avail.Has(NodeCPU) && (s.Cores < 1 || s.CPUBusy < 0 || s.CPUBusy > s.Cores+1e-9) {
		t.Fatalf("cpu %v of %v cores", s.CPUBusy, s.Cores)
	}
	if allocs := testing.AllocsPerRun(20, func() { n.Sample(time.Now()) }); allocs != 0 {
		t.Errorf("Sample allocates %v times", allocs)
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add(stat0)
	f.Add("cpu  1 2\ncpu0 1\n")
	f.Add("cpu  a b c d\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, ok := parseProcStat([]byte(s))
		if ok.Has(NodeCPU) && (st.busy > st.total || st.cores == 0) {
			t.Fatalf("%q: %+v", s, st)
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add(meminfo)
	f.Add("MemTotal: x kB\n")
	f.Fuzz(func(t *testing.T, s string) { parseMeminfo([]byte(s)) })
}

func FuzzParsePSI(f *testing.F) {
	f.Add(psi1)
	f.Add("some total=\n")
	f.Fuzz(func(t *testing.T, s string) { parsePSI([]byte(s)) })
}

// BenchmarkNodeSampler is one sample of this machine's /proc: stat,
// meminfo and the three pressure files.
func BenchmarkNodeSampler(b *testing.B) {
	n, err := NewNodeSampler("")
	if err != nil {
		b.Skip(err)
	}
	defer n.Close()
	b.ReportAllocs()
	for b.Loop() {
		n.Sample(time.Now())
	}
}
