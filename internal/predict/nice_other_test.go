//go:build !linux

package predict

func lowerThread() {}
