package profile

import (
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// direction selects the program variant: where in netValue and netLimit it
// counts, and what it returns to drop.
type direction struct {
	name       string
	attach     ebpf.AttachType
	bytesOff   int16 // netValue byte counter
	dropsOff   int16 // netValue drop counter
	tatOff     int16 // netLimit TAT
	dropReturn int32
}

var (
	ingress = direction{
		name:       "prescient_in",
		attach:     ebpf.AttachCGroupInetIngress,
		bytesOff:   int16(unsafe.Offsetof(netValue{}.RxBytes)),
		dropsOff:   int16(unsafe.Offsetof(netValue{}.RxDrops)),
		tatOff:     int16(unsafe.Offsetof(netLimit{}.TatIn)),
		dropReturn: 0, // ingress: 0 drops, 1 passes
	}
	egress = direction{
		name:     "prescient_out",
		attach:   ebpf.AttachCGroupInetEgress,
		bytesOff: int16(unsafe.Offsetof(netValue{}.TxBytes)),
		dropsOff: int16(unsafe.Offsetof(netValue{}.TxDrops)),
		tatOff:   int16(unsafe.Offsetof(netLimit{}.TatOut)),
		// Egress may also return 2: drop and signal congestion, so the
		// sender gets NET_XMIT_DROP (TCP enters CWR and keeps the segment
		// queued; UDP gets ENOBUFS) instead of the EPERM a plain 0 gives.
		dropReturn: 2,
	}
)

// Fixed offsets the programs rely on.
const (
	skbLenOff    = 0 // struct __sk_buff { __u32 len; ... }
	costOff      = int16(unsafe.Offsetof(netLimit{}.CostQ16))
	tauOff       = int16(unsafe.Offsetof(netLimit{}.TauNs))
	keyOff       = -8                                        // u64 cgroup id on the stack
	zeroOff      = keyOff - int16(unsafe.Sizeof(netValue{})) // zeroed netValue on the stack
	casAttempts  = 3
	bpfNoExist   = 1 // BPF_NOEXIST
	verdictAllow = 1
)

// netProgram assembles the cgroup_skb program for one direction. Written
// with the asm package because there is no clang on the build hosts; in C
// it would read:
//
//	id = bpf_skb_cgroup_id(skb); if (!id) return 1;
//	verdict = 1;
//	if ((lim = lookup(&limits, &id))) {            // policer, see netLimit
//	    now = bpf_ktime_get_ns(); cost = len * lim->cost_q16 >> 16;
//	    old = lim->tat; for 3 tries {
//	        new = max(old, now) + cost;
//	        if (old > now && new - now > lim->tau) { verdict = DROP; break; }
//	        if ((cur = cmpxchg(&lim->tat, old, new)) == old) break; old = cur;
//	    }                                          // lost the race 3 times: pass
//	}
//	v = lookup(&counters, &id) ?: (update(&counters, &id, &zero, BPF_NOEXIST), lookup(...));
//	if (v) { if (verdict == 1) atomic_add(&v->bytes, len); else atomic_add(&v->drops, 1); }
//	return verdict;
//
// Registers: r6 ctx, r7 len, r8 verdict, r9 limit entry, r1 cost, r2 tau,
// r5 now, r0 TAT (old), r3 TAT (new).
func netProgram(d direction, counters, limits *ebpf.Map) *ebpf.ProgramSpec {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, skbLenOff, asm.Word),
		asm.FnSkbCgroupId.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.StoreMem(asm.RFP, keyOff, asm.R0, asm.DWord),
		asm.Mov.Imm(asm.R8, verdictAllow),

		// Policer.
		asm.LoadMapPtr(asm.R1, limits.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "count"),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.FnKtimeGetNs.Call(),
		asm.Mov.Reg(asm.R5, asm.R0),
		asm.LoadMem(asm.R1, asm.R9, costOff, asm.DWord),
		asm.Mul.Reg(asm.R1, asm.R7),
		asm.RSh.Imm(asm.R1, 16),
		asm.LoadMem(asm.R2, asm.R9, tauOff, asm.DWord),
		asm.LoadMem(asm.R0, asm.R9, d.tatOff, asm.DWord),
	}
	for i := range casAttempts {
		base := fmt.Sprintf("base%d", i)
		admit := fmt.Sprintf("admit%d", i)
		insns = append(insns,
			asm.Mov.Reg(asm.R3, asm.R0),
			asm.JGE.Reg(asm.R3, asm.R5, base),
			asm.Mov.Reg(asm.R3, asm.R5),
			asm.Add.Reg(asm.R3, asm.R1).WithSymbol(base),
			asm.JLE.Reg(asm.R0, asm.R5, admit), // bucket full: admit, even a packet larger than the burst
			asm.Mov.Reg(asm.R4, asm.R3),
			asm.Sub.Reg(asm.R4, asm.R5),
			asm.JGT.Reg(asm.R4, asm.R2, "drop"),
			asm.Mov.Reg(asm.R4, asm.R0).WithSymbol(admit),
			cmpxchg64(asm.R9, asm.R3, d.tatOff),
			asm.JEq.Reg(asm.R0, asm.R4, "count"),
		)
	}
	insns = append(insns,
		asm.Ja.Label("count"),
		asm.Mov.Imm(asm.R8, d.dropReturn).WithSymbol("drop"),

		// Counters.
		asm.LoadMapPtr(asm.R1, counters.FD()).WithSymbol("count"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "add"),
		asm.Mov.Imm(asm.R1, 0), // (asm has no 64-bit store-immediate)
		asm.StoreMem(asm.RFP, zeroOff, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, zeroOff+8, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, zeroOff+16, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, zeroOff+24, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, counters.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, int32(zeroOff)),
		asm.Mov.Imm(asm.R4, bpfNoExist),
		asm.FnMapUpdateElem.Call(),
		asm.LoadMapPtr(asm.R1, counters.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.JNE.Imm(asm.R8, verdictAllow, "adddrop").WithSymbol("add"),
		asm.AddAtomic.Mem(asm.R0, asm.R7, asm.DWord, d.bytesOff),
		asm.Ja.Label("out"),
		asm.Mov.Imm(asm.R1, 1).WithSymbol("adddrop"),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, d.dropsOff),
		asm.Mov.Reg(asm.R0, asm.R8).WithSymbol("out"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, verdictAllow).WithSymbol("pass"),
		asm.Return(),
	)
	return &ebpf.ProgramSpec{
		Name:         d.name,
		Type:         ebpf.CGroupSKB,
		AttachType:   d.attach,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	}
}

// cmpxchg64 emits r0 = cmpxchg((u64 *)(dst + off), r0, src).
//
// asm.CmpXchg.Mem is not used: cilium/ebpf v0.22.0's Instruction.Marshal
// takes the immediate before it moves the atomic operation from the opcode
// into it, so every atomic other than add is emitted as an atomic add
// (imm 0). Setting the immediate to BPF_CMPXCHG ourselves encodes it right
// with either behaviour; TestPolicerProgram would catch a regression.
func cmpxchg64(dst, src asm.Register, off int16) asm.Instruction {
	ins := asm.CmpXchg.Mem(dst, src, asm.DWord, off)
	ins.Constant = int64(asm.CmpXchg >> 8) // BPF_CMPXCHG (0xf0) | BPF_FETCH (0x01)
	return ins
}
