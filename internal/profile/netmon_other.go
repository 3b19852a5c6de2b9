//go:build !linux

package profile

import (
	"log/slog"
	"os"
)

// NetMonitor counts network bytes per cgroup with eBPF on Linux; on this
// platform OpenNetMonitor always fails with ErrNotSupported and a nil
// *NetMonitor is the only one there is.
type NetMonitor struct{}

// OpenNetMonitor returns ErrNotSupported: eBPF cgroup programs are Linux
// only.
func OpenNetMonitor(v2Root string, logger *slog.Logger) (*NetMonitor, error) {
	return nil, ErrNotSupported
}

// Counters reports nothing: ok is false.
func (m *NetMonitor) Counters(cgroupID uint64) (rxBytes, txBytes uint64, ok bool) { return 0, 0, false }

// Drops reports nothing: ok is false.
func (m *NetMonitor) Drops(cgroupID uint64) (rxPackets, txPackets uint64, ok bool) {
	return 0, 0, false
}

// Forget returns ErrNotSupported.
func (m *NetMonitor) Forget(cgroupID uint64) error { return ErrNotSupported }

// SetNetLimit returns ErrNotSupported.
func (m *NetMonitor) SetNetLimit(cgroupID uint64, mbps float64) error { return ErrNotSupported }

// ClearNetLimit does nothing.
func (m *NetMonitor) ClearNetLimit(cgroupID uint64) {}

// Close does nothing.
func (m *NetMonitor) Close() error { return nil }

func (m *NetMonitor) lookup(id *uint64, v *netValue) (bool, error) { return false, ErrNotSupported }

// LimitsFile returns ErrNotSupported.
func (m *NetMonitor) LimitsFile() (*os.File, error) { return nil, ErrNotSupported }

// NetLimiter sets network limits through a NetMonitor's map on Linux.
type NetLimiter struct{}

// OpenNetLimiter returns ErrNotSupported.
func OpenNetLimiter(fd int, logger *slog.Logger) (*NetLimiter, error) { return nil, ErrNotSupported }

// SetNetLimit returns ErrNotSupported.
func (l *NetLimiter) SetNetLimit(cgroupID uint64, mbps float64) error { return ErrNotSupported }

// ClearNetLimit does nothing.
func (l *NetLimiter) ClearNetLimit(cgroupID uint64) {}

// Close does nothing.
func (l *NetLimiter) Close() error { return nil }
