package daemon

import (
	"net/http"
	"sort"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/resource"
	"github.com/prescient-sched/prescient/internal/web"
)

// mountDashboard is handler's one hook for the web dashboard: with
// Config.Dashboard it registers the dashboard's routes on mux and, the
// first time, starts its node-history recorder as one of the daemon's
// loops.
func (d *Daemon) mountDashboard(mux *http.ServeMux) {
	if !d.cfg.Dashboard {
		return
	}
	d.dashOnce.Do(func() {
		d.dash = web.New(dashSource{d}, web.Options{Logger: d.log})
		d.goTracked(func() { d.dash.Run(d.stop) })
	})
	d.dash.Register(mux)
}

// dashSource is the daemon as the dashboard's web.Source: every method
// answers as the request's caller.
type dashSource struct{ d *Daemon }

var _ web.Source = dashSource{}

func (s dashSource) Node() api.NodeStatus { return s.d.Node() }

func (s dashSource) Tasks(r *http.Request, o api.ListOptions) ([]api.Task, error) {
	return s.d.List(who(r), o)
}

func (s dashSource) Task(r *http.Request, id string) (*api.Task, error) { return s.d.Get(who(r), id) }

func (s dashSource) Samples(r *http.Request, id string) ([]resource.Sample, error) {
	if _, err := s.d.Get(who(r), id); err != nil {
		return nil, err
	}
	ss, err := s.d.st.Samples.Curve(id)
	if err != nil {
		return nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	return ss, nil
}

// Live returns who's tasks not ended, with the policy's view: all that run
// (at most --max-running) and the limit oldest queued. The queue may hold
// many; only the chosen are described, and d.mu is held only to pick them
// and to describe them.
func (s dashSource) Live(r *http.Request, limit int) ([]api.Task, error) {
	d, caller := s.d, who(r)
	var running, queued []*job
	d.mu.Lock()
	for _, j := range d.jobs {
		if !caller.owns(j.meta) {
			continue
		}
		switch j.phase {
		case phaseQueued, phaseRequeuing:
			queued = append(queued, j)
		default:
			running = append(running, j)
		}
	}
	d.mu.Unlock()
	if len(queued) > limit {
		// Ids sort by submit time.
		sort.Slice(queued, func(i, k int) bool { return queued[i].id < queued[k].id })
		queued = queued[:limit]
	}
	out := make([]api.Task, 0, len(running)+len(queued))
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, j := range append(running, queued...) {
		if _, ok := d.jobs[j.id]; ok { // not ended meanwhile
			out = append(out, d.viewLocked(j))
		}
	}
	return out, nil
}
