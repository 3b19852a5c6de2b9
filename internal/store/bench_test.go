package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/task"
)

// workload is realistic task curves: 100 tasks, 1 s steps, every
// dimension available.
const (
	benchTasks = 100
	benchSeed  = 42
)

// genCurves makes steps samples for each of n tasks, with a fixed seed:
//
//   - CPU: a level between 0.2 and 1.8 cores that drifts slowly (a random
//     walk plus a 10-minute wave) with ±0.02 cores of noise, as cpuacct
//     deltas give it;
//   - memory: whole 4 KiB pages, ramping up over the first minutes to a
//     plateau of 100-2000 MiB and then breathing by tens of pages; RSS
//     tracks it at ~90 %, peak is its running maximum;
//   - IO: whole operations per second around a per-task rate, with bursts;
//   - network: Mbit/s from byte deltas (not round), around a per-task rate.
func genCurves(n, steps int, step time.Duration) [][]resource.Sample {
	rng := rand.New(rand.NewPCG(benchSeed, 1))
	const page = 4.0 / 1024 // MiB
	out := make([][]resource.Sample, n)
	for k := range out {
		cpuLevel := 20 + 160*rng.Float64()
		plateau := 100 + 1900*rng.Float64()
		ioRate := 5 + 200*rng.Float64()
		netRate := 0.5 + 50*rng.Float64()
		phase := 2 * math.Pi * rng.Float64()
		peak := 0.0
		ss := make([]resource.Sample, steps)
		for i := range ss {
			sec := float64(i) * step.Seconds()
			cpuLevel = min(max(cpuLevel+rng.NormFloat64()*0.3, 5), 195)
			cpu := cpuLevel + 5*math.Sin(phase+2*math.Pi*sec/600) + rng.NormFloat64()*2
			ramp := 1 - math.Exp(-sec/120)
			mem := math.Round((plateau*ramp+3*math.Sin(phase+sec/300))/page+rng.NormFloat64()*20) * page
			mem = max(mem, page)
			rss := math.Round(mem*0.9/page+rng.NormFloat64()*5) * page
			peak = max(peak, mem)
			iops := math.Round(max(ioRate+rng.NormFloat64()*ioRate*0.1, 0))
			if rng.IntN(50) == 0 {
				iops *= 4 // burst
			}
			netIn := float64(int64((netRate+rng.NormFloat64()*netRate*0.05)*125000)) * 8 / 1e6 // whole bytes
			netOut := float64(int64((netRate*0.3+rng.NormFloat64()*netRate*0.02)*125000)) * 8 / 1e6
			ss[i] = resource.Sample{
				CPU: max(cpu, 0) / 100, MemoryMB: mem, RSSMB: rss, PeakMB: peak, IOPS: iops,
				NetInMbps: max(netIn, 0), NetOutMbps: max(netOut, 0), Avail: allDims,
			}
		}
		out[k] = ss
	}
	return out
}

func benchIDs(n int) (ids, sigs []string) {
	for k := range n {
		ids = append(ids, fmt.Sprintf("01JDZ5Q%019d", k))
		sigs = append(sigs, fmt.Sprintf("%064x", k%10))
	}
	return ids, sigs
}

// BenchmarkIngest measures appends through the ref cache, per core. One op
// is one Append call of batch steps of one task (7 samples a step); 100
// tasks take turns, as a profiler would flush them. It runs at GOMAXPROCS=1,
// so the TSDB's background work shares the core, and it reports both wall
// throughput (samples/s) and throughput per second of the process's CPU
// time (samples/cpu-s): the latter is the per-core figure, and it holds on
// a machine busy with other work, where wall time does not.
func BenchmarkIngest(b *testing.B) {
	const steps = 3600
	curves := genCurves(benchTasks, steps, time.Second)
	ids, sigs := benchIDs(benchTasks)
	for _, batch := range []int{1, 10, 60} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			s := openTestSamples(b, SamplesConfig{Dir: filepath.Join(b.TempDir(), "tsdb")})
			buf := make([]resource.Sample, batch)
			// Warm the ref cache, as a running daemon has it.
			for k := range benchTasks {
				buf[0] = curves[k][0]
				buf[0].Time = t0
				if err := s.Append(ids[k], sigs[k], buf[0]); err != nil {
					b.Fatal(err)
				}
			}
			next := 1 // next step to write, for every task
			samples := 0
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			for i := range b.N {
				k := i % benchTasks
				for j := range buf {
					buf[j] = curves[k][(next+j)%steps]
					buf[j].Time = t0.Add(time.Duration(next+j) * time.Second)
				}
				if err := s.Append(ids[k], sigs[k], buf...); err != nil {
					b.Fatal(err)
				}
				samples += batch * int(numColumns)
				if k == benchTasks-1 {
					next += batch
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64(samples)/(cpu1-cpu0).Seconds(), "samples/cpu-s")
			}
		})
	}
}

// ingestAll appends every curve of every task at 1 s steps from t0, either
// through Samples.Append (quantized) or straight into the TSDB in full
// float precision, for comparison.
func ingestAll(b *testing.B, s *Samples, curves [][]resource.Sample, raw bool) int {
	ids, sigs := benchIDs(len(curves))
	const batch = 60
	n := 0
	for start := 0; start < len(curves[0]); start += batch {
		for k, c := range curves {
			end := min(start+batch, len(c))
			for j := start; j < end; j++ {
				c[j].Time = t0.Add(time.Duration(j) * time.Second)
			}
			if !raw {
				if err := s.Append(ids[k], sigs[k], c[start:end]...); err != nil {
					b.Fatal(err)
				}
				n += (end - start) * int(numColumns)
				continue
			}
			e := s.taskRefs(ids[k], sigs[k])
			app := s.db.AppenderV2(context.Background())
			for j := start; j < end; j++ {
				for col := range numColumns {
					if _, err := app.Append(0, e.lsets[col], 0, c[j].Time.UnixMilli(), col.get(&c[j]), nil, nil, storage.AOptions{}); err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	return n
}

// blockBytes returns the on-disk size of every file under dir.
func blockBytes(b *testing.B, dir string) int64 {
	var total int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}

// BenchmarkBytesPerSample ingests two hours of 100 tasks × 7 dimensions at
// 1 s steps (5.04 M samples), compacts the head into one persisted block
// and reports the block's size (chunks, index, meta) per sample. The
// full-precision case writes the same curves unrounded, for comparison.
func BenchmarkBytesPerSample(b *testing.B) {
	const steps = 7200
	curves := genCurves(benchTasks, steps, time.Second)
	for _, tc := range []struct {
		name string
		raw  bool
	}{{"quantized", false}, {"full-precision", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var perSample float64
			for range b.N {
				s, err := OpenSamples(SamplesConfig{Dir: filepath.Join(b.TempDir(), "tsdb")})
				if err != nil {
					b.Fatal(err)
				}
				n := ingestAll(b, s, curves, tc.raw)
				h := s.db.Head()
				if err := s.db.CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime())); err != nil {
					b.Fatal(err)
				}
				blocks := s.db.Blocks()
				if len(blocks) != 1 {
					b.Fatalf("%d blocks, want 1", len(blocks))
				}
				meta := blocks[0].Meta()
				if int(meta.Stats.NumSamples) != n {
					b.Fatalf("block holds %d samples, want %d", meta.Stats.NumSamples, n)
				}
				perSample = float64(blockBytes(b, filepath.Join(s.dir(), meta.ULID.String()))) / float64(n)
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(perSample, "bytes/sample")
		})
	}
}

// BenchmarkCurve reads one task's 3,600-sample curve (1 h at 1 s, all
// dimensions) among 100 tasks, from the head and from a persisted block.
func BenchmarkCurve(b *testing.B) {
	const steps = 3600
	curves := genCurves(benchTasks, steps, time.Second)
	ids, _ := benchIDs(benchTasks)
	for _, inBlock := range []bool{false, true} {
		name := "head"
		if inBlock {
			name = "block"
		}
		b.Run(name, func(b *testing.B) {
			s := openTestSamples(b, SamplesConfig{Dir: filepath.Join(b.TempDir(), "tsdb")})
			ingestAll(b, s, curves, false)
			if inBlock {
				h := s.db.Head()
				if err := s.db.CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c, err := s.Curve(ids[i%benchTasks])
				if err != nil {
					b.Fatal(err)
				}
				if len(c) != steps {
					b.Fatalf("curve has %d samples, want %d", len(c), steps)
				}
			}
		})
	}
}

// BenchmarkPut measures task record writes, each commit fsynced: one
// record per transaction, and 64 per PutBatch (group commit).
func BenchmarkPut(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ts := openTestTasks(b)
			rs := make([]*task.Record, batch)
			for i := range rs {
				rs[i] = fullRecord("")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for j, r := range rs {
					r.ID = fmt.Sprintf("%08d-%03d", i, j)
					r.SubmittedAt = t0.Add(time.Duration(i) * time.Second)
				}
				if err := ts.PutBatch(rs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
