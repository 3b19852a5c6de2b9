package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSeriesOf(t *testing.T) {
	s := summary{Start: at(0), MakespanS: 10}
	got := seriesOf("run", testSamples(), s)
	// intervals ending at 0..11: the one ending at 0 starts before the run
	// (kept: it reaches the start), the one ending at 12 starts after it.
	wantT := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	if !slices.Equal(got.T, wantT) {
		t.Fatalf("T = %v, want %v", got.T, wantT)
	}
	if got.CPU[1] != 1 || got.CPU[0] != 0.1 || got.CPU[11] != 0.1 {
		t.Errorf("CPU = %v: want 0.1 before the run, 1 in it, 0.1 after", got.CPU)
	}
	if got.MemGB[4] != 3 || got.MemGB[1] != 1 {
		t.Errorf("MemGB = %v: want 3 at t=4, 1 at t=1", got.MemGB)
	}
}

func TestNiceCeil(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{0, 1}, {-3, 1}, {0.7, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {10, 10}, {180, 200}, {212.5, 500}, {23.9, 50},
	}
	for _, tt := range tests {
		if got := niceCeil(tt.in); got != tt.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// The plot is well-formed SVG with two polylines per series (CPU, memory),
// every point inside its panel, and the labels escaped.
func TestWritePlot(t *testing.T) {
	ss := []series{
		{Label: "serial", T: []float64{0, 1, 2, 3}, CPU: []float64{0.5, 0.5, 1, 0}, MemGB: []float64{1, 2, 2.5, 1}},
		{Label: "predict <warm> & co", T: []float64{0, 1, 2}, CPU: []float64{1, 1, 1}, MemGB: []float64{3, 4, 1}},
		{Label: "empty"},
	}
	var b bytes.Buffer
	if err := writePlot(&b, "title & more", ss); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	var polylines [][]string
	var texts []string
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
		}
		switch el := tok.(type) {
		case xml.StartElement:
			inText = el.Name.Local == "text"
			if el.Name.Local == "polyline" {
				for _, a := range el.Attr {
					if a.Name.Local == "points" {
						polylines = append(polylines, strings.Fields(a.Value))
					}
				}
			}
		case xml.CharData:
			if inText {
				texts = append(texts, string(el))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if len(polylines) != 4 {
		t.Fatalf("%d polylines, want 4 (2 series with points x CPU, memory)", len(polylines))
	}
	for i, want := range []int{4, 4, 3, 3} {
		if len(polylines[i]) != want {
			t.Errorf("polyline %d has %d points, want %d", i, len(polylines[i]), want)
		}
	}
	for _, pl := range polylines {
		for _, p := range pl {
			xs, ys, _ := strings.Cut(p, ",")
			x, _ := strconv.ParseFloat(xs, 64)
			y, _ := strconv.ParseFloat(ys, 64)
			if x < marginL || x > marginL+plotInnerW || y < marginT || y > plotHeightT-marginB {
				t.Errorf("point %s outside the panels", p)
			}
		}
	}
	for _, want := range []string{"title & more", "predict <warm> & co", "serial", "empty", "machine CPU busy (%)", "memory in use (GiB)"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
	// The time axis ends at a round number past the longest run.
	if !slices.Contains(texts, "5") {
		t.Errorf("x axis ticks %q: want 0..5", texts)
	}
}

func TestTick(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{{0, "0"}, {25, "25"}, {1.25, "1.25"}, {3.75, "3.75"}, {0.1 + 0.2, "0.3"}, {100, "100"}}
	for _, tt := range tests {
		if got := tick(tt.in); got != tt.want {
			t.Errorf("tick(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
