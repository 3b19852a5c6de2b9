package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prescient-sched/prescient/internal/ledger"
	"github.com/prescient-sched/prescient/internal/resource"
)

// randCurve is 1-4 steps of 1-20 s, up to 1.5 cores and 600 MB.
func randCurve(rng *rand.Rand) ledger.Curve {
	c := ledger.Curve{Steps: make([]ledger.Step, 1+rng.IntN(4))}
	for i := range c.Steps {
		p50 := vec(0.05+rng.Float64()*1.8, 10+rng.Float64()*500) // some wide: squeezed
		hi := 1 + rng.Float64()*0.3
		c.Steps[i] = ledger.Step{Dur: time.Duration(1+rng.IntN(20)) * time.Second, P50: p50, PHi: vec(p50[0]*hi, p50[1]*hi)}
	}
	return c
}

// TestPropertyInterleavings drives random interleavings of enqueue,
// dispatch, observe (adjust, evict), cancel and finish (some OOM-killed),
// and checks after every step: hard allocations never exceed capacity;
// the scheduler's accounting matches the ledger's; every reservation made
// is released (or expired) exactly once; no task is lost or run twice.
func TestPropertyInterleavings(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			capv := vec(2, 2000)
			pred := mapPredictor{}
			for i := range 8 {
				pred[fmt.Sprint("sig", i)] = randCurve(rng)
			}
			s, clk, ex, err := newTest(capv, pred, func(c *Config) {
				c.TTL = time.Duration(5+rng.IntN(60)) * time.Second
				c.ReplanWindow = 1 + rng.IntN(16)
				c.DownAfter = 1 + rng.IntN(3)
				c.MonitorWindow = time.Duration(1+rng.IntN(10)) * time.Second
				if seed%2 == 1 {
					c.PlanDepth = 1 + rng.IntN(4) // exercise deferral
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			queued := map[string]bool{}
			running := map[string]bool{}
			ended := map[string]int{}
			starts := map[string]int{}
			requeues := map[string]int{}
			next := 0
			check := func(step int, op string) {
				t.Helper()
				snap := s.Ledger().Snapshot(now)
				for d := range snap.Committed {
					if snap.Committed[d] > capv[d]+1e-6 {
						t.Fatalf("step %d (%s): committed %v exceeds capacity %v", step, op, snap.Committed, capv)
					}
					if diff := snap.Committed[d] - s.committed[d]; diff > 0.01 || diff < -0.01 {
						t.Fatalf("step %d (%s): ledger committed %v, scheduler %v", step, op, snap.Committed, s.committed)
					}
				}
				st := s.Stats()
				if live := snap.Soft + snap.Hard; st.Reserved != st.Released+st.Expired+live {
					t.Fatalf("step %d (%s): reserved %d != released %d + expired %d + live %d", step, op, st.Reserved, st.Released, st.Expired, live)
				}
				if snap.Hard != len(running) {
					t.Fatalf("step %d (%s): %d hard allocations, %d running", step, op, snap.Hard, len(running))
				}
				if len(s.running) != len(running) {
					t.Fatalf("step %d (%s): scheduler's running set has %d, test %d", step, op, len(s.running), len(running))
				}
				if len(s.tasks) != len(queued)+len(running) {
					t.Fatalf("step %d (%s): scheduler holds %d tasks, test %d queued + %d running", step, op, len(s.tasks), len(queued), len(running))
				}
				for id, e := range s.tasks {
					if (e.state == Running) != running[id] || (e.state == Queued) != queued[id] {
						t.Fatalf("step %d (%s): %s is %v in the scheduler", step, op, id, e.state)
					}
					// Memory a task really holds is never taken by lowering
					// its limit under its use.
					if e.state == Running && e.observed {
						if l := ex.limits[id].MemoryMB; l > 0 && l < e.used[resource.Memory]-1e-6 {
							t.Fatalf("step %d (%s): %s limited to %.1f MB under its use of %.1f MB", step, op, id, l, e.used[resource.Memory])
						}
					}
				}
				checkPlan(t, s, fmt.Sprintf("step %d (%s)", step, op))
			}
			finish := func(id string, o Outcome) {
				r, err := s.Finish(id, o)
				if err != nil {
					t.Fatalf("finish %s: %v", id, err)
				}
				delete(running, id)
				if r.Requeued {
					queued[id] = true
					requeues[id]++
				} else {
					ended[id]++
				}
			}
			for step := range 400 {
				now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
				clk.Set(now)
				op := rng.IntN(10)
				var name string
				switch {
				case op < 3:
					name = "enqueue"
					id := fmt.Sprint("t", next)
					next++
					_, err := s.Enqueue(Task{ID: id, Priority: rng.IntN(3), User: uint32(rng.IntN(3)), Features: Features{Signature: fmt.Sprint("sig", rng.IntN(10)), Requests: vec(0.5, 200)}})
					if err != nil {
						t.Fatal(err)
					}
					queued[id] = true
				case op < 5:
					name = "dispatch"
					dispatch := s.Schedule
					if rng.IntN(3) == 0 {
						dispatch = s.Dispatch
					}
					for _, st := range dispatch(rng.IntN(4)) {
						ex.started(st)
						if running[st.ID] || !queued[st.ID] {
							t.Fatalf("step %d: dispatched %s, running=%v queued=%v", step, st.ID, running[st.ID], queued[st.ID])
						}
						delete(queued, st.ID)
						running[st.ID] = true
						starts[st.ID]++
					}
				case op < 8:
					name = "observe"
					for id := range running {
						// Use around what it holds; a real cgroup OOM-kills
						// a task over its memory limit and throttles CPU to a
						// quota: the fake does the same.
						held := s.tasks[id].limits.Vector()
						f := rng.Float64() * 1.3
						used, oom := ex.real(id, vec(held[0]*f, held[1]*f))
						if oom {
							name = "oom"
							finish(id, Outcome{OOMKilled: true})
							break
						}
						_, err := s.Observe(id, Observation{At: now, Used: used})
						if err != nil {
							t.Fatal(err)
						}
						break
					}
					for _, id := range ex.evicted {
						finish(id, Outcome{}) // the kill lands; the scheduler requeues
					}
					ex.evicted = nil
				case op < 9:
					name = "finish"
					for id := range running {
						finish(id, Outcome{OOMKilled: rng.IntN(4) == 0, Cancelled: rng.IntN(10) == 0})
						break
					}
				default:
					name = "cancel"
					for id := range queued {
						if !s.Cancel(id) {
							t.Fatalf("cancel of queued %s refused", id)
						}
						delete(queued, id)
						ended[id]++
						break
					}
				}
				check(step, name)
			}
			// Drain: everything ends, nothing is left held.
			for id := range running {
				finish(id, Outcome{Cancelled: true})
			}
			for id := range queued {
				if !s.Cancel(id) {
					t.Fatalf("cancel of queued %s refused", id)
				}
				delete(queued, id)
				ended[id]++
			}
			check(-1, "drain")
			st := s.Stats()
			t.Logf("stats %+v", st)
			if st.Commits == 0 || st.Adjusts == 0 {
				t.Fatalf("the interleaving exercised too little: %+v", st)
			}
			snap := s.Ledger().Snapshot(now)
			if snap.Soft != 0 || snap.Hard != 0 || snap.Committed != (resource.Vector{}) {
				t.Fatalf("after drain the ledger holds %d soft, %d hard, committed %v", snap.Soft, snap.Hard, snap.Committed)
			}
			for i := range next {
				id := fmt.Sprint("t", i)
				if ended[id] != 1 {
					t.Fatalf("%s ended %d times", id, ended[id])
				}
				if starts[id] > requeues[id]+1 {
					t.Fatalf("%s started %d times with %d requeues", id, starts[id], requeues[id])
				}
			}
		})
	}
}

// checkPlan checks the planning-depth invariants: planned + deferred is
// the queue; a deferred task waits only while PlanDepth are planned; in
// every FIFO the deferred entries are a suffix, and fifo.def points at the
// first; no deferred task holds a reservation.
func checkPlan(t *testing.T, s *Scheduler, at string) {
	t.Helper()
	planned, deferred := 0, 0
	for _, p := range s.keys {
		q := s.fifo[p]
		seenDef := false
		var prev *entry
		for i := q.head; i < len(q.items); i++ {
			e := q.items[i]
			if e == nil {
				continue
			}
			if e.qi != i {
				t.Fatalf("%s: %s at %d thinks it is at %d", at, e.t.ID, i, e.qi)
			}
			// The merge in each relies on FIFO order being before's
			// order: tags rise, aging starts never go back (a task put
			// ahead in a burst takes the tag and aging of those it passed).
			if prev != nil && (e.tag <= prev.tag || e.aged.Before(prev.aged)) {
				t.Fatalf("%s: FIFO %v: %s (tag %d, aged %v) after %s (tag %d, aged %v)", at, p, e.t.ID, e.tag, e.aged, prev.t.ID, prev.tag, prev.aged)
			}
			prev = e
			if e.deferred {
				if !seenDef && q.def != i {
					t.Fatalf("%s: first deferred at %d, fifo.def = %d", at, i, q.def)
				}
				seenDef = true
				deferred++
				if e.reserved {
					t.Fatalf("%s: deferred %s holds a reservation", at, e.t.ID)
				}
			} else {
				if seenDef {
					t.Fatalf("%s: planned %s after a deferred task in FIFO %v", at, e.t.ID, p)
				}
				planned++
			}
		}
		if !seenDef && q.def != -1 {
			t.Fatalf("%s: no deferred entry, fifo.def = %d", at, q.def)
		}
	}
	throttled := 0
	for _, e := range s.tasks {
		if e.throttled {
			throttled++
			if e.state != Running {
				t.Fatalf("%s: %s throttled while %v", at, e.t.ID, e.state)
			}
		}
	}
	if throttled != s.throttledN {
		t.Fatalf("%s: %d tasks throttled, scheduler counts %d", at, throttled, s.throttledN)
	}
	if planned != s.planned || deferred != s.deferredN {
		t.Fatalf("%s: counted %d planned, %d deferred; scheduler says %d, %d", at, planned, deferred, s.planned, s.deferredN)
	}
	if deferred > 0 && planned < s.cfg.PlanDepth {
		t.Fatalf("%s: %d deferred while only %d of %d are planned", at, deferred, planned, s.cfg.PlanDepth)
	}
}
