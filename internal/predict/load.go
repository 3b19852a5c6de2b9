package predict

import "math"

// Load is the node's state around a run: what every process on the node
// uses (measured by profile.NodeSampler, or planned by the scheduler for
// the run's window), not only Prescient's tasks. The zero Load is an idle
// node of unknown size: every load feature is 0, as in the public traces.
type Load struct {
	CPU   float64 // cores busy on the node, all processes
	Cores float64 // the node's CPUs; 0 = unknown
	// Memory is the share of the node's memory not available (0…1).
	Memory float64
	// CPUPressure and IOPressure are the PSI "some" shares of the interval
	// (0…1): time in which a runnable task waited for a CPU, or for IO.
	CPUPressure, IOPressure float64
	// Runnable is the number of runnable threads (procs_running).
	Runnable float64
	// Running is the number of Prescient's tasks running.
	Running int
}

// NumLoad is the number of load features the learned models take.
const NumLoad = 5

// loadVec is a run's load features, stored compactly.
type loadVec [NumLoad]float32

// features returns the load features as the models see them, for a run
// that itself uses own cores (subtracted from the node's busy CPU, so
// the feature is the contention from the others): others' CPU share of
// the node, memory share, CPU and IO pressure, runnable threads per core
// (/4). Each is clamped to a small range.
func (l Load) features(own float64) loadVec {
	cores := l.Cores
	if !(cores > 0) {
		return loadVec{0, clamp01(l.Memory), clamp01(l.CPUPressure), clamp01(l.IOPressure), 0}
	}
	others := (l.CPU - own) / cores
	return loadVec{
		float32(min(max(others, 0), 1.5)),
		clamp01(l.Memory),
		clamp01(l.CPUPressure),
		clamp01(l.IOPressure),
		float32(min(max(l.Runnable/cores/4, 0), 2)),
	}
}

func clamp01(x float64) float32 {
	if math.IsNaN(x) {
		return 0
	}
	return float32(min(max(x, 0), 1))
}

// packedLoad is a loadVec as a finished run keeps it: each feature in
// hundredths, 0…2.55 (the features' ranges lie within), a fifth of the
// bytes.
type packedLoad [NumLoad]uint8

func packLoad(l loadVec) packedLoad {
	var p packedLoad
	for i, x := range l {
		p[i] = uint8(min(max(math.Round(float64(x)*100), 0), 255))
	}
	return p
}

func (p packedLoad) unpack() loadVec {
	var l loadVec
	for i, x := range p {
		l[i] = float32(x) / 100
	}
	return l
}

// unpackLoads unpacks a run's loads (nil stays nil).
func unpackLoads(p []packedLoad) []loadVec {
	if p == nil {
		return nil
	}
	out := make([]loadVec, len(p))
	for i, x := range p {
		out[i] = x.unpack()
	}
	return out
}

// meanPacked averages a run's packed loads.
func meanPacked(p []packedLoad) loadVec {
	var s [NumLoad]float64
	for _, x := range p {
		for i := range s {
			s[i] += float64(x[i])
		}
	}
	var out loadVec
	if len(p) == 0 {
		return out
	}
	for i := range s {
		out[i] = float32(s[i] / float64(len(p)) / 100)
	}
	return out
}
