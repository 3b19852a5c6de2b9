//go:build linux

package daemon

import (
	"errors"
	"net"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// peerIdentity reads the uid and gid of the process at the other end of
// a unix socket connection (SO_PEERCRED, as of connect time).
func peerIdentity(c net.Conn) (identity, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return identity{}, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return identity{}, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return identity{}, err
	}
	if serr != nil {
		return identity{}, serr
	}
	return identity{UID: cred.Uid, GID: cred.Gid}, nil
}

// supplementaryGroups returns the groups of uid from the user database
// (SO_PEERCRED carries only the primary gid); on any failure just gid.
func supplementaryGroups(uid, gid uint32) []uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return []uint32{gid}
	}
	gs, err := u.GroupIds()
	if err != nil {
		return []uint32{gid}
	}
	out := []uint32{gid}
	for _, g := range gs {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(n) != gid {
			out = append(out, uint32(n))
		}
	}
	return out
}
