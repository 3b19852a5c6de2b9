package predictor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls a predictor service. Safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the service at base ("http://host:port").
// hc may be nil (http.DefaultClient); deadlines come from the contexts.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), hc: hc}
}

// Predict asks for a signature's curve; ErrNoHistory when the service knows
// nothing to predict from.
func (c *Client) Predict(ctx context.Context, req PredictRequest) (PredictResponse, error) {
	var resp PredictResponse
	err := c.call(ctx, "/v1/predict", req, &resp)
	return resp, err
}

// Record records a finished run; when it returns nil the run is durable.
func (c *Client) Record(ctx context.Context, req RunRequest) (RunResponse, error) {
	var resp RunResponse
	err := c.call(ctx, "/v1/runs", req, &resp)
	return resp, err
}

func (c *Client) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", path, ErrServer, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("%s: read: %w: %w", path, ErrServer, err)
	}
	if resp.StatusCode/100 != 2 {
		var e errorResponse
		_ = json.Unmarshal(b, &e)
		kind := ErrServer
		switch resp.StatusCode {
		case http.StatusNotFound:
			kind = ErrNoHistory
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			kind = ErrBadRequest
		}
		return fmt.Errorf("%s: %s: %s: %w", path, resp.Status, e.Error, kind)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: decode: %w: %w", path, ErrServer, err)
	}
	return nil
}
