package cluster

// This file holds the internal leg's credentials: the X-Groupbridge-Leg
// header a node puts on the INVITE that relays a caller to a room's owner,
// and the SRTP keys of that leg's media. Both come from cluster.secret, so
// a node that does not know it can neither join anyone to a room nor hear
// a relayed caller, and a sniffer of the internal SIP learns nothing.

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/group"
	"github.com/groupbridge/groupbridge/internal/wallclock"
)

// Leg is what a signed internal leg says about the caller it carries.
type Leg struct {
	From     string     // the dialling node's name
	Room     string     // the group's name
	Role     group.Role // member or facilitator
	Language string
	// Identity is the caller's identity (the HMAC of the number under the
	// cluster's identity key) or, for a caller without a number, a random
	// per-call token; never a number.
	Identity string
	Epoch    int64 // the room's epoch the dialler believes current
	// Reconnect: this leg replaces one lost in a failover.
	Reconnect bool
	// Downlink is the dialler's bundle port (rtpio.Engine.OpenBundles) on
	// the leg's media address, where the owner sends the leg's audio
	// bundled with that node's other legs; 0: on the leg itself.
	Downlink uint16
}

// Errors of Verify. A header that is refused wraps exactly one of them.
var (
	// ErrLegMalformed: the header is not a leg token of this version.
	ErrLegMalformed = errors.New("cluster: internal leg header malformed")
	// ErrLegSignature: the token was not signed with this cluster.secret
	// for this Call-ID and SDP, or a signed field was changed.
	ErrLegSignature = errors.New("cluster: internal leg signature does not match")
	// ErrLegExpired: the token's time is more than LegWindow away from
	// the verifier's clock.
	ErrLegExpired = errors.New("cluster: internal leg token expired or from the future")
	// ErrLegReplay: the token's nonce was accepted before.
	ErrLegReplay = errors.New("cluster: internal leg token replayed")
)

const (
	// LegHeader is the SIP header that carries a signed leg.
	LegHeader = "X-Groupbridge-Leg"
	// LegWindow is how far a token's time may be from the verifier's.
	LegWindow = 30 * time.Second
	// SRTPKeyLen is the length of one SRTP master key and salt that
	// LegKeys returns: the legs' profile is AEAD_AES_128_GCM (RFC 7714;
	// 128-bit key, 96-bit salt), so it must equal
	// rtpio.SRTPAEADAES128GCM.KeyLen(), which this package does not
	// import (D31).
	SRTPKeyLen = 28
	// MinSecretLen is the shortest cluster.secret accepted.
	MinSecretLen = 32

	// legVersion names the token's layout and what its nonce keys: a
	// node refuses another's (v2 added Leg.Downlink, and its legs are
	// AEAD_AES_128_GCM where v1's were AES-CM, D31), so nodes of two
	// layouts never half-agree.
	legVersion = "v2."
	// nonceTTL is how long a nonce is remembered: longer than any time a
	// token of it is still fresh (its own time + LegWindow is at most
	// 2*LegWindow after it is first seen).
	nonceTTL       = 120 * time.Second
	noncePrefix    = "groupbridge:nonce:"
	maxLegString   = 1024
	maxHeaderLen   = 8192
	nonceCacheCap  = 1 << 16
	legMACLabel    = "groupbridge leg signature"
	legKeyLabel    = "groupbridge leg srtp "
	bundleKeyLabel = "groupbridge bundle key"
)

// Signer signs and verifies internal legs with cluster.secret and
// remembers the nonces it accepted, in Redis (shared by the nodes) and in
// memory (so a replay to this node is refused while Redis is down).
type Signer struct {
	secret []byte
	macKey []byte
	rdb    redis.Cmdable
	clk    wallclock.Clock

	mu     sync.Mutex
	seen   map[[16]byte]time.Time // nonce -> when it may be forgotten
	order  [][16]byte             // the nonces in the order seen (FIFO)
	localN atomic.Uint64
}

// NewSigner returns a Signer for secret (cluster.secret, at least 32
// characters) that records nonces in rdb and reads the time from clk
// (nil: the system clock).
func NewSigner(secret string, rdb redis.Cmdable, clk wallclock.Clock) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("cluster.secret: at least %d characters (has %d)", MinSecretLen, len(secret))
	}
	if rdb == nil {
		return nil, errors.New("cluster: NewSigner needs a Redis client")
	}
	mk, err := hkdf.Key(sha256.New, []byte(secret), nil, legMACLabel, 32)
	if err != nil {
		return nil, err
	}
	return &Signer{
		secret: []byte(secret),
		macKey: mk,
		rdb:    rdb,
		clk:    wallclock.Or(clk),
		seen:   make(map[[16]byte]time.Time),
	}, nil
}

// Sign returns the X-Groupbridge-Leg header value for l on the INVITE with
// callID and SDP body sdp, and the token's fresh nonce (the input of
// LegKeys). The value is "v2." followed by two base64url parts, the
// fields and their HMAC-SHA256: printable ASCII, safe in a SIP header.
func (s *Signer) Sign(l Leg, callID string, sdp []byte) (header string, nonce [16]byte, err error) {
	if l.From == "" || l.Room == "" || callID == "" {
		return "", nonce, errors.New("cluster: sign leg: From, Room and Call-ID must not be empty")
	}
	if l.Role != group.Member && l.Role != group.Facilitator {
		return "", nonce, fmt.Errorf("cluster: sign leg: role %v", l.Role)
	}
	for _, f := range []string{l.From, l.Room, l.Language, l.Identity} {
		if len(f) > maxLegString {
			return "", nonce, fmt.Errorf("cluster: sign leg: a field over %d bytes", maxLegString)
		}
	}
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", nonce, err
	}
	body := encodeLeg(l, s.clk.Now().Unix(), nonce)
	mac := s.mac(body, callID, sdp)
	return legVersion + base64.RawURLEncoding.EncodeToString(body) + "." +
		base64.RawURLEncoding.EncodeToString(mac), nonce, nil
}

// Verify checks header (an X-Groupbridge-Leg value) for the INVITE with
// callID and SDP body sdp and returns the leg and its nonce. It refuses,
// in this order: a malformed header (ErrLegMalformed), a signature that
// does not cover exactly these fields, Call-ID and SDP under this secret
// (ErrLegSignature), a time more than LegWindow from the clock's
// (ErrLegExpired), and a nonce accepted before (ErrLegReplay) by this node
// or, through Redis, by any node.
//
// When Redis does not answer, Verify accepts a fresh nonce on this node's
// memory alone (a replay to another node then goes unnoticed) and counts
// it in LocalOnly. It waits for Redis at most as long as ctx and the
// client's timeouts allow.
func (s *Signer) Verify(ctx context.Context, header, callID string, sdp []byte) (Leg, [16]byte, error) {
	var nonce [16]byte
	body, mac, err := splitLeg(header)
	if err != nil {
		return Leg{}, nonce, err
	}
	// The signature first: until it holds, nothing in the body is
	// believed, and no nonce is spent for a stranger.
	if !hmac.Equal(mac, s.mac(body, callID, sdp)) {
		return Leg{}, nonce, ErrLegSignature
	}
	l, ts, nonce, err := decodeLeg(body)
	if err != nil {
		return Leg{}, nonce, err
	}
	now := s.clk.Now()
	if d := now.Sub(time.Unix(ts, 0)); d > LegWindow || d < -LegWindow {
		return Leg{}, nonce, fmt.Errorf("%w: %v away from this node's clock", ErrLegExpired, d.Round(time.Second))
	}
	if err := s.spend(ctx, nonce, now); err != nil {
		return Leg{}, nonce, err
	}
	return l, nonce, nil
}

// LocalOnly returns how many legs Verify accepted on this node's nonce
// memory alone because Redis did not answer: legs whose replay to another
// node would not have been noticed.
func (s *Signer) LocalOnly() uint64 { return s.localN.Load() }

// BundleKey is the key of the cluster's bundles (rtpio.OpenBundles, 32
// bytes): every node with the same secret derives the same.
func (s *Signer) BundleKey() []byte { return s.derive(nil, bundleKeyLabel, 32) }

// LegTag is the tag by which bundles name the leg of nonce
// (rtpio.Stream.AcceptBundles, SendBundled): both ends know the nonce,
// and a later leg on the same port has another.
func LegTag(nonce [16]byte) uint32 { return binary.BigEndian.Uint32(nonce[:4]) }

// LegKeys returns the two AEAD_AES_128_GCM master keys and salts
// (SRTPKeyLen bytes each) of the leg with nonce: dialler protects what the
// dialling node sends, answerer what the owner sends. Every node with the
// same secret derives the same keys; nothing about them travels.
func (s *Signer) LegKeys(nonce [16]byte) (dialler, answerer []byte) {
	return s.legKey(nonce, "dialler"), s.legKey(nonce, "answerer")
}

func (s *Signer) legKey(nonce [16]byte, dir string) []byte {
	return s.derive(nonce[:], legKeyLabel+dir, SRTPKeyLen)
}

// derive is n bytes of HKDF-SHA256 from the secret, with salt and label.
func (s *Signer) derive(salt []byte, label string, n int) []byte {
	k, err := hkdf.Key(sha256.New, s.secret, salt, label, n)
	if err != nil { // only for lengths over 255*32 bytes
		panic(err)
	}
	return k
}

// spend marks nonce used, here and in Redis, or says it was used.
func (s *Signer) spend(ctx context.Context, nonce [16]byte, now time.Time) error {
	s.mu.Lock()
	if _, ok := s.seen[nonce]; ok {
		s.mu.Unlock()
		return ErrLegReplay
	}
	s.forget(now)
	full := len(s.seen) >= nonceCacheCap
	if !full {
		s.seen[nonce] = now.Add(nonceTTL)
		s.order = append(s.order, nonce)
	}
	s.mu.Unlock()

	ok, err := s.rdb.SetNX(ctx, noncePrefix+hex.EncodeToString(nonce[:]), 1, nonceTTL).Result()
	if err == nil && !ok {
		return ErrLegReplay
	}
	if err != nil {
		if full {
			// Neither Redis nor memory can tell a replay: refuse.
			return fmt.Errorf("cluster: leg nonce: Redis unreachable and %d nonces in memory: %w", nonceCacheCap, err)
		}
		s.localN.Add(1)
		return nil
	}
	if full {
		// Redis holds this nonce; memory makes room for it by dropping
		// the oldest, which Redis holds too.
		s.mu.Lock()
		if len(s.order) > 0 {
			delete(s.seen, s.order[0])
			s.order = s.order[1:]
		}
		s.seen[nonce] = now.Add(nonceTTL)
		s.order = append(s.order, nonce)
		s.mu.Unlock()
	}
	return nil
}

// forget drops the nonces remembered long enough. s.mu is held.
func (s *Signer) forget(now time.Time) {
	n := 0
	for n < len(s.order) && !now.Before(s.seen[s.order[n]]) {
		delete(s.seen, s.order[n])
		n++
	}
	if n > 0 {
		s.order = append(s.order[:0:0], s.order[n:]...)
	}
}

// mac is the HMAC of the body, the SDP's SHA-256 and the Call-ID, each
// part framed so that no two inputs read the same.
func (s *Signer) mac(body []byte, callID string, sdp []byte) []byte {
	h := hmac.New(sha256.New, s.macKey)
	h.Write([]byte(legVersion))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	h.Write(n[:])
	h.Write(body)
	d := sha256.Sum256(sdp)
	h.Write(d[:])
	binary.BigEndian.PutUint32(n[:], uint32(len(callID)))
	h.Write(n[:])
	h.Write([]byte(callID))
	return h.Sum(nil)
}

// encodeLeg lays the fields out: four strings each after its 2-byte
// length, role, epoch, reconnect, downlink, time, nonce.
func encodeLeg(l Leg, ts int64, nonce [16]byte) []byte {
	b := make([]byte, 0, 64+len(l.From)+len(l.Room)+len(l.Language)+len(l.Identity))
	for _, f := range []string{l.From, l.Room, l.Language, l.Identity} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	b = append(b, byte(l.Role))
	b = binary.BigEndian.AppendUint64(b, uint64(l.Epoch))
	var rc byte
	if l.Reconnect {
		rc = 1
	}
	b = append(b, rc)
	b = binary.BigEndian.AppendUint16(b, l.Downlink)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	return append(b, nonce[:]...)
}

// decodeLeg reads what encodeLeg wrote, and nothing else.
func decodeLeg(b []byte) (l Leg, ts int64, nonce [16]byte, err error) {
	bad := func(what string) (Leg, int64, [16]byte, error) {
		return Leg{}, 0, [16]byte{}, fmt.Errorf("%w: %s", ErrLegMalformed, what)
	}
	var fs [4]string
	for i := range fs {
		if len(b) < 2 {
			return bad("short")
		}
		n := int(binary.BigEndian.Uint16(b))
		if n > maxLegString || len(b) < 2+n {
			return bad("field length")
		}
		fs[i], b = string(b[2:2+n]), b[2+n:]
	}
	if len(b) != 1+8+1+2+8+16 {
		return bad("length")
	}
	l = Leg{From: fs[0], Room: fs[1], Language: fs[2], Identity: fs[3]}
	l.Role = group.Role(b[0])
	if l.Role != group.Member && l.Role != group.Facilitator {
		return bad("role")
	}
	l.Epoch = int64(binary.BigEndian.Uint64(b[1:]))
	switch b[9] {
	case 0:
	case 1:
		l.Reconnect = true
	default:
		return bad("reconnect flag")
	}
	l.Downlink = binary.BigEndian.Uint16(b[10:])
	ts = int64(binary.BigEndian.Uint64(b[12:]))
	copy(nonce[:], b[20:])
	if l.From == "" || l.Room == "" {
		return bad("empty node or room")
	}
	return l, ts, nonce, nil
}

// splitLeg takes "v2.<body>.<mac>" apart.
func splitLeg(h string) (body, mac []byte, err error) {
	if len(h) > maxHeaderLen || !strings.HasPrefix(h, legVersion) {
		return nil, nil, fmt.Errorf("%w: not a %s token", ErrLegMalformed, strings.TrimSuffix(legVersion, "."))
	}
	b64, m64, ok := strings.Cut(h[len(legVersion):], ".")
	if !ok {
		return nil, nil, fmt.Errorf("%w: no signature", ErrLegMalformed)
	}
	enc := base64.RawURLEncoding.Strict()
	body, err1 := enc.DecodeString(b64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || len(mac) != sha256.Size {
		return nil, nil, fmt.Errorf("%w: encoding", ErrLegMalformed)
	}
	return body, mac, nil
}
