package trace

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/prescient-sched/prescient/internal/resource"
)

// Errors returned by this package.
var (
	// ErrMalformed wraps every refusal of a file's content; the message
	// carries "file:line:col: what".
	ErrMalformed = errors.New("trace: malformed file")
	// ErrFormat is returned for an unknown format name.
	ErrFormat = errors.New("trace: unknown format")
)

// Format names a trace layout.
type Format string

// The supported formats.
const (
	Google2011 Format = "google2011"
	Google2019 Format = "google2019"
	Bitbrains  Format = "bitbrains"
)

// Formats lists the supported formats in a stable order.
var Formats = []Format{Google2011, Google2019, Bitbrains}

// Dims returns the dimensions a format carries (bitbrains' disk is IO, its
// network Net).
func (f Format) Dims() []resource.Dim {
	if f == Bitbrains {
		return []resource.Dim{resource.CPU, resource.Memory, resource.IO, resource.Net}
	}
	return []resource.Dim{resource.CPU, resource.Memory}
}

// StepSeconds is the sampling step of every supported trace (5 minutes).
const StepSeconds = 300

// SlotsPerDay is the number of steps in one day.
const SlotsPerDay = 86400 / StepSeconds

// Run is one identity's consecutive samples.
type Run struct {
	Identity string // job, job/task or VM
	Period   string // "day3", "2013-07"; empty for google2019
	// Start is the time of sample 0 in seconds since the trace's origin
	// (google2011, google2019) or the Unix epoch (bitbrains).
	Start int64
	// Values[d] holds one value per step for each dimension the format
	// carries, in the trace's unit; nil for the others.
	Values [resource.NumDims][]float64
	// ScoreFrom is the first index whose next-step allocation may be
	// scored; samples before it are context only (see SplitAt).
	ScoreFrom int
}

// Len is the number of samples.
func (r *Run) Len() int { return len(r.Values[resource.CPU]) }

// End is the time just after the last sample.
func (r *Run) End() int64 { return r.Start + int64(r.Len())*StepSeconds }

// Slot is the time-of-day slot (0…SlotsPerDay−1) of sample i.
func (r *Run) Slot(i int) int {
	s := (r.Start/StepSeconds + int64(i)) % SlotsPerDay
	if s < 0 {
		s += SlotsPerDay
	}
	return int(s)
}

// ParseFormat validates a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("%q (want google2011, google2019 or bitbrains): %w", s, ErrFormat)
}

// ReadFile reads a whole trace file into runs sorted by start, then identity.
func ReadFile(ctx context.Context, f Format, path string) ([]*Run, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	defer fh.Close()
	return Read(ctx, f, path, fh)
}

type layout struct {
	cols []string // required header names; values are read in this order
	// row turns the required fields (already located) into a run key, a
	// time in seconds and per-dim values. fields[i] is cols[i].
	row func(p *parser, fields []string) (key rowKey, ts int64, v [resource.NumDims]float64, err error)
}

type rowKey struct{ identity, period string }

var layouts = map[Format]layout{
	Google2011: {
		cols: []string{"job_id", "day", "step_5min", "cpu_util_pct", "mem_util_pct"},
		row: func(p *parser, f []string) (rowKey, int64, [resource.NumDims]float64, error) {
			var v [resource.NumDims]float64
			day, err := p.int(f, 1, 1, 1<<20)
			if err != nil {
				return rowKey{}, 0, v, err
			}
			step, err := p.int(f, 2, 0, SlotsPerDay-1)
			if err != nil {
				return rowKey{}, 0, v, err
			}
			if v[resource.CPU], err = p.value(f, 3); err != nil {
				return rowKey{}, 0, v, err
			}
			if v[resource.Memory], err = p.value(f, 4); err != nil {
				return rowKey{}, 0, v, err
			}
			if err := p.ident(f, 0); err != nil {
				return rowKey{}, 0, v, err
			}
			ts := (day-1)*86400 + step*StepSeconds
			return rowKey{f[0], "day" + f[1]}, ts, v, nil
		},
	},
	Google2019: {
		cols: []string{"time", "collection_id", "instance_index", "avg_cpu_usage", "avg_memory_usage"},
		row: func(p *parser, f []string) (rowKey, int64, [resource.NumDims]float64, error) {
			var v [resource.NumDims]float64
			us, err := p.int(f, 0, 0, math.MaxInt64)
			if err != nil {
				return rowKey{}, 0, v, err
			}
			if err := p.ident(f, 1); err != nil {
				return rowKey{}, 0, v, err
			}
			if err := p.ident(f, 2); err != nil {
				return rowKey{}, 0, v, err
			}
			if v[resource.CPU], err = p.value(f, 3); err != nil {
				return rowKey{}, 0, v, err
			}
			if v[resource.Memory], err = p.value(f, 4); err != nil {
				return rowKey{}, 0, v, err
			}
			return rowKey{f[1] + "/" + f[2], ""}, us / 1e6, v, nil
		},
	},
	Bitbrains: {
		cols: []string{"vm_id", "month", "timestamp_s", "cpu_usage_mhz", "mem_usage_kb",
			"disk_read_kBps", "disk_write_kBps", "net_rx_kBps", "net_tx_kBps"},
		row: func(p *parser, f []string) (rowKey, int64, [resource.NumDims]float64, error) {
			var v [resource.NumDims]float64
			if err := p.ident(f, 0); err != nil {
				return rowKey{}, 0, v, err
			}
			if err := p.ident(f, 1); err != nil {
				return rowKey{}, 0, v, err
			}
			ts, err := p.int(f, 2, 0, math.MaxInt64)
			if err != nil {
				return rowKey{}, 0, v, err
			}
			var x [6]float64
			for i := range x {
				if x[i], err = p.value(f, 3+i); err != nil {
					return rowKey{}, 0, v, err
				}
			}
			v[resource.CPU] = x[0]
			v[resource.Memory] = x[1] / 1024 // MB
			v[resource.IO] = x[2] + x[3]
			v[resource.Net] = x[4] + x[5]
			return rowKey{f[0], f[1]}, ts, v, nil
		},
	},
}

// parser carries the position for error messages.
type parser struct {
	name string
	line int
	cols []string // required column names
	idx  []int    // field index in the record of each required column
}

func (p *parser) errf(field int, format string, a ...any) error {
	return fmt.Errorf("%s:%d:%d: %s: %w", p.name, p.line, p.idx[field]+1, fmt.Sprintf(format, a...), ErrMalformed)
}

func (p *parser) int(f []string, i int, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(f[i]), 10, 64)
	if err != nil {
		return 0, p.errf(i, "%s: not an integer: %q", p.colName(i), clip(f[i]))
	}
	if n < lo || n > hi {
		return 0, p.errf(i, "%s: %d out of range [%d, %d]", p.colName(i), n, lo, hi)
	}
	return n, nil
}

func (p *parser) value(f []string, i int) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(f[i]), 64)
	if err != nil {
		return 0, p.errf(i, "%s: not a number: %q", p.colName(i), clip(f[i]))
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 || x > 1e15 {
		return 0, p.errf(i, "%s: %v out of range [0, 1e15]", p.colName(i), x)
	}
	return x, nil
}

func (p *parser) ident(f []string, i int) error {
	s := f[i]
	if s == "" || len(s) > 128 || strings.TrimSpace(s) != s {
		return p.errf(i, "%s: bad identifier %q", p.colName(i), clip(s))
	}
	return nil
}

func (p *parser) colName(i int) string { return p.cols[i] }

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Read streams one trace from r; name is used in error messages. Rows of
// one run must be in time order (the shared files are); rows of different
// runs may interleave. Runs come back sorted by Start, then Identity, then
// Period.
func Read(ctx context.Context, f Format, name string, r io.Reader) ([]*Run, error) {
	lay, ok := layouts[f]
	if !ok {
		return nil, fmt.Errorf("%q: %w", f, ErrFormat)
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 0 // header sets it
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:1:1: empty file: %w", name, ErrMalformed)
		}
		return nil, csvErr(name, err)
	}
	p := &parser{name: name, line: 1, cols: lay.cols, idx: make([]int, len(lay.cols))}
	for i, c := range lay.cols {
		j := slices.IndexFunc(header, func(h string) bool { return strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) == c })
		if j < 0 {
			return nil, fmt.Errorf("%s:1:1: header lacks column %q (is this a %s file?): %w", name, c, f, ErrMalformed)
		}
		p.idx[i] = j
	}
	type acc struct {
		run  *Run
		last int64
	}
	runs := map[rowKey]*acc{}
	fields := make([]string, len(lay.cols))
	for n := 0; ; n++ {
		if n%8192 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvErr(name, err)
		}
		p.line, _ = cr.FieldPos(0)
		for i, j := range p.idx {
			fields[i] = rec[j]
		}
		key, ts, v, err := lay.row(p, fields)
		if err != nil {
			return nil, err
		}
		a := runs[key]
		if a == nil {
			a = &acc{run: &Run{Identity: key.identity, Period: key.period, Start: ts}, last: ts - StepSeconds}
			for _, d := range f.Dims() {
				a.run.Values[d] = make([]float64, 0, 64)
			}
			runs[key] = a
		}
		if ts <= a.last {
			return nil, p.errf(timeField(f), "time %d is not after the run's previous sample at %d", ts, a.last)
		}
		a.last = ts
		for _, d := range f.Dims() {
			a.run.Values[d] = append(a.run.Values[d], v[d])
		}
	}
	out := make([]*Run, 0, len(runs))
	for _, a := range runs {
		out = append(out, a.run)
	}
	slices.SortFunc(out, func(a, b *Run) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Identity, b.Identity), cmp.Compare(a.Period, b.Period))
	})
	return out, nil
}

func timeField(f Format) int {
	switch f {
	case Google2011:
		return 2
	case Bitbrains:
		return 2
	}
	return 0
}

func csvErr(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d:%d: %v: %w", name, pe.Line, pe.Column, pe.Err, ErrMalformed)
	}
	return fmt.Errorf("%s: read: %w", name, err)
}
