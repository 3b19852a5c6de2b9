//go:build linux && !386 && !arm

package cred

import "syscall"

// The system calls with 32-bit ids.
const (
	sysGeteuid   = syscall.SYS_GETEUID
	sysGetegid   = syscall.SYS_GETEGID
	sysGetgroups = syscall.SYS_GETGROUPS
	sysSetgroups = syscall.SYS_SETGROUPS
	sysSetresgid = syscall.SYS_SETRESGID
	sysSetresuid = syscall.SYS_SETRESUID
)
