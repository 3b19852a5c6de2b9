package daemon

import (
	"time"

	"github.com/prescient-sched/prescient/internal/profile"
)

// sampleLoop samples the whole node and every running task each interval
// into the TSDB and hands each sample to the policy: the node first, so
// that the tasks' samples of a tick are read with that tick's load.
func (d *Daemon) sampleLoop() {
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	node, err := profile.NewNodeSampler("")
	if err != nil {
		d.log.Warn("no node load", "err", err)
	} else {
		defer node.Close()
		node.Sample(time.Now()) // prime the rates
	}
	for {
		select {
		case <-d.stop:
			return
		case now := <-tick.C:
			if node != nil {
				d.sampleNode(node, now)
			}
			d.mu.Lock()
			js := make([]*job, 0, d.running)
			for _, j := range d.jobs {
				if j.phase == phaseRunning {
					js = append(js, j)
				}
			}
			d.mu.Unlock()
			for _, j := range js {
				d.sampleOnce(j, now, false)
			}
		}
	}
}

// openSampler starts profiling j's cgroups.
func (d *Daemon) openSampler(j *job) {
	s, err := d.rt.Sampler(j.id)
	if err != nil {
		d.log.Debug("no cgroup to profile", "task", j.id, "err", err)
		return
	}
	now := time.Now()
	s.Sample(now) // prime the rate counters
	j.smu.Lock()
	if j.sampler != nil {
		_ = j.sampler.Close()
	}
	j.sampler, j.sampledAt, j.sampled, j.cpuSecs, j.cpuThr = s, now, false, 0, 0
	j.smu.Unlock()
}

// lastSample takes j's last sample and closes its sampler; idempotent.
func (d *Daemon) lastSample(j *job) { d.sampleOnce(j, time.Now(), true) }

// sampleOnce takes one sample of j (with last, then closes the sampler).
// The last sample is dropped when it would cover less than half an
// interval since the previous one (a run with no sample yet keeps it,
// for what it can tell): rates over so short a tail say
// nothing (a task capped at 0.25 core by CFS, 25 ms a 100 ms period, may
// run its whole 25 ms in a 55 ms tail, which reads as 45 %) and would set
// the run's peaks.
func (d *Daemon) sampleOnce(j *job, now time.Time, last bool) {
	j.smu.Lock()
	defer j.smu.Unlock()
	if j.sampler == nil {
		return
	}
	if last && j.sampled && now.Sub(j.sampledAt) < d.cfg.Interval/2 {
		// The tail's rates are dropped, but the CPU counter is read:
		// the run's CPU-seconds count it.
		if s := j.sampler.Sample(now); s.CPUSeconds > 0 {
			j.cpuSecs, j.cpuThr = s.CPUSeconds, s.CPUThrottledSeconds
		}
		_ = j.sampler.Close()
		j.sampler = nil
		return
	}
	j.sampledAt, j.sampled = now, true
	t0 := time.Now()
	s := j.sampler.Sample(now)
	d.m.sampleSecs.Observe(time.Since(t0).Seconds())
	if s.CPUSeconds > 0 {
		j.cpuSecs, j.cpuThr = s.CPUSeconds, s.CPUThrottledSeconds
	}
	if last {
		_ = j.sampler.Close()
		j.sampler = nil
	}
	if s.Avail == 0 {
		return
	}
	if err := d.st.Samples.Append(j.id, j.rec.Signature, s); err != nil {
		d.log.Debug("store sample", "task", j.id, "err", err)
	}
	if !last {
		d.pol.Observe(j.id, s)
	}
}

// sampleNode takes one sample of the node, stores it and hands it to the
// policy.
func (d *Daemon) sampleNode(node *profile.NodeSampler, now time.Time) {
	s := node.Sample(now)
	if s.Avail == 0 {
		return
	}
	d.node.Store(&s)
	if err := d.st.Samples.AppendNode(s); err != nil {
		d.log.Debug("store node sample", "err", err)
	}
	if o, ok := d.pol.(nodeObserver); ok {
		o.ObserveNode(s)
	}
}
