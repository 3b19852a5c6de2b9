package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/prescient-sched/prescient/api"
)

type ctxKey int

const identityKey ctxKey = 1

// handler returns the API's routes. Every route needs an identity in the
// request context (set by the listener's ConnContext or by tokenAuth).
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tasks", d.handleSubmit)
	mux.HandleFunc("GET /v1/tasks", d.handleList)
	mux.HandleFunc("GET /v1/tasks/{id}", d.handleGet)
	mux.HandleFunc("POST /v1/tasks/{id}/cancel", d.handleCancel)
	mux.HandleFunc("GET /v1/tasks/{id}/logs", d.handleLogs)
	mux.HandleFunc("GET /v1/tasks/{id}/curve", d.handleCurve)
	mux.HandleFunc("GET /v1/events", d.handleEvents)
	mux.HandleFunc("GET /v1/node", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, d.Node()) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.cfg.Gatherer, promhttp.HandlerOpts{}))
	d.mountDashboard(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(identityKey).(identity); !ok {
			writeError(w, &api.Error{Status: http.StatusUnauthorized, Code: api.CodeUnauthorized, Message: "caller unknown"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func who(r *http.Request) identity { return r.Context().Value(identityKey).(identity) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		ae = &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()}
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="prescient"`)
	}
	writeJSON(w, ae.Status, ae)
}

func (d *Daemon) handleSubmit(w http.ResponseWriter, r *http.Request) {
	req, err := api.DecodeSubmit(r.Body, d.cfg.Input)
	if err != nil {
		d.m.submitted.WithLabelValues("rejected").Inc()
		writeError(w, err)
		return
	}
	t, err := d.Submit(who(r), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, t)
}

func (d *Daemon) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := api.ListOptions{State: q.Get("state"), Signature: q.Get("signature")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "limit must be a non-negative integer"})
			return
		}
		o.Limit = n
	}
	ts, err := d.List(who(r), o)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (d *Daemon) handleGet(w http.ResponseWriter, r *http.Request) {
	t, err := d.Get(who(r), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (d *Daemon) handleCancel(w http.ResponseWriter, r *http.Request) {
	t, err := d.Cancel(who(r), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (d *Daemon) handleCurve(w http.ResponseWriter, r *http.Request) {
	ps, err := d.Curve(who(r), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

// handleLogs sends a task's stdout.log or stderr.log; with follow=true it
// keeps sending what is appended (across rotations) until the task has
// ended and the file is drained. The daemon reads as root, so every open
// goes through logReader's checks: a file that is not the task's regular
// log file (a symlink, a FIFO, a device, another user's file, planted in a
// directory an older daemon left to the user) is refused with 403 before
// anything is sent. A file not written yet reads as empty.
func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := d.Get(who(r), id)
	if err != nil {
		writeError(w, err)
		return
	}
	stream := r.URL.Query().Get("stream")
	if stream == "" {
		stream = "stdout"
	}
	if stream != "stdout" && stream != "stderr" {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "stream must be stdout or stderr"})
		return
	}
	follow := r.URL.Query().Get("follow") == "true" || r.URL.Query().Get("follow") == "1"
	lr := &logReader{path: t.LogDir, name: stream + ".log", owner: t.Owner.UID}
	defer lr.close()
	if err := lr.open(); err != nil {
		writeError(w, logReadError(id, lr.name, err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	ctx := r.Context()
	buf := make([]byte, 32<<10)
	drain := func() bool {
		for {
			n, err := lr.f.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return false
				}
			}
			if err != nil {
				break
			}
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	for {
		if err := lr.open(); err != nil {
			// The reply has started: a refusal can only end it.
			d.log.Info("log stream ended", "task", id, "file", lr.name, "err", err)
			return
		}
		// Check before draining: anything written before the task ended is
		// in the file by the time it is marked ended.
		live := follow && d.active(id)
		if lr.f != nil {
			if !drain() {
				return
			}
			// Rotated? The shim closed the old file before it renamed it,
			// so one more drain has all of it; then on to the new one.
			if lr.rotated() {
				if !drain() {
					return
				}
				lr.f.Close()
				lr.f = nil
				continue
			}
		}
		if !live {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logReader reads one log file of a task as its owner may: see
// logDir.openLog. Not safe for concurrent use.
type logReader struct {
	path  string // the task's log directory
	name  string // stdout.log or stderr.log
	owner uint32 // the task's user
	dir   *logDir
	f     *os.File
}

// open opens the directory and the file, when they exist and are not open
// yet; it returns an error only for a failure or a refusal, not for a
// missing file.
func (l *logReader) open() error {
	if l.path == "" {
		return nil // a record made without the daemon: no logs
	}
	if l.dir == nil {
		dir, err := openLogDir(l.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		l.dir = dir
	}
	if l.f == nil {
		f, err := l.dir.openLog(l.name, l.owner)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		l.f = f
	}
	return nil
}

// rotated reports whether the name now holds another file than the open one.
func (l *logReader) rotated() bool {
	st, err := l.dir.stat(l.name)
	if err != nil {
		return false // between the rename and the new file
	}
	fi, err := l.f.Stat()
	if err != nil {
		return false
	}
	fst, ok := fi.Sys().(*syscall.Stat_t)
	return ok && (uint64(fst.Dev) != uint64(st.Dev) || uint64(fst.Ino) != uint64(st.Ino))
}

func (l *logReader) close() {
	if l.f != nil {
		l.f.Close()
	}
	if l.dir != nil {
		l.dir.Close()
	}
}

// logReadError is the API error for a log file that could not be read.
func logReadError(id, name string, err error) *api.Error {
	if errors.Is(err, ErrUnsafeLog) {
		why := strings.TrimSuffix(err.Error(), ": "+ErrUnsafeLog.Error())
		return &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden,
			Message: fmt.Sprintf("refusing to read %s of task %s: %s", name, id, why)}
	}
	return &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal,
		Message: fmt.Sprintf("read %s of task %s: %v", name, id, err)}
}

// --- events ----------------------------------------------------------------

type subscriber struct {
	who identity
	ch  chan []byte
}

// publish sends a task event to the subscribers allowed to see it. A
// subscriber that does not keep up is dropped (its stream ends).
func (d *Daemon) publish(t api.Task) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.subs) == 0 {
		return
	}
	data, err := json.Marshal(api.Event{Type: "task", Task: t})
	if err != nil {
		return
	}
	for s := range d.subs {
		if !s.who.root() && s.who.UID != t.Owner.UID {
			continue
		}
		select {
		case s.ch <- data:
		default:
			delete(d.subs, s)
			close(s.ch)
		}
	}
}

func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, errors.New("streaming unsupported"))
		return
	}
	s := &subscriber{who: who(r), ch: make(chan []byte, 1024)}
	d.mu.Lock()
	d.subs[s] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if _, ok := d.subs[s]; ok {
			delete(d.subs, s)
			close(s.ch)
		}
		d.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": subscribed\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.stop:
			return
		case <-keep.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case data, ok := <-s.ch:
			if !ok {
				return
			}
			if _, err := fmt.Fprintf(w, "event: task\ndata: %s\n\n", data); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
