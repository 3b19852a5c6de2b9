package store

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestLockPIDs(t *testing.T) {
	const locks = `1: FLOCK  ADVISORY  WRITE 5678 fd:00:2345 0 EOF
2: -> FLOCK  ADVISORY  WRITE 999 fd:00:2345 0 EOF
3: POSIX  ADVISORY  WRITE 1234 08:01:654321 0 EOF
4: OFDLCK ADVISORY  READ  -1 fd:00:2345 0 EOF
5: FLOCK  ADVISORY  WRITE 0 fd:00:2345 0 EOF
garbage line
6: FLOCK  ADVISORY  WRITE 42 zz:00:2345 0 EOF
7: FLOCK  ADVISORY  WRITE 43 fd:00 0 EOF
8: FLOCK  ADVISORY  WRITE 77 fd:00:2345 0 EOF
`
	tests := []struct {
		name string
		f    fileID
		want []int
	}{
		{"holders, not waiters or pid-less", fileID{0xfd, 0, 2345}, []int{5678, 77}},
		{"hex device", fileID{8, 1, 654321}, []int{1234}},
		{"other inode", fileID{0xfd, 0, 2346}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lockPIDs(strings.NewReader(locks), tt.f); !slices.Equal(got, tt.want) {
				t.Errorf("lockPIDs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDescribeHolder(t *testing.T) {
	tests := []struct {
		name string
		pids []int
		want string
	}{
		{"unknown", nil, "another process or open (holder unknown)"},
		{"other", []int{12}, "pid 12"},
		{"self", []int{7}, "pid 7 (this process: opened twice?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeHolder(tt.pids, 7); got != tt.want {
				t.Errorf("describeHolder = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLockHolderOfUnlockedFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("lockHolder reads /proc/locks, which only Linux has")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := lockHolder(path); got != describeHolder(nil, 0) {
		t.Errorf("lockHolder of an unlocked file = %q", got)
	}
}
