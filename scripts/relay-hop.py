#!/usr/bin/env python3
"""relay-hop.py: the delay a relay node adds, from captures on lo
(scripts/relay-bench.sh, BENCHMARKS.md "Issue 15").

  relay-hop.py --relay IP --rtp LO-HI --owner-rtp LO-HI [--label L]
               --pairs-out FILE JOINS.pcap
  relay-hop.py --relay IP --rtp LO-HI --owner-rtp LO-HI [--label L]
               --pairs-in FILE [--samples PREFIX] CAPTURE.pcap
  relay-hop.py --pooled FILE...

The captures hold the relay node's RTP (its address IP, its ports LO-HI):
callers' streams (caller <-> relay), their internal legs (relay -> owner,
SRTP) and the owner's bundles (owner -> relay: one datagram a 20 ms tick
from the owner's bundle port to the relay node's, carrying the audio of
all the relay node's callers, AES-GCM; media/rtpio/bundle.go). On
loopback a packet is captured once, as it is sent, so a packet's capture
time is when it reached the relay node's socket (microseconds later) and
a forwarded packet's is when the relay node sent it.

Which leg is whose cannot be told from the packets: SRTP hides the
payload, and every caller sends at the same 20 ms pace, so any two streams
keep fixed sequence offsets. So the figure is taken on probe callers who
join, a second apart, while all of the relay node's RTP is captured
(JOINS.pcap): --pairs-out pairs the k-th caller stream that started in the
capture with the k-th leg that did (a caller stream is a relay port that
exchanges RTP with a port outside the owner's LO-HI, a leg one that
exchanges it with the owner's; a leg starts with the first caller packet
the relay sends up it, as the owner's audio no longer comes on it) and
names the relay node's bundle port, the one whose datagrams start with
"GBB1" (tcpdump -s 70 keeps the first 28 bytes of a UDP payload on lo,
an Ethernet link): "caller leg" a line, then "bundle PORT". A second capture holds those
ports only. --pairs-in times, "up" (caller to owner), every packet into a
caller port to the packet the relay sent on from its leg (the relay
shifts sequence numbers and timestamps by fixed offsets, found as the
most common difference to the next packet out), and, "down" (owner to
caller), every packet the relay sent to a caller from the latest bundle
datagram into its bundle port before it: the relay sends a bundle's
frames on as it takes it, and bundles come 20 ms apart, so that is the
one that carried it (a delay over 20 ms cannot be told from the next
tick's and is counted, not timed). When the owner packs a tick into
several datagrams (bundles hold 1400 bytes), the latest one may be a
later one than the frame's, so the delay is also given from the tick's
first datagram, an upper bound. A leg on which the owner's audio still
comes (when the owner could not bundle it) is timed as "up" is, the
other way.
--samples writes the delays (microseconds, one a line) to PREFIX.up,
PREFIX.down and PREFIX.down1 (from the tick's first datagram); --pooled
prints the median and p99 of all the files named.
"""
import argparse
import bisect
import collections
import socket
import struct
import sys

VOTE_WINDOW = 0.020
BUNDLE_MAGIC = b"GBB1"
# A bundle is timed to the frames it carried only within a tick: bundles
# come 20 ms apart. Datagrams less than half a tick apart are one tick's.
TICK = 0.020
TICK_GAP = 0.010
# Link-layer header lengths of the pcap link types a capture on lo gives
# (Ethernet on Linux, SLL/SLL2 for -i any, raw IP, BSD null).
LINK_HEADER = {1: 14, 113: 16, 276: 20, 101: 0, 0: 4}


def datagrams(path):
    """Yields (time, src ip, sport, dst ip, dport, payload, payload length)
    of the IPv4 UDP datagrams in a pcap file; payload is as much of it as
    the capture kept."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        else:
            magic = struct.unpack(">I", head[:4])[0]
            endian = ">"
        if magic not in (0xA1B2C3D4, 0xA1B23C4D):
            sys.exit("relay-hop: %s is not a pcap file" % path)
        frac = 1e-9 if magic == 0xA1B23C4D else 1e-6
        link = struct.unpack(endian + "I", head[20:24])[0]
        skip = LINK_HEADER.get(link)
        if skip is None:
            sys.exit("relay-hop: link type %d not handled" % link)
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, sub, incl, _ = rec.unpack(h)
            b = f.read(incl)
            if len(b) < incl:
                return
            if link == 1 and b[12:14] != b"\x08\x00" or link == 113 and b[14:16] != b"\x08\x00" \
                    or link == 276 and b[0:2] != b"\x08\x00":
                continue
            ip = b[skip:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            udp = ip[ihl:]
            if len(udp) < 8:
                continue
            sport, dport, ulen = struct.unpack(">HHH", udp[:6])
            yield (sec + sub * frac, ip[12:16], sport, ip[16:20], dport, udp[8:], ulen - 8)


def rtp(payload):
    """(seq, ts) of an RTP packet, None for anything else (RTCP too)."""
    if len(payload) < 12 or payload[0] >> 6 != 2 or 72 <= payload[1] & 0x7F <= 76:
        return None
    return struct.unpack(">HI", payload[2:8])


def prange(s):
    lo, hi = s.split("-")
    return int(lo), int(hi)


def pct(v, p):
    """The p-quantile of sorted v, nearest rank."""
    if not v:
        return float("nan")
    return v[min(len(v) - 1, max(0, int(round(p * len(v) + 0.5)) - 1))]


class Capture:
    """The relay node's traffic in a capture: RTP into each of its ports
    (ins) and out of each (outs), [(t, seq, ts)]; its ports that exchange
    RTP with the owner's ports (to_owner) and with others (to_other); the
    bundle datagrams into each of its ports (bundles, [t]) and who sent
    them; and how many datagrams into it were cut too short to tell a
    bundle."""

    def __init__(self, a, path):
        relay = socket.inet_aton(a.relay)
        lo, hi = prange(a.rtp)
        olo, ohi = prange(a.owner_rtp)
        self.ins = collections.defaultdict(list)
        self.outs = collections.defaultdict(list)
        self.to_owner, self.to_other = set(), set()
        self.bundles = collections.defaultdict(list)
        self.senders = set()
        self.cut = 0
        for t, src, sport, dst, dport, payload, n in datagrams(path):
            if dst == relay and lo <= dport <= hi and src != relay:
                if payload[:4] == BUNDLE_MAGIC:
                    self.bundles[dport].append(t)
                    self.senders.add((src, sport))
                    continue
                if len(payload) < min(n, 12):
                    self.cut += 1
                    continue
                p = rtp(payload)
                if p is None:
                    continue
                self.ins[dport].append((t,) + p)
                (self.to_owner if olo <= sport <= ohi else self.to_other).add(dport)
            elif src == relay and lo <= sport <= hi and dst != relay:
                p = rtp(payload)
                if p is None:
                    continue
                self.outs[sport].append((t,) + p)
                (self.to_owner if olo <= dport <= ohi else self.to_other).add(sport)
        if self.cut:
            print("  relay-hop: %d datagrams into %s cut before 12 bytes of payload: capture more a packet (tcpdump -s)"
                  % (self.cut, a.relay))


def new_pairs(a):
    """Pairs the callers who joined during the capture with their legs: a
    caller's stream starts at its answer, its leg's when the relay node
    starts sending the caller's audio up it, so the k-th new caller stream
    goes with the k-th new leg (the probes join a second apart, the set-up
    takes the same time for each). The owner's audio does not come on the
    legs (it comes in bundles), so a leg is told by what the relay sends
    on it."""
    c = Capture(a, a.files[0])
    first = {}
    for d in (c.ins, c.outs):
        for x, v in d.items():
            first[x] = min(first.get(x, v[0][0]), v[0][0])
    if not first:
        sys.exit("relay-hop: nothing captured")
    t0 = min(first.values())
    new = sorted((t, x) for x, t in first.items() if t - t0 > 0.2)
    callers = [x for _, x in new if x in c.to_other and x not in c.to_owner]
    legs = [x for _, x in new if x in c.to_owner and x not in c.to_other]
    both = [x for _, x in new if x in c.to_owner and x in c.to_other]
    bports = sorted(c.bundles, key=lambda x: -len(c.bundles[x]))
    with open(a.pairs_out, "w") as f:
        f.write("".join("%d %d\n" % p for p in zip(callers, legs)))
        f.write("".join("bundle %d\n" % x for x in bports))
    print("  hop %s: %d callers joined during the capture, %d new legs; bundles into port %s"
          % (a.label, len(callers), len(legs), ", ".join(str(x) for x in bports) or "none"))
    if both:
        print("  relay-hop: %d new ports talk both to the owner and to others, left out" % len(both))
    if not bports:
        print("  relay-hop: no bundle datagrams (%r) into %s: the down direction is timed only on legs that carry it"
              % (BUNDLE_MAGIC, a.relay))
    if len(callers) != len(legs):
        sys.exit("relay-hop: as many new legs as new callers expected")


def offsets(pk_in, pk_out):
    """The sequence and timestamp offsets of the relay from one stream to
    another: the most common difference between a packet in and the first
    packet out after it."""
    votes = collections.Counter()
    times = [o[0] for o in pk_out]
    for t, seq, ts in pk_in[:500]:
        i = bisect.bisect_left(times, t)
        if i < len(pk_out) and pk_out[i][0] - t <= VOTE_WINDOW:
            votes[((pk_out[i][1] - seq) & 0xFFFF, (pk_out[i][2] - ts) & 0xFFFFFFFF)] += 1
    return votes.most_common(1)[0][0] if votes else None


def forwarded(pk_in, pk_out, delays):
    """Times every packet of pk_in to the one the relay sent on in pk_out
    (appended to delays, microseconds); returns how many were not
    matched."""
    off = offsets(pk_in, pk_out)
    if off is None:
        return len(pk_in)
    sent = {}
    for t, seq, ts in pk_out:
        sent.setdefault((seq, ts), t)
    missed = 0
    for t, seq, ts in pk_in:
        u = sent.get(((seq + off[0]) & 0xFFFF, (ts + off[1]) & 0xFFFFFFFF))
        if u is None or u < t:
            missed += 1
        else:
            delays.append((u - t) * 1e6)
    return missed


def ticks(times):
    """For sorted bundle times, the index of the first datagram of each
    one's tick."""
    first, start = [], 0
    for i, t in enumerate(times):
        if i and t - times[i - 1] > TICK_GAP:
            start = i
        first.append(start)
    return first


def summary(v):
    return "%d packets, median %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us" % (
        len(v), pct(v, 0.5), pct(v, 0.9), pct(v, 0.99), v[-1] if v else float("nan"))


def analyse(a):
    c = Capture(a, a.files[0])
    pairs, bports = [], set()
    with open(a.pairs_in) as f:
        for line in f:
            w = line.split()
            if len(w) == 2 and w[0] == "bundle":
                bports.add(int(w[1]))
            elif len(w) == 2:
                pairs.append((int(w[0]), int(w[1])))
    if not bports:  # a pairs file from before bundles
        bports = set(c.bundles)
    btimes = sorted(t for x in bports for t in c.bundles.get(x, []))
    bfirst = ticks(btimes)
    delays = {"up": [], "down": [], "down1": []}
    unmatched = {"up": 0, "down": 0}
    late = 0  # down packets with no bundle in the 20 ms before them
    on_leg = 0  # pairs whose down audio came on the leg
    for cp, lp in pairs:
        unmatched["up"] += forwarded(c.ins[cp], c.outs[lp], delays["up"])
        if c.ins[lp]:
            on_leg += 1
            unmatched["down"] += forwarded(c.ins[lp], c.outs[cp], delays["down"])
            continue
        for u, _, _ in c.outs[cp]:
            i = bisect.bisect_left(btimes, u) - 1
            if i < 0:
                continue  # its bundle came before the capture
            if u - btimes[i] > TICK:
                late += 1
                continue
            delays["down"].append((u - btimes[i]) * 1e6)
            delays["down1"].append((u - btimes[bfirst[i]]) * 1e6)
    print("  hop %s: %d callers with their legs" % (a.label, len(pairs)))
    v = sorted(delays["up"])
    print("    up   (caller to owner): %s; %d not matched" % (summary(v), unmatched["up"]))
    v = sorted(delays["down"])
    print("    down (owner to caller, from the latest bundle before): %s; %d over 20 ms not timed"
          % (summary(v), late) + ("; %d legs carried it, %d not matched" % (on_leg, unmatched["down"]) if on_leg else ""))
    if btimes:
        n = collections.Counter(bfirst)
        per = sorted(n.values())
        spread = sorted((btimes[i + k - 1] - btimes[i]) * 1e6 for i, k in n.items())
        v1 = sorted(delays["down1"])
        print("    bundles: %d datagrams into port %s (%d source ports) in %d ticks, %d-%d a tick (median %d),"
              " a tick's first to last median %.0f us, max %.0f us"
              % (len(btimes), ",".join(str(x) for x in sorted(bports)), len(c.senders), len(per), per[0], per[-1],
                 pct(per, 0.5), pct(spread, 0.5), spread[-1]))
        print("    down from the tick's first bundle (an upper bound): median %.0f us, p90 %.0f us, p99 %.0f us"
              % (pct(v1, 0.5), pct(v1, 0.9), pct(v1, 0.99)))
    if a.samples:
        for d, v in delays.items():
            with open("%s.%s" % (a.samples, d), "w") as f:
                f.write("".join("%.1f\n" % x for x in sorted(v)))


def pooled(files):
    prefixes = sorted(set(p.rsplit(".", 1)[0] if p.endswith((".up", ".down", ".down1")) else p for p in files))
    for d, what in (("up", "caller to owner"), ("down", "owner to caller"),
                    ("down1", "owner to caller from the tick's first bundle, an upper bound")):
        v = []
        for p in prefixes:
            try:
                with open("%s.%s" % (p, d)) as f:
                    v.extend(float(x) for x in f)
            except FileNotFoundError:
                pass
        if d == "down1" and not v:
            continue
        v.sort()
        print("== hop pooled over %d runs, %s: %d packets, median %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us"
              % (len(prefixes), what, len(v), pct(v, 0.5), pct(v, 0.9),
                 pct(v, 0.99), v[-1] if v else float("nan")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--relay", help="the relay node's RTP address")
    ap.add_argument("--rtp", help="the relay node's RTP ports, LO-HI")
    ap.add_argument("--owner-rtp", help="the owner node's RTP ports, LO-HI")
    ap.add_argument("--label", default="")
    ap.add_argument("--pairs-out", help="pair the callers who joined during the capture with their legs, into FILE")
    ap.add_argument("--pairs-in", help="the caller and leg ports to time, from --pairs-out")
    ap.add_argument("--samples", help="write the delays to PREFIX.up, PREFIX.down and PREFIX.down1")
    ap.add_argument("--pooled", action="store_true", help="pool the samples files named")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.pooled:
        pooled(a.files)
        return
    if not (a.relay and a.rtp and a.owner_rtp) or len(a.files) != 1 or bool(a.pairs_out) == bool(a.pairs_in):
        ap.error("--relay, --rtp, --owner-rtp, one capture and one of --pairs-out and --pairs-in are needed")
    if a.pairs_out:
        new_pairs(a)
    else:
        analyse(a)


if __name__ == "__main__":
    main()
