package eval

import (
	"fmt"
	"math"
	"strings"

	"github.com/prescient-sched/prescient/internal/trace"
)

// plotSVG draws, per dimension, each model's test slack (x) against its
// violation rate (y). Hand-written: a scatter plot needs no chart library.
func plotSVG(f trace.Format, rep *Report) string {
	dims := f.Dims()
	const pw, ph, pad = 320.0, 240.0, 50.0
	W := pad + float64(len(dims))*(pw+pad)
	H := ph + 2*pad + 20*float64(len(ModelNames))/2
	colors := []string{"#888", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#d62728", "#000"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="18" font-size="14">%s: test slack vs violation rate (margins set on train for ≤ 1 %% violations)</text>`+"\n", pad, f)
	for di, d := range dims {
		x0, y0 := pad+float64(di)*(pw+pad), pad
		var xmax, ymax float64 = 0.1, 0.02
		for _, ms := range rep.Models {
			if m, ok := ms[d.String()]; ok {
				xmax, ymax = max(xmax, m.Slack), max(ymax, m.ViolationRate)
			}
		}
		// Keep the interesting region readable: slack beyond 2.5 × the
		// moving-window max is drawn clipped at the right edge.
		if m, ok := rep.Models["moving_window_max"][d.String()]; ok && m.Slack > 0 {
			xmax = min(xmax, 2.5*m.Slack)
		}
		xmax, ymax = niceCeil(xmax*1.05), niceCeil(ymax*1.05)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", x0, y0, pw, ph)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", x0+4, y0-6, d)
		for i := 0; i <= 4; i++ {
			fx := float64(i) / 4
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.2f</text>`, x0+fx*pw, y0+ph+14, fx*xmax)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%.1f%%</text>`+"\n", x0-3, y0+ph-fx*ph+4, 100*fx*ymax)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">slack</text>`+"\n", x0+pw/2, y0+ph+28)
		// 1.5 % violation target line.
		if yl := 0.015 / ymax; yl <= 1 {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="4 3"/>`+"\n", x0, x0+pw, y0+ph-yl*ph, y0+ph-yl*ph)
		}
		for mi, name := range ModelNames {
			m, ok := rep.Models[name][d.String()]
			if !ok {
				continue
			}
			cx, cy := x0+min(m.Slack/xmax, 1)*pw, y0+ph-m.ViolationRate/ymax*ph
			if m.Slack > xmax {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%.1f →</text>`+"\n", cx-7, cy+4, m.Slack)
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s"><title>%s %s: slack %.3f, violations %.2f%%</title></circle>`+"\n", cx, cy, colors[mi%len(colors)], name, d, m.Slack, 100*m.ViolationRate)
		}
	}
	for mi, name := range ModelNames {
		x := pad + float64(mi%4)*170
		y := ph + 2*pad + 10 + float64(mi/4)*18
		fmt.Fprintf(&b, `<circle cx="%.0f" cy="%.0f" r="5" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", x, y, colors[mi%len(colors)], x+9, y+4, name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceCeil(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}
