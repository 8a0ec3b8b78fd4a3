package dialog

import (
	"net/netip"
	"slices"
)

// The dialog's peers: the addresses its requests may come from. Which
// source may send a request inside a dialog is the server's screening to
// decide (sipua's peerScreen); the dialog only knows its peers: the
// address its INVITE came from (or went to), those in its route set and
// those the screening added.

// FromPeer reports whether a is one of the dialog's peer addresses.
func (c *Call) FromPeer(a netip.Addr) bool {
	a = a.Unmap()
	if ap, err := netip.ParseAddrPort(c.source); err == nil && ap.Addr().Unmap() == a {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.routeSet {
		if ip, err := netip.ParseAddr(r.Host); err == nil && ip.Unmap() == a {
			return true
		}
	}
	return slices.Contains(c.morePeers, a)
}

// AddPeer makes a a peer address of the dialog.
func (c *Call) AddPeer(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.morePeers, a.Unmap()) && len(c.morePeers) < maxMorePeers {
		c.morePeers = append(c.morePeers, a.Unmap())
	}
}

// maxMorePeers bounds the addresses a call's account may add: a phone
// that moves networks a few times, not a table.
const maxMorePeers = 8
