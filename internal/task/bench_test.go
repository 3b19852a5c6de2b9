package task

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// benchFixture is a 4 MiB program, a script and a 1 MiB CSV input, from a
// fixed seed.
func benchFixture(b *testing.B) (*fixture, Spec) {
	f := newFixture(b)
	rng := rand.New(rand.NewPCG(1, 2))
	prog := make([]byte, 4<<20)
	for i := range prog {
		prog[i] = byte(rng.Uint32())
	}
	f.exe("bin/big", string(prog))
	row := "1,alpha,2.5,2026-11-28T00:00:00Z\n"
	data := make([]byte, 0, 1<<20)
	for len(data)+len(row) <= 1<<20 {
		data = append(data, row...)
	}
	f.write("in.csv", string(data))
	return f, Spec{
		Argv:   []string{"big", "--in=in.csv", "-n", "3"},
		Inputs: []string{"in.csv"},
		Env:    append(os.Environ()[:0:0], "HOME=/h", "LANG=C.UTF-8", "PATH=/usr/bin:/bin", "TERM=xterm", "PWD=/x", "OMP_NUM_THREADS=4"),
		Dir:    f.dir,
	}
}

// BenchmarkSign measures Sign with the code hash cached (the common case:
// the same program submitted again) and uncached (a new or changed program:
// hashing 4 MiB dominates).
func BenchmarkSign(b *testing.B) {
	f, spec := benchFixture(b)
	interp := spec
	interp.Argv = []string{"python3", "-u", "job.py", "--in=in.csv"}
	for _, bc := range []struct {
		name  string
		spec  Spec
		purge bool
	}{
		{"cached", spec, false},
		{"cached-interpreter", interp, false},
		{"uncached-4MiB", spec, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := f.signer(SignerConfig{})
			s.cache.now = func() time.Time { return time.Now().Add(time.Hour) } // the fixture is fresh
			if _, err := s.Sign(bc.spec); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if bc.purge {
					s.cache.purge()
				}
				if _, err := s.Sign(bc.spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
