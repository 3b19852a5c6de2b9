//go:build !linux

package daemon

import "net"

func peerIdentity(net.Conn) (identity, error) { return identity{}, ErrUnsupported }

func supplementaryGroups(_, gid uint32) []uint32 { return []uint32{gid} }
