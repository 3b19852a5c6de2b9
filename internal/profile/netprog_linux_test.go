package profile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// These tests run the programs with BPF_PROG_TEST_RUN on synthetic
// packets, unattached: the kernel gives each test packet a socket owned by
// the calling task's cgroup v2, so bpf_skb_cgroup_id returns ours.

type testProgs struct {
	counters, limits *ebpf.Map
	in, out          *ebpf.Program
	id               uint64
}

func loadTestProgs(t *testing.T) *testProgs {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	counters, limits, progs, err := loadNet()
	if err != nil {
		t.Skipf("cannot load the eBPF programs here: %v", err)
	}
	t.Cleanup(func() {
		for _, p := range progs {
			p.Close()
		}
		counters.Close()
		limits.Close()
	})
	return &testProgs{counters: counters, limits: limits, in: progs[0], out: progs[1], id: ownCgroupID(t)}
}

// ownCgroupID is the id of this process's cgroup v2 (the v2 root, id 1,
// when no v2 hierarchy is mounted).
func ownCgroupID(t *testing.T) uint64 {
	_, v2, err := cgroupMounts()
	if err != nil || v2 == "" {
		return 1
	}
	own, err := ownCgroups()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(v2, own[""]), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// packet is an Ethernet frame the test run turns into an skb of
// len(packet) - 14 bytes (the IP packet).
var packet = func() []byte {
	p := make([]byte, 14+1500)
	p[12], p[13] = 0x08, 0x00 // IPv4
	p[14] = 0x45
	return p
}()

const packetLen = 1500

func (tp *testProgs) run(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	ret, err := p.Run(&ebpf.RunOptions{Data: packet})
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return ret
}

func (tp *testProgs) value(t *testing.T) netValue {
	t.Helper()
	var v netValue
	if err := tp.counters.Lookup(&tp.id, &v); err != nil {
		t.Fatalf("lookup counters: %v", err)
	}
	return v
}

func TestNetProgramCounts(t *testing.T) {
	tp := loadTestProgs(t)
	for i := range 3 {
		if got := tp.run(t, tp.in); got != 1 {
			t.Fatalf("ingress #%d returned %d, want 1 (pass)", i, got)
		}
	}
	if got := tp.run(t, tp.out); got != 1 {
		t.Fatalf("egress returned %d, want 1 (pass)", got)
	}
	if got, want := tp.value(t), (netValue{RxBytes: 3 * packetLen, TxBytes: packetLen}); got != want {
		t.Errorf("counters = %+v, want %+v", got, want)
	}
}

// TestPolicerProgram drains the bucket of each direction, checks the burst
// it let through, the drop verdicts, that the directions are independent,
// and the refill rate.
func TestPolicerProgram(t *testing.T) {
	tp := loadTestProgs(t)
	const mbps = 40
	lim, err := newNetLimit(mbps)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.limits.Put(&tp.id, &lim); err != nil {
		t.Fatal(err)
	}
	bytesPerSec := mbps * 1e6 / 8
	burst := float64(lim.TauNs) / 1e9 * bytesPerSec

	for _, d := range []struct {
		name     string
		prog     *ebpf.Program
		dropRet  uint32
		passed   func(netValue) uint64
		dropped  func(netValue) uint64
		otherDir func(netValue) uint64
	}{
		{"egress", tp.out, 2, func(v netValue) uint64 { return v.TxBytes }, func(v netValue) uint64 { return v.TxDrops }, func(v netValue) uint64 { return v.RxBytes }},
		{"ingress", tp.in, 0, func(v netValue) uint64 { return v.RxBytes }, func(v netValue) uint64 { return v.RxDrops }, func(v netValue) uint64 { return v.TxBytes }},
	} {
		t.Run(d.name, func(t *testing.T) {
			// Drain: packets pass until the burst is used up. The loop takes
			// a few ms, in which the bucket refills a little.
			start := time.Now()
			n := 0
			for ; tp.run(t, d.prog) == 1; n++ {
				if n > 10*int(burst)/packetLen {
					t.Fatalf("no drop after %d packets (burst %.0f bytes)", n, burst)
				}
			}
			drained := time.Now()
			refill := drained.Sub(start).Seconds() * bytesPerSec
			got := float64(n * packetLen)
			if got < burst-packetLen || got > burst+refill+packetLen {
				t.Errorf("burst passed %.0f bytes, want %.0f (+ %.0f refilled while draining)", got, burst, refill)
			}
			// Over the limit the next packet is dropped — unless the bucket
			// refilled a packet's worth since the drain ended, which a
			// loaded (or -race) machine can take: 1500 bytes at 40 Mbit/s
			// is 300 µs. Let through only what the elapsed time refilled.
			var ret uint32
			extra := 0
			for ret = tp.run(t, d.prog); ret == 1; ret = tp.run(t, d.prog) {
				extra++
				if allowed := time.Since(drained).Seconds()*bytesPerSec/packetLen + 1; float64(extra) > allowed {
					t.Fatalf("over the limit: %d packets passed after the drain, refill allows %.1f", extra, allowed)
				}
			}
			if ret != d.dropRet {
				t.Errorf("over the limit: returned %d, want %d", ret, d.dropRet)
			}
			v := tp.value(t)
			if d.dropped(v) != 2 {
				t.Errorf("drops = %d, want 2", d.dropped(v))
			}

			// Refill: after a pause, about pause × rate passes again.
			time.Sleep(50 * time.Millisecond)
			before := d.passed(tp.value(t))
			n = 0
			for ; tp.run(t, d.prog) == 1; n++ {
			}
			want := time.Since(drained).Seconds() * bytesPerSec
			if got := float64(d.passed(tp.value(t)) - before); got > want+packetLen || got < 0.8*want-packetLen {
				t.Errorf("after refill passed %.0f bytes, want about %.0f", got, want)
			}
		})
	}
	// The egress bucket was drained first; ingress still had its full
	// burst, so the directions are independent (checked by the ingress
	// subtest's burst). And a cleared limit passes everything again.
	if err := tp.limits.Delete(&tp.id); err != nil {
		t.Fatal(err)
	}
	if ret := tp.run(t, tp.out); ret != 1 {
		t.Errorf("without a limit egress returned %d", ret)
	}
}
