package scheduler

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrArgs reports invalid plugin arguments.
var ErrArgs = errors.New("scheduler: invalid plugin args")

// Scoring strategies.
const (
	// ScorePack prefers the node left fullest at the pod's peaks: curves
	// that fill each other's troughs share nodes, whole nodes stay free.
	ScorePack = "pack"
	// ScoreSpread prefers the node left emptiest at the pod's peaks.
	ScoreSpread = "spread"
)

// Args are the plugin's arguments (pluginConfig[].args of the profile,
// JSON or YAML). The zero value of each field but PredictorURL means its
// default.
type Args struct {
	// PredictorURL is the predictor service ("http://prescient-predictor.prescient-system:8080"); required.
	PredictorURL string `json:"predictorURL"`
	// PredictTimeout bounds the predictor calls of one pod; default 2 s.
	// A pod whose prediction fails is placed by its requests.
	PredictTimeout metav1.Duration `json:"predictTimeout,omitzero"`
	// CacheTTL is how long a prediction is reused for pods of the same
	// signature; default 30 s; negative: never cached.
	CacheTTL metav1.Duration `json:"cacheTTL,omitzero"`
	// Sources are the cold-start rungs trusted to place a pod by its
	// curve; default exact, size, code (others are placed by requests).
	Sources []string `json:"sources,omitempty"`
	// Slot, Horizon and StartSlack configure the node calendars (see
	// core.CalendarConfig); defaults 10 s, 2 h and one slot.
	Slot       metav1.Duration `json:"slot,omitzero"`
	Horizon    metav1.Duration `json:"horizon,omitzero"`
	StartSlack metav1.Duration `json:"startSlack,omitzero"`
	// Scoring is ScorePack (default) or ScoreSpread.
	Scoring string `json:"scoring,omitempty"`
	// DebugAddress, when set, serves the calendars as JSON there
	// (GET /calendars, /calendars/{node}, /pods/{uid}, /stats). Keep it on
	// loopback: it is not authenticated.
	DebugAddress string `json:"debugAddress,omitempty"`
	// EnvDeny adds variable-name patterns to the signature's deny list
	// (the webhook's --env-deny: the two must agree).
	EnvDeny []string `json:"envDeny,omitempty"`
	// ResolveOwners resolves a Job to its CronJob for the signature, as
	// the webhook does (default true; only used for pods the webhook did
	// not see).
	ResolveOwners *bool `json:"resolveOwners,omitempty"`
}

func (a *Args) validate() error {
	if a.PredictTimeout.Duration == 0 {
		a.PredictTimeout.Duration = 2 * time.Second
	}
	if a.CacheTTL.Duration == 0 {
		a.CacheTTL.Duration = 30 * time.Second
	}
	if a.Sources == nil {
		a.Sources = []string{"exact", "size", "code"}
	}
	if a.Scoring == "" {
		a.Scoring = ScorePack
	}
	if a.ResolveOwners == nil {
		yes := true
		a.ResolveOwners = &yes
	}
	u, err := url.Parse(a.PredictorURL)
	switch {
	case a.PredictorURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("predictorURL %q: want http(s)://host[:port]: %w", a.PredictorURL, ErrArgs)
	case a.PredictTimeout.Duration < 0:
		return fmt.Errorf("predictTimeout %v: %w", a.PredictTimeout.Duration, ErrArgs)
	case a.Scoring != ScorePack && a.Scoring != ScoreSpread:
		return fmt.Errorf("scoring %q: want %s or %s: %w", a.Scoring, ScorePack, ScoreSpread, ErrArgs)
	}
	return nil
}
