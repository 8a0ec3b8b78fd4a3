package callflow

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"

	"github.com/groupbridge/groupbridge/internal/guard"
	"github.com/groupbridge/groupbridge/internal/logging"
)

// Identity recognises a caller who calls back without storing their
// number: an HMAC under a key made at each start and kept in memory only (a
// plain hash of a phone number is reversed by trying every number). The
// key lasts the whole run, so rejoins, removals, PIN limits and known
// callers hold across the log tags' daily change. Callers without a
// number, and every caller of a source that names nobody
// (sip.no_identity), get "" and are told apart by their call only.
func (f *Flow) Identity(c Caller) string {
	if c.NoIdentity() {
		return ""
	}
	return f.IdentityOf(c.Caller())
}

// IdentityOf is Identity for a normalised number ("" for none).
func (f *Flow) IdentityOf(number string) string {
	if number == "" {
		return ""
	}
	return f.keyed("", number)
}

// Label is how log lines and the admin API name a call's caller
// (log.callers): a tag of the identity by default, the masked number when
// asked; "anonymous" when the number is withheld (Privacy: id) or none.
func (f *Flow) Label(c Caller) string {
	if c.CallerPrivate() || c.NoIdentity() || c.Caller() == "" {
		return logging.Anonymous
	}
	if f.cfg.MaskedCallers {
		return logging.MaskCaller(c.Caller())
	}
	return f.tags.Tag(f.IdentityOf(c.Caller()), f.cfg.Clock.Now())
}

// KnownKey is the keyed hash under which a caller is known to a group.
func (f *Flow) KnownKey(id, group string) string {
	if id == "" {
		return "" // withheld numbers are never known
	}
	return f.keyed("known", id, group)
}

// keyed is the HMAC of the parts under the per-start key; kind keeps the
// hashes of different things (numbers, users, addresses) apart.
func (f *Flow) keyed(kind string, parts ...string) string {
	key := f.cfg.Key
	if f.cfg.IdentityKey != nil {
		key = f.cfg.IdentityKey(f.cfg.Clock.Now())
	}
	mac := hmac.New(sha256.New, key[:])
	if kind != "" {
		mac.Write([]byte(kind))
		mac.Write([]byte{0})
	}
	for i, p := range parts {
		if i > 0 {
			mac.Write([]byte{0})
		}
		mac.Write([]byte(p))
	}
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// caller is who places c for the PIN limits: its number's identity, and
// for a call from an untrusted source (one that authenticated as a
// sip.users account) that user and the source address, by its /64 for
// IPv6 since anyone holding one address of a /64 holds them all.
func (f *Flow) caller(c Call, id string) guard.Caller {
	g := f.callerOf(id, c.User(), c.SourceIP())
	g.PerCall = c.NoIdentity()
	return g
}

// callerOf is caller from the call's parts: its number's identity, the
// authenticated user ("" when trusted) and the source address.
func (f *Flow) callerOf(id, user string, ip netip.Addr) guard.Caller {
	g := guard.Caller{Number: id}
	if user == "" {
		return g // a trusted PBX: the source carries everyone's calls
	}
	g.User = f.keyed("user", user)
	if ip.IsValid() {
		src := ip.String()
		if ip.Is6() {
			src = netip.PrefixFrom(ip, 64).Masked().String()
		}
		g.Source = f.keyed("source", src)
	}
	return g
}
