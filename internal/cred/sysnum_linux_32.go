//go:build linux && (386 || arm)

package cred

import "syscall"

// The system calls with 32-bit ids: on 386 and arm the plain ones take
// 16-bit ids.
const (
	sysGeteuid   = syscall.SYS_GETEUID32
	sysGetegid   = syscall.SYS_GETEGID32
	sysGetgroups = syscall.SYS_GETGROUPS32
	sysSetgroups = syscall.SYS_SETGROUPS32
	sysSetresgid = syscall.SYS_SETRESGID32
	sysSetresuid = syscall.SYS_SETRESUID32
)
