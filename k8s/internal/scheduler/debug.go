package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/prescient-sched/prescient/k8s/internal/core"
)

// Stats is a snapshot of the plugin's counters and of the time it spent
// per extension point (the binding's API call counted under Bind).
type Stats struct {
	PodsByCurve    int64 `json:"podsByCurve"`
	PodsByRequests int64 `json:"podsByRequests"`
	Reserved       int64 `json:"reserved"`
	Unreserved     int64 `json:"unreserved"`
	Committed      int64 `json:"committed"`
	Bound          int64 `json:"bound"`
	BindErrors     int64 `json:"bindErrors"`
	// Per extension point: calls and total time.
	Points map[string]PointStats `json:"points"`
}

// PointStats is one extension point's calls and time.
type PointStats struct {
	Calls int64         `json:"calls"`
	Total time.Duration `json:"totalNs"`
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Stats {
	s := &p.stats
	pt := func(t *timing) PointStats { return PointStats{Calls: t.n.Load(), Total: time.Duration(t.ns.Load())} }
	return Stats{
		PodsByCurve: s.curve.Load(), PodsByRequests: s.flat.Load(),
		Reserved: s.reserved.Load(), Unreserved: s.unreserved.Load(), Committed: s.committed.Load(),
		Bound: s.bound.Load(), BindErrors: s.bindErrors.Load(),
		Points: map[string]PointStats{
			"PreFilter": pt(&s.preFilter), "Filter": pt(&s.filter), "Score": pt(&s.score),
			"Reserve": pt(&s.reserve), "Unreserve": pt(&s.unreserve), "Permit": pt(&s.permit), "Bind": pt(&s.bind),
		},
	}
}

// PodInfo is what the plugin knows of one pod, for the debug endpoint.
type PodInfo struct {
	UID    types.UID  `json:"uid"`
	Node   string     `json:"node,omitempty"` // the node whose calendar holds it; "" when none does
	Hold   *core.Hold `json:"hold,omitempty"`
	Events []podEvent `json:"events"`
}

// Pod returns what the plugin knows of pod uid.
func (p *Plugin) Pod(uid types.UID) PodInfo {
	info := PodInfo{UID: uid}
	if node, ok := p.cals.nodeOf(uid); ok {
		if cal := p.cals.get(node); cal != nil {
			if h, ok := cal.Get(string(uid)); ok {
				info.Node, info.Hold = node, &h
			}
		}
	}
	p.stats.mu.Lock()
	info.Events = append([]podEvent(nil), p.stats.events[uid]...)
	p.stats.mu.Unlock()
	return info
}

// Calendar returns node's calendar view.
func (p *Plugin) Calendar(node string) (core.CalendarView, bool) {
	cal := p.cals.get(node)
	if cal == nil {
		return core.CalendarView{}, false
	}
	return cal.View(p.now()), true
}

// serveDebug serves the calendars as JSON on addr until ctx ends.
func (p *Plugin) serveDebug(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	js := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /calendars", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]core.CalendarView{}
		for _, n := range p.cals.names() {
			if v, ok := p.Calendar(n); ok {
				out[n] = v
			}
		}
		js(w, out)
	})
	mux.HandleFunc("GET /calendars/{node}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := p.Calendar(r.PathValue("node"))
		if !ok {
			http.Error(w, "no calendar for that node", http.StatusNotFound)
			return
		}
		js(w, v)
	})
	mux.HandleFunc("GET /pods/{uid}", func(w http.ResponseWriter, r *http.Request) {
		js(w, p.Pod(types.UID(r.PathValue("uid"))))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { js(w, p.Stats()) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s debug address: %w", Name, err)
	}
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("debug server", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.srv.Shutdown(sctx)
	}()
	p.log.Info("debug endpoint", "addr", ln.Addr().String())
	return nil
}
