//go:build linux

package rtpio

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

var (
	bundleKey  = bytes.Repeat([]byte{7}, BundleKeyLen)
	loopPrefix = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
)

// bundleRig is an owner engine and a relay engine with n relayed callers:
// on the relay engine caller stream i (facing phone i) is relayed to leg
// i, which faces the owner's stream i; the owner's streams send bundles.
type bundleRig struct {
	owner, relay *Engine
	own, legs    []*Stream
	callers      []*Stream
	links        []*Relay
	phones       []*farEnd
	port         netip.AddrPort // the relay engine's bundle port
}

func newBundleRig(t *testing.T, n int) *bundleRig {
	t.Helper()
	x := &bundleRig{owner: testEngine(t, n+1), relay: testEngine(t, 2*n+1)}
	var err error
	if _, err = x.owner.OpenBundles(bundleKey, loopPrefix); err != nil {
		t.Fatal(err)
	}
	if x.port, err = x.relay.OpenBundles(bundleKey, loopPrefix); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c, ph := openFacing(t, x.relay, false, 101)
		leg, err := x.relay.Open(pcmu(netip.AddrPort{}))
		if err != nil {
			t.Fatal(err)
		}
		o, err := x.owner.Open(pcmu(leg.LocalAddr()))
		if err != nil {
			t.Fatal(err)
		}
		leg.Update(pcmu(o.LocalAddr()))
		link, err := x.relay.Relay(c, leg, 1)
		if err != nil {
			t.Fatal(err)
		}
		x.links = append(x.links, link)
		tag := uint32(0x1000 + i)
		if err := leg.AcceptBundles(tag); err != nil {
			t.Fatal(err)
		}
		if err := o.SendBundled(x.port.Port(), tag); err != nil {
			t.Fatal(err)
		}
		x.callers, x.phones, x.legs, x.own = append(x.callers, c), append(x.phones, ph), append(x.legs, leg), append(x.own, o)
	}
	return x
}

// TestBundleDownlink sends three ticks of a room's output in bundles: the
// common mix to two legs (shared) and a mix-minus frame to the third.
// Each phone gets its own frame in its caller stream's RTP session, one
// datagram crosses per tick, and the common mix travels once in it.
func TestBundleDownlink(t *testing.T) {
	x := newBundleRig(t, 3)
	var sh g711.Shared
	var common, own pcm.Frame
	for tick := range 3 {
		for i := range common {
			common[i] = int16((i*37 + tick*1000) % 8000)
			own[i] = int16(-(i*11 + tick*500) % 8000)
		}
		sh.Set(&common)
		x.own[0].WriteShared(&sh)
		x.own[1].WriteShared(&sh)
		x.own[2].WriteFrame(&own)
		x.owner.FlushBundles()
		want := [3][]byte{sh.Encoded(g711.PCMU), sh.Encoded(g711.PCMU), make([]byte, pcm.FrameSamples)}
		g711.PCMU.Encode(want[2], own[:])
		for i, ph := range x.phones {
			p := ph.recvPkt()
			if !bytes.Equal(p.Payload, want[i]) {
				t.Fatalf("tick %d phone %d: payload differs", tick, i)
			}
			if p.SSRC != x.callers[i].ssrc {
				t.Errorf("tick %d phone %d: SSRC %#x, want the caller stream's %#x", tick, i, p.SSRC, x.callers[i].ssrc)
			}
		}
	}
	ost, rst := x.owner.BundleStats(), x.relay.BundleStats()
	if ost.PacketsOut != 3 || rst.PacketsIn != 3 || rst.Dropped != (Drops{}) {
		t.Errorf("owner sent %d bundles, relay took %d, dropped %+v; want 3, 3, none", ost.PacketsOut, rst.PacketsIn, rst.Dropped)
	}
	// Two 160-byte payloads, not three, in each datagram.
	if per := rst.BytesIn / 3; per > bundleHeaderLen+2+3*bundleEntryLen+2*pcm.FrameSamples+bundleTagLen {
		t.Errorf("a bundle is %d bytes: the common mix went more than once", per)
	}
	// The engines count datagrams: a bundle once, not once per entry.
	if in, out := x.relay.Stats().PacketsIn, x.owner.Stats().PacketsOut; in != 3 || out != 3 {
		t.Errorf("engines counted %d datagrams in and %d out, want the 3 bundles", in, out)
	}
	for i, leg := range x.legs {
		if st := leg.Stats(); st.PacketsIn != 3 {
			t.Errorf("leg %d took %d packets from bundles, want 3", i, st.PacketsIn)
		}
	}
}

// TestBundleManyLegs: a tick's frames for many legs fill several
// datagrams, all sent at once; every frame reaches its phone, tick after
// tick, with none lost at the relay node's bundle port.
func TestBundleManyLegs(t *testing.T) {
	const legs, ticks = 60, 10
	x := newBundleRig(t, legs)
	for tick := range ticks {
		for i, o := range x.own {
			var f pcm.Frame
			f[0], f[1] = int16(i*100), int16(tick*100)
			o.WriteFrame(&f)
		}
		x.owner.FlushBundles()
		time.Sleep(pcm.FrameDuration)
	}
	for i, ph := range x.phones {
		for range ticks {
			ph.recvPkt()
		}
		if st := x.legs[i].Stats(); st.PacketsIn != ticks {
			t.Errorf("leg %d took %d frames, want %d", i, st.PacketsIn, ticks)
		}
	}
	if per := x.owner.BundleStats().PacketsOut / ticks; per < 2 {
		t.Errorf("%d bundles a tick for %d legs: the test does not fill more than one", per, legs)
	}
	if d := x.relay.BundleStats().Dropped; d != (Drops{}) {
		t.Errorf("relay dropped %+v", d)
	}
}

// TestBundleManyRooms: a bundle carries the common mixes of more rooms
// than it remembers for sharing (small rooms, each a shared frame of its
// own); each still reaches its listeners, the last room's pair sharing
// one copy.
func TestBundleManyRooms(t *testing.T) {
	const rooms = bundleRecent + 2 // and all in one datagram
	x := newBundleRig(t, rooms+1)
	mixes := make([]g711.Shared, rooms)
	for i := range mixes {
		var f pcm.Frame
		f[0], f[1] = int16(1000*(i+1)), int16(-1000*(i+1))
		mixes[i].Set(&f)
	}
	for i, o := range x.own {
		o.WriteShared(&mixes[min(i, rooms-1)]) // the last two legs: one room
	}
	x.owner.FlushBundles()
	for i, ph := range x.phones {
		if p := ph.recvPkt(); !bytes.Equal(p.Payload, mixes[min(i, rooms-1)].Encoded(g711.PCMU)) {
			t.Errorf("phone %d: not its room's mix", i)
		}
	}
	if n := x.owner.BundleStats().PacketsOut; n != 1 {
		t.Errorf("%d bundles for one tick of %d small rooms, want 1", n, rooms)
	}
	want := uint64(bundleHeaderLen + 2 + (rooms+1)*bundleEntryLen + rooms*pcm.FrameSamples + bundleTagLen)
	if got := x.owner.BundleStats().BytesOut; got != want {
		t.Errorf("the bundle is %d bytes, want %d (the shared room's mix once)", got, want)
	}
}

// TestBundleStaleEpoch: what an owner sends in a bundle for a leg linked
// at an epoch the relay node knows to be over (the room moved on while
// that owner was stalled) is dropped at the relay like a stale leg's own
// packets, and counted.
func TestBundleStaleEpoch(t *testing.T) {
	x := newBundleRig(t, 2)
	x.links[0].SetEpoch(2)
	var f pcm.Frame
	for _, o := range x.own {
		o.WriteFrame(&f)
	}
	x.owner.FlushBundles()
	x.phones[1].recvPkt() // the other leg, of the current epoch, relays
	waitFor(t, "the stale entry dropped", func() bool { return x.links[0].Stats().StaleEpoch == 1 })
	if st := x.legs[0].Stats(); st.Dropped.StaleEpoch != 1 {
		t.Errorf("leg dropped %+v, want one stale-epoch", st.Dropped)
	}
	x.phones[0].expectSilence(100 * time.Millisecond)
}

// TestBundleRefused plays an attacker on the cluster's network: a
// captured bundle replayed, altered, sent from outside the allowed
// addresses, garbage, and an entry for a leg with another tag (a port
// reused by a later leg) are all dropped, counted, and no phone hears
// anything of them.
func TestBundleRefused(t *testing.T) {
	x := newBundleRig(t, 1)
	// A spy's socket stands in for the relay's bundle port: it captures
	// bundles as they cross the network; another plays the attacker.
	pkts := captureBundles(t, x, 2)
	captured, second := pkts[0], pkts[1]
	spy := newPeer(t, loop4)
	var f pcm.Frame

	spy.sendRaw(x.port, captured) // the first time it is genuine
	if p := x.phones[0].recvPkt(); len(p.Payload) != pcm.FrameSamples {
		t.Fatalf("genuine bundle: payload of %d bytes", len(p.Payload))
	}
	altered := bytes.Clone(second)
	altered[len(altered)-20] ^= 1
	forged := bytes.Clone(second)
	forged[19] += 5 // a counter never used: the tag does not match
	steps := []struct {
		name string
		pkt  []byte
		want func(d Drops) uint64
	}{
		{"replayed", captured, func(d Drops) uint64 { return d.Duplicate }},
		{"altered", altered, func(d Drops) uint64 { return d.SRTPAuth }},
		{"forged counter", forged, func(d Drops) uint64 { return d.SRTPAuth }},
		{"garbage", []byte("GBB1 not a bundle at all, but long enough to be read"), func(d Drops) uint64 { return d.SRTPAuth }},
		{"short", []byte("GBB1"), func(d Drops) uint64 { return d.Malformed }},
		{"not a bundle", bytes.Repeat([]byte{0x80}, 60), func(d Drops) uint64 { return d.Malformed }},
	}
	for _, st := range steps {
		before := st.want(x.relay.BundleStats().Dropped)
		spy.sendRaw(x.port, st.pkt)
		waitFor(t, st.name, func() bool { return st.want(x.relay.BundleStats().Dropped) == before+1 })
	}
	// The altered copy did not use up the genuine second bundle.
	spy.sendRaw(x.port, second)
	if p := x.phones[0].recvPkt(); len(p.Payload) != pcm.FrameSamples {
		t.Fatalf("second genuine bundle: payload of %d bytes", len(p.Payload))
	}

	// A leg on a reused port: another tag.
	if err := x.legs[0].AcceptBundles(0x2000); err != nil {
		t.Fatal(err)
	}
	if err := x.own[0].SendBundled(x.port.Port(), 0x1000); err != nil {
		t.Fatal(err)
	}
	before := x.relay.BundleStats().Dropped.ForeignSource
	x.own[0].WriteFrame(&f)
	x.owner.FlushBundles()
	waitFor(t, "stale tag", func() bool { return x.relay.BundleStats().Dropped.ForeignSource == before+1 })

	// From outside the allowed prefixes.
	other := testEngineOn(t, netip.MustParseAddr("127.0.0.2"), 2)
	if _, err := other.OpenBundles(bundleKey, loopPrefix); err != nil {
		t.Fatal(err)
	}
	fenced := testEngineOn(t, netip.MustParseAddr("127.0.0.3"), 2)
	fp, err := fenced.OpenBundles(bundleKey, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	if err != nil {
		t.Fatal(err)
	}
	fleg, err := fenced.Open(pcmu(netip.AddrPort{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := fleg.AcceptBundles(1); err != nil { // its poller looks
		t.Fatal(err)
	}
	o2, err := other.Open(pcmu(fleg.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.SendBundled(fp.Port(), 1); err != nil {
		t.Fatal(err)
	}
	o2.WriteFrame(&f)
	other.FlushBundles()
	waitFor(t, "outsider", func() bool { return fenced.BundleStats().Dropped.ForeignSource == 1 })
	x.phones[0].expectSilence(100 * time.Millisecond)
}

// TestBundleSendAllocs: gathering and sending a tick's bundle allocates
// nothing.
func TestBundleSendAllocs(t *testing.T) {
	x := newBundleRig(t, 3)
	var sh g711.Shared
	var f pcm.Frame
	sh.Set(&f)
	tick := func() {
		x.own[0].WriteShared(&sh)
		x.own[1].WriteShared(&sh)
		x.own[2].WriteFrame(&f)
		x.owner.FlushBundles()
	}
	tick()
	if n := testing.AllocsPerRun(100, tick); n != 0 {
		t.Errorf("%v allocations per tick", n)
	}
}

// TestBundleClose: a closed owner stream leaves its bundle; the last one
// gone, nothing more is sent.
func TestBundleClose(t *testing.T) {
	x := newBundleRig(t, 2)
	var f pcm.Frame
	_ = x.own[0].Close()
	x.own[1].WriteFrame(&f)
	x.owner.FlushBundles()
	if p := x.phones[1].recvPkt(); len(p.Payload) != pcm.FrameSamples {
		t.Fatal("the open stream's frame did not arrive")
	}
	_ = x.own[1].Close()
	x.owner.FlushBundles()
	b := x.owner.bnd.Load()
	b.mu.Lock()
	n := len(b.dsts)
	b.mu.Unlock()
	if n != 0 {
		t.Errorf("%d bundle destinations left after every stream closed", n)
	}
	if err := x.own[1].SendBundled(x.port.Port(), 1); err == nil {
		t.Error("SendBundled on a closed stream succeeded")
	}
	e := testEngine(t, 1)
	s, err := e.Open(pcmu(loop4Port(9)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendBundled(1000, 1); err != ErrNoBundles {
		t.Errorf("SendBundled without OpenBundles: %v", err)
	}
	if _, err := e.OpenBundles([]byte("short"), loopPrefix); err == nil {
		t.Error("a short bundle key was taken")
	}
}

func loop4Port(p uint16) netip.AddrPort { return netip.AddrPortFrom(loop4, p) }

// FuzzBundleEntries feeds arbitrary plaintexts to the entry parser: it
// must not panic, and every payload it hands out lies in the plaintext.
func FuzzBundleEntries(f *testing.F) {
	var o bundleOut
	o.entries = make([]byte, 0, bundleMax)
	f.Add([]byte{0, 1, 0x4e, 0x20, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, plain []byte) {
		var h rtp.Header
		_ = eachEntry(plain, func(port uint16, tag uint32, h *rtp.Header, payload []byte) {
			if len(payload) == 0 || port == 0 {
				t.Fatalf("entry with port %d and %d payload bytes handed out", port, len(payload))
			}
			if h.Version != 2 {
				t.Fatal("entry header without version 2")
			}
		}, &h)
	})
}

// captureBundles has the rig's owner send n bundles (one frame each of
// its first stream) to a spy socket and returns them as they crossed.
func captureBundles(t *testing.T, x *bundleRig, n int) [][]byte {
	t.Helper()
	spy := newPeer(t, loop4)
	if err := x.own[0].SendBundled(spy.addr().Port(), 0x1000); err != nil {
		t.Fatal(err)
	}
	var f pcm.Frame
	var out [][]byte
	for range n {
		x.own[0].WriteFrame(&f)
		x.owner.FlushBundles()
		b := make([]byte, 2048)
		_ = spy.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := spy.conn.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[:k])
	}
	return out
}

// TestBundleTakeAllocs: taking a bundle in (authentication, replay window,
// the entry relayed to the caller) allocates nothing once the sender's
// key is known.
func TestBundleTakeAllocs(t *testing.T) {
	x := newBundleRig(t, 1)
	pkts := captureBundles(t, x, 120)
	b := x.relay.bnd.Load()
	p := b.s.p
	from := netip.AddrPortFrom(loop4, 1)
	i := 0
	take := func() {
		p.mu.Lock()
		p.takeBundle(b, pkts[i], from, time.Now())
		p.mu.Unlock()
		i++
	}
	take()
	if n := testing.AllocsPerRun(100, take); n != 0 && !raceEnabled {
		t.Errorf("%v allocations per bundle taken", n)
	}
	if d := x.relay.BundleStats().Dropped; d != (Drops{}) {
		t.Errorf("drops %+v", d)
	}
}

// FuzzBundleDatagram feeds arbitrary datagrams to a relay node's bundle
// port: none may panic, and each is either taken or counted once as
// dropped.
func FuzzBundleDatagram(f *testing.F) {
	f.Add([]byte("GBB1"))
	f.Add(append([]byte("GBB1"), make([]byte, 60)...))
	f.Add(bytes.Repeat([]byte{0x80}, 200))
	e := testEngine(f, 1)
	b := &bundles{e: e, key: bundleKey, allow: loopPrefix, peers: map[[8]byte]*bundlePeer{}}
	b.s = &Stream{e: e, p: e.pollers[0]}
	b.s.c.sum = &e.pollers[0].counters
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := b.s.c.own.snapshot().Dropped
		p := e.pollers[0]
		p.mu.Lock()
		p.takeBundle(b, pkt, netip.AddrPortFrom(loop4, 9), time.Now())
		p.mu.Unlock()
		after := b.s.c.own.snapshot().Dropped
		if total(after)-total(before) != 1 {
			t.Fatalf("a datagram of %d bytes counted %d drops", len(pkt), total(after)-total(before))
		}
	})
}

func total(d Drops) uint64 {
	return d.ForeignSource + d.Probation + d.Malformed + d.UnknownPayloadType + d.Duplicate + d.Late +
		d.SendError + d.Direction + d.SRTPAuth + d.StaleEpoch
}

// BenchmarkBundleOwner is an owner's sending for a room of 10 callers
// relayed from one node, all listening to the common mix: per op one
// tick, 10 WriteShared and the flush that seals and sends the bundle.
// ns/leg compares with BenchmarkSRTPWriteFrameGCM, a leg's frame sent on
// the leg itself.
func BenchmarkBundleOwner(b *testing.B) {
	const legs = 10
	e := testEngine(b, legs+1)
	if _, err := e.OpenBundles(bundleKey, loopPrefix); err != nil {
		b.Fatal(err)
	}
	sink := newPeer(b, loop4)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := sink.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	far := testEngine(b, legs) // the relay node's legs: RTCP goes to their ports
	var own []*Stream
	for i := range legs {
		leg, err := far.Open(pcmu(netip.AddrPort{}))
		if err != nil {
			b.Fatal(err)
		}
		s, err := e.Open(pcmu(leg.LocalAddr()))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SendBundled(sink.addr().Port(), uint32(i)); err != nil {
			b.Fatal(err)
		}
		own = append(own, s)
	}
	var sh g711.Shared
	sh.Set(frameOf(1))
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range own {
			s.WriteShared(&sh)
		}
		e.FlushBundles()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*legs), "ns/leg")
}
