// Package softphone is a scriptable SIP caller: it dials the bridge the way
// a desk phone or a carrier trunk would, plays tones, samples or key
// presses into the call and records what it hears. The bridge's end-to-end
// tests use it to judge calls by their audio, and the load tool uses it to
// run hundreds of callers from one process.
//
// A call:
//
//	p, err := softphone.Dial(ctx, softphone.Config{Server: "127.0.0.1:5060", Caller: "+15551234567"})
//	if err != nil { ... }               // a *StatusError carries a non-2xx answer (488, 503, ...)
//	defer p.Hangup(ctx)
//	p.SendDigits(ctx, "1234#", softphone.DigitRFC4733)
//	p.Media().SendTone(1000, -20)
//	since := time.Now()
//	time.Sleep(time.Second)
//	level := tone.LevelDBFS(p.Media().Received(since), 1000)
//
// A Phone is the call's SIP dialog (Hangup, Hold, Resume, SendDigits,
// which needs both sides); Phone.Media is its RTP side (what it sends and
// records, the negotiated codec and addresses, the counters).
//
// SIP runs on github.com/emiago/sipgo. Phones share an Agent (one sipgo user
// agent listening on UDP, TCP and TLS); requests over UDP leave from the
// listening socket, and Via and Contact name it, so the bridge's BYE comes
// back; over TCP and TLS it comes back on the phone's connection. Each phone has its own RTP socket, a sender paced on an absolute
// 20 ms schedule and a receiver that keeps the last Config.Keep of audio
// with arrival times, laid out by RTP timestamp on request (Media.Received), so
// that tests judge the signal on media time rather than on scheduling.
//
// Digits go as RFC 4733 events (DigitRFC4733), SIP INFO with
// application/dtmf-relay or application/dtmf bodies (DigitInfoRelay,
// DigitInfo) or in-band dual tones (DigitInband), covering the phones in
// docs/ARCHITECTURE.md, "Real SIP peers". Hold and Resume send re-INVITEs with a=sendonly and
// a=sendrecv. DialAsync and Attempt.Cancel exercise CANCEL before answer.
//
// Config.Transport "tls" calls over TLS (Config.TLSConfig says which
// certificate to trust), and Config.SRTP offers RTP/SAVP with an SDES key
// (RFC 4568, AES_CM_128_HMAC_SHA1_80) and protects the call's RTP both ways
// with github.com/pion/srtp; Media.SRTPFailed counts packets that did not
// authenticate.
//
// Config.Impair puts a seeded model of a bad network (loss in bursts,
// jitter, reordering, duplicates; see Impairment) between the phone's
// packetizer and its socket, digits included, so that tests can judge the
// bridge's jitter buffer and concealment. It is served by the sender
// goroutine from a small delay queue, deterministic for its Seed, and
// Media.ImpairStats counts what it did. ToneBlocks then judges a received tone
// in blocks (fraction above a level, longest gap), on Received's timestamp
// layout:
//
//	p, _ := softphone.Dial(ctx, softphone.Config{Server: addr,
//		Impair: &softphone.Impairment{Seed: 1, Loss: 0.05, Jitter: 40 * time.Millisecond}})
//	...
//	frac, gap := softphone.ToneBlocks(listener.Media().Received(since), 1000, 50*time.Millisecond, -30)
//
// The package logs call events through Config.Logger with the caller
// number masked; sipgo's own lines go through the project's redacting
// logger. It never writes audio anywhere.
package softphone
