package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// series is one run's machine curves for the plot: per sample interval,
// the seconds since the run's first submit (the interval's end), the CPU
// busy fraction and the memory in use (GiB).
type series struct {
	Label string
	T     []float64
	CPU   []float64 // 0..1 of the machine
	MemGB []float64
}

// seriesOf turns a run's samples into a series, from the last sample before
// start to the first after start+spanS.
func seriesOf(label string, samples []nodeSample, s summary) series {
	out := series{Label: label}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		t := b.T.Sub(s.Start).Seconds()
		if t < 0 || a.T.Sub(s.Start).Seconds() > s.MakespanS {
			continue
		}
		cpu := 0.0
		if b.Total > a.Total {
			cpu = float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
		}
		out.T = append(out.T, round3(t))
		out.CPU = append(out.CPU, cpu)
		out.MemGB = append(out.MemGB, float64(b.MemUsedKB)/(1<<20))
	}
	return out
}

// Plot geometry (SVG user units).
const (
	plotW       = 960
	panelH      = 260
	marginL     = 60
	marginR     = 200 // legend
	marginT     = 40
	panelGap    = 60
	marginB     = 40
	plotInnerW  = plotW - marginL - marginR
	plotHeightT = marginT + 2*panelH + panelGap + marginB
)

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// writePlot writes an SVG of two panels over time, one line per series:
// machine CPU busy (%) above, memory in use (GiB) below.
func writePlot(w io.Writer, title string, ss []series) error {
	var maxT, maxMem float64
	for _, s := range ss {
		for i := range s.T {
			maxT = max(maxT, s.T[i])
			maxMem = max(maxMem, s.MemGB[i])
		}
	}
	maxT = niceCeil(maxT)
	maxMem = niceCeil(maxMem)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotHeightT, plotW, plotHeightT)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", marginL, esc(title))
	top0 := float64(marginT)
	top1 := float64(marginT + panelH + panelGap)
	axes(&b, top0, maxT, 100, "machine CPU busy (%)")
	axes(&b, top1, maxT, maxMem, "memory in use (GiB)")
	for i, s := range ss {
		color := palette[i%len(palette)]
		cpu := make([]float64, len(s.CPU))
		for k, c := range s.CPU {
			cpu[k] = 100 * c
		}
		line(&b, top0, maxT, 100, s.T, cpu, color)
		line(&b, top1, maxT, maxMem, s.T, s.MemGB, color)
		y := marginT + 14 + 18*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n",
			plotW-marginR+16, y-4, plotW-marginR+40, y-4, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", plotW-marginR+46, y, esc(s.Label))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">seconds since the first submit</text>`+"\n",
		marginL+plotInnerW/2, plotHeightT-6)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// axes draws a panel's frame, grid and tick labels.
func axes(b *bytes.Buffer, top, maxX, maxY float64, ylabel string) {
	fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", marginL, top, plotInnerW, panelH)
	fmt.Fprintf(b, `<text x="%d" y="%.1f">%s</text>`+"\n", marginL, top-6, esc(ylabel))
	for k := 0; k <= 4; k++ {
		y := top + panelH - float64(panelH)*float64(k)/4
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y, marginL+plotInnerW, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y+4, tick(maxY*float64(k)/4))
	}
	for k := 0; k <= 5; k++ {
		x := marginL + float64(plotInnerW)*float64(k)/5
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+panelH+16, tick(maxX*float64(k)/5))
	}
}

// line draws one polyline in a panel.
func line(b *bytes.Buffer, top, maxX, maxY float64, xs, ys []float64, color string) {
	if len(xs) == 0 || maxX <= 0 || maxY <= 0 {
		return
	}
	pts := make([]string, len(xs))
	for i := range xs {
		x := marginL + float64(plotInnerW)*xs[i]/maxX
		y := top + panelH - float64(panelH)*min(ys[i], maxY)/maxY
		pts[i] = fmt.Sprintf("%.1f,%.1f", x, y)
	}
	fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
}

// niceCeil rounds x up to 1, 2 or 5 times a power of ten (1 for x <= 0).
func niceCeil(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if x <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// tick formats an axis label: no trailing zeros, at most 3 decimals.
func tick(v float64) string {
	return strconv.FormatFloat(round3(v), 'f', -1, 64)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
