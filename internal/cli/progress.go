package cli

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// progress is where a long command (eval) writes its progress lines. On a
// terminal each line is printed above a spinner that shows the step under
// way and for how long, so a long training step is visibly alive; on
// anything else the lines pass through as they are. Safe for concurrent
// use; Stop ends the spinner.
type progress struct {
	w    io.Writer
	mu   sync.Mutex // guards buf
	buf  bytes.Buffer
	spin *spinner // nil: not a terminal
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if isTerminal(w) {
		p.spin = startSpinner(w, "starting")
	}
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	if p.spin == nil {
		return p.w.Write(b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadString('\n')
		if err != nil { // no newline yet: keep the rest
			p.buf.Reset()
			p.buf.WriteString(line)
			break
		}
		line = strings.TrimRight(line, "\n")
		p.spin.mu.Lock()
		_, _ = io.WriteString(p.w, "\r\x1b[K"+line+"\n")
		p.spin.mu.Unlock()
		p.spin.set("after: " + strings.TrimSpace(strings.TrimPrefix(line, "eval:")))
	}
	return len(b), nil
}

// Stop ends the spinner (idempotent).
func (p *progress) Stop() {
	if p.spin != nil {
		p.spin.Stop()
	}
}
