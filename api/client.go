package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to a Prescient daemon. It is safe for concurrent use.
type Client struct {
	base  string // scheme://host, no trailing slash
	token string
	hc    *http.Client
}

// NewUnixClient returns a client for the daemon's unix socket.
func NewUnixClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{base: "http://prescient", hc: &http.Client{Transport: tr}}
}

// NewTCPClient returns a client for a daemon listening on TCP (base like
// "https://host:7070"), authenticating with a bearer token. tlsConf may be
// nil.
func NewTCPClient(base, token string, tlsConf *tls.Config) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = 64
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request and decodes a JSON reply into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode reply to %s %s: %w", method, path, err)
	}
	return nil
}

// readError turns a non-2xx reply into an *Error.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(b, e) != nil || e.Message == "" {
		e.Code = CodeInternal
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}

// Ping checks that the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Node(ctx)
	return err
}

// Submit submits a task; it returns once the task is durably queued.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (*Task, error) {
	var t Task
	if err := c.do(ctx, http.MethodPost, "/v1/tasks", req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Get returns one task.
func (c *Client) Get(ctx context.Context, id string) (*Task, error) {
	var t Task
	if err := c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListOptions filter List; zero fields select everything.
type ListOptions struct {
	State     string
	Signature string
	Limit     int
}

// List returns the caller's tasks (every task for root), newest first.
func (c *Client) List(ctx context.Context, o ListOptions) ([]Task, error) {
	q := url.Values{}
	if o.State != "" {
		q.Set("state", o.State)
	}
	if o.Signature != "" {
		q.Set("signature", o.Signature)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	path := "/v1/tasks"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var ts []Task
	if err := c.do(ctx, http.MethodGet, path, nil, &ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// Cancel cancels a queued or running task and returns it as it now is (a
// running task turns cancelled once its processes are gone; see Wait).
func (c *Client) Cancel(ctx context.Context, id string) (*Task, error) {
	var t Task
	if err := c.do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/cancel", nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Curve returns a task's measured samples.
func (c *Client) Curve(ctx context.Context, id string) ([]Point, error) {
	var ps []Point
	if err := c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id)+"/curve", nil, &ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// Node returns the daemon's capacity and queue.
func (c *Client) Node(ctx context.Context) (*NodeStatus, error) {
	var n NodeStatus
	if err := c.do(ctx, http.MethodGet, "/v1/node", nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// Live returns the caller's tasks not ended, with the scheduler's view
// (reservations, allocations, use now): every running task and at most
// limit queued ones (0: the daemon's default), running first, then
// queued by planned start. It is the dashboard's data (GET
// /v1/dashboard/live); a daemon started with --dashboard=false answers
// 404.
func (c *Client) Live(ctx context.Context, limit int) ([]Task, error) {
	path := "/v1/dashboard/live"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var r struct {
		Tasks []Task `json:"tasks"`
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &r); err != nil {
		return nil, err
	}
	return r.Tasks, nil
}

// Logs streams a task's output: stream is "stdout" or "stderr". With
// follow, the stream stays open until the task has ended and all its
// output was sent. The caller closes the reader.
func (c *Client) Logs(ctx context.Context, id, stream string, follow bool) (io.ReadCloser, error) {
	q := url.Values{"stream": {stream}}
	if follow {
		q.Set("follow", "true")
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp.Body, nil
}

// EventStream reads Server-Sent Events from GET /v1/events.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Events subscribes to task state changes (the caller's tasks; all for
// root). Close the stream when done.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	return &EventStream{body: resp.Body, sc: sc}, nil
}

// Next blocks for the next event.
func (s *EventStream) Next() (Event, error) {
	var data []byte
	for s.sc.Scan() {
		line := s.sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) == 0 {
				continue // keep-alive or a bare event line
			}
			var ev Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return Event{}, fmt.Errorf("decode event: %w", err)
			}
			return ev, nil
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
	}
	if err := s.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}

// Close ends the subscription.
func (s *EventStream) Close() error { return s.body.Close() }

// Wait blocks until task id has ended and returns its final form. It
// follows the event stream and falls back to polling if that breaks.
func (c *Client) Wait(ctx context.Context, id string) (*Task, error) {
	for {
		evs, err := c.Events(ctx)
		if err != nil {
			var ae *Error
			if errors.As(err, &ae) || ctx.Err() != nil {
				return nil, err
			}
			// The daemon is unreachable (restarting?): try again.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		// Subscribed first, then read: no end can slip between the two.
		t, err := c.Get(ctx, id)
		if err != nil || TerminalState(t.State) {
			evs.Close()
			return t, err
		}
		for {
			ev, err := evs.Next()
			if err != nil {
				evs.Close()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					break // the daemon restarted: subscribe again
				}
				return nil, err
			}
			if ev.Task.ID == id && TerminalState(ev.Task.State) {
				evs.Close()
				return &ev.Task, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
