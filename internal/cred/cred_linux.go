//go:build linux

package cred

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"unsafe"
)

// Do runs fn with c's file-access rights and returns fn's error, or an
// error wrapping ErrSwitch when the thread could not take c (fn did not
// run then). A panic in fn is raised again in the caller as a
// *PanicError. fn must not call runtime.Goexit.
//
// When c.UID is the process's own effective uid — root acting for root, or
// a daemon that alice runs serving alice — fn runs directly in the caller's
// goroutine. Otherwise it runs in a new goroutine locked to its OS thread,
// and Do waits for it.
//
// # How the thread is switched
//
// On Linux credentials belong to each thread, not to the process; glibc's
// setuid(2) wrappers and Go's syscall.Setresuid make a change process-wide
// by repeating it on every thread. Do instead calls setgroups(2),
// setresgid(2) and setresuid(2) through syscall.RawSyscall, which change
// the calling thread only, in that order (setresuid last: it clears the
// thread's effective capabilities, which setgroups and setresgid need).
//
// Only the effective ids change (and with them the filesystem ids the
// kernel checks file access with); the real and saved ids stay the
// process's. A thread whose real or saved uid were the user's could be
// sent signals by that user — kill(2) allows it when the sender's uid
// matches the target thread's real or saved uid, and a SIGKILL or SIGSTOP
// to one thread stops the whole daemon — and could be traced or have its
// limits changed (ptrace and prlimit match all three ids, but need no
// more). With the real and saved uids root's, none of that is open to the
// user, and the thread can take back its ids when fn returns. File access
// is checked with the effective/filesystem ids and the effective
// capabilities, which the kernel empties when the effective uid leaves 0,
// so fn gets exactly the user's rights: no CAP_DAC_OVERRIDE, no
// CAP_DAC_READ_SEARCH. (access(2) checks with the real ids; use
// faccessat(2) with AT_EACCESS inside fn.)
//
// # Why this is safe with Go's runtime
//
//   - The goroutine locks its thread (runtime.LockOSThread) before
//     switching, so the thread runs nothing but this goroutine while it
//     holds c's ids: a locked thread never runs other goroutines.
//   - The thread is never unlocked. Do puts the process's ids back when fn
//     returns, and then the goroutine ends still locked, so the runtime
//     terminates the thread instead of returning it to its pool
//     (runtime.LockOSThread: "If the calling goroutine exits without
//     unlocking the thread, the thread will be terminated"). Should putting
//     the ids back ever fail, the thread is still never reused. (The
//     process's main thread is parked for good instead of terminated, which
//     is why the ids are put back first.)
//   - Threads started while fn runs do not inherit c's ids. Linux's clone
//     copies the creating thread's credentials, but the runtime never
//     clones a new thread from a locked one: newm, on a thread whose
//     goroutine called LockOSThread, hands the request to the template
//     thread (see "We're on a locked M ... We don't want to clone that into
//     another thread" in runtime/proc.go). The template thread is started
//     by the first LockOSThread call — Do's own, before any switch, if no
//     earlier one — so it always holds the process's ids. Threads that
//     other threads start are cloned from them. TestOtherThreadsKeepTheirIDs
//     starts many goroutines and threads inside fn and checks
//     /proc/self/task/*/status.
//   - Goroutines that fn starts run on other threads, with the process's
//     rights: fn must do the work that needs c's rights itself.
//
// A side effect: the kernel marks a process whose thread changed its
// effective uid non-dumpable (fs.suid_dumpable, 0 by default): no core
// dumps, and its /proc/PID files belong to root.
func Do(c Credential, fn func() error) error {
	if c.UID == uint32(os.Geteuid()) {
		return fn()
	}
	type result struct {
		err   error
		panic *PanicError
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		var r result
		defer func() { done <- r }()
		restore, err := switchThread(c)
		if err != nil {
			r.err = err
			return
		}
		defer func() {
			if p := recover(); p != nil {
				r.panic = &PanicError{Value: p, Stack: debug.Stack()}
			}
			restore()
		}()
		r.err = fn()
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// keep is passed for an id that setres[ug]id(2) must leave unchanged.
const keep = ^uintptr(0)

// switchThread gives the calling (locked) thread c's groups, effective gid
// and effective uid, and returns what puts the thread's own back. On error
// the thread has its own ids again, as far as it could be done.
func switchThread(c Credential) (restore func(), err error) {
	euid, _, _ := syscall.RawSyscall(sysGeteuid, 0, 0, 0)
	egid, _, _ := syscall.RawSyscall(sysGetegid, 0, 0, 0)
	groups, err := getgroups()
	if err != nil {
		return nil, fmt.Errorf("getgroups: %w: %w", ErrSwitch, err)
	}
	restore = func() {
		// uid first: back to root gives back the capabilities the other
		// two need.
		_, _, _ = syscall.RawSyscall(sysSetresuid, keep, euid, keep)
		_, _, _ = syscall.RawSyscall(sysSetresgid, keep, egid, keep)
		_ = setgroups(groups)
	}
	if err := setgroups(c.Groups); err != nil {
		restore()
		return nil, fmt.Errorf("setgroups %v: %w: %w", c.Groups, ErrSwitch, err)
	}
	if _, _, errno := syscall.RawSyscall(sysSetresgid, keep, uintptr(c.GID), keep); errno != 0 {
		restore()
		return nil, fmt.Errorf("setresgid %d: %w: %w", c.GID, ErrSwitch, errno)
	}
	if _, _, errno := syscall.RawSyscall(sysSetresuid, keep, uintptr(c.UID), keep); errno != 0 {
		restore()
		return nil, fmt.Errorf("setresuid %d: %w: %w", c.UID, ErrSwitch, errno)
	}
	return restore, nil
}

// setgroups sets the calling thread's supplementary groups.
func setgroups(gids []uint32) error {
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	_, _, errno := syscall.RawSyscall(sysSetgroups, uintptr(len(gids)), uintptr(p), 0)
	runtime.KeepAlive(gids)
	if errno != 0 {
		return errno
	}
	return nil
}

// getgroups returns the calling thread's supplementary groups.
func getgroups() ([]uint32, error) {
	for {
		n, _, errno := syscall.RawSyscall(sysGetgroups, 0, 0, 0)
		if errno != 0 {
			return nil, errno
		}
		if n == 0 {
			return nil, nil
		}
		gids := make([]uint32, n)
		m, _, errno := syscall.RawSyscall(sysGetgroups, n, uintptr(unsafe.Pointer(&gids[0])), 0)
		runtime.KeepAlive(gids)
		if errno == syscall.EINVAL { // the list grew meanwhile
			continue
		}
		if errno != 0 {
			return nil, errno
		}
		return gids[:m], nil
	}
}
