#!/usr/bin/env python3
"""relay-hop.py: the delay a relay node adds, from captures on lo
(scripts/relay-bench.sh, BENCHMARKS.md "Issue 15").

  relay-hop.py --relay IP --rtp LO-HI --owner-rtp LO-HI [--label L]
               --pairs-out FILE JOINS.pcap
  relay-hop.py --relay IP --rtp LO-HI --owner-rtp LO-HI [--label L]
               --pairs-in FILE [--samples PREFIX] CAPTURE.pcap
  relay-hop.py --pooled FILE...

The captures hold the relay node's RTP (its address IP, its ports LO-HI):
callers' streams (caller <-> relay) and their internal legs (relay <->
owner, SRTP). On loopback a packet is captured once, as it is sent, so a
packet's capture time is when it reached the relay node's socket
(microseconds later) and a forwarded packet's is when the relay node sent
it.

Which leg is whose cannot be told from the packets: SRTP hides the
payload, and every caller sends at the same 20 ms pace, so any two streams
keep fixed sequence offsets. So the figure is taken on probe callers who
join, a second apart, while all of the relay node's RTP is captured
(JOINS.pcap): --pairs-out pairs the k-th caller stream that started in the
capture with the k-th leg that did (the ports, "caller leg" a line). A
second capture holds those ports only; --pairs-in times every packet into
one of them to the packet the relay sent on from the other (the relay
shifts sequence numbers and timestamps by fixed offsets, found as the most
common difference to the next packet out), both ways: "up" is caller to
owner, "down" owner to caller. --samples writes the delays (microseconds,
one a line) to PREFIX.up and PREFIX.down; --pooled prints the median and
p99 of all the files named.
"""
import argparse
import bisect
import collections
import socket
import struct
import sys

VOTE_SECONDS = 1.5
VOTE_WINDOW = 0.020


def packets(path):
    """Yields (time, src ip, sport, dst ip, dport, seq, ts) of RTP packets."""
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
        skip = {1: 14, 113: 16, 101: 0, 0: 4}.get(link)
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
            if link == 1 and b[12:14] != b"\x08\x00":
                continue
            ip = b[skip:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            udp = ip[ihl:]
            rtp = udp[8:]
            if len(rtp) < 12 or rtp[0] >> 6 != 2 or 72 <= rtp[1] & 0x7F <= 76:
                continue  # not RTP, or RTCP
            sport, dport = struct.unpack(">HH", udp[:4])
            seq, ts = struct.unpack(">HI", rtp[2:8])
            yield (sec + sub * frac, ip[12:16], sport, ip[16:20], dport, seq, ts)


def prange(s):
    lo, hi = s.split("-")
    return int(lo), int(hi)


def pct(v, p):
    """The p-quantile of sorted v, nearest rank."""
    if not v:
        return float("nan")
    return v[min(len(v) - 1, max(0, int(round(p * len(v) + 0.5)) - 1))]


def streams(a, path):
    """The relay node's RTP in the capture: packets into each of its ports,
    packets out of each, and its caller ports (packets into them come from
    outside the owner's RTP ports)."""
    relay = socket.inet_aton(a.relay)
    lo, hi = prange(a.rtp)
    olo, ohi = prange(a.owner_rtp)
    ins = collections.defaultdict(list)  # relay port -> [(t, seq, ts)]
    outs = collections.defaultdict(list)
    caller_port = set()
    for t, src, sport, dst, dport, seq, ts in packets(path):
        if dst == relay and lo <= dport <= hi and src != relay:
            ins[dport].append((t, seq, ts))
            if not olo <= sport <= ohi:
                caller_port.add(dport)
        elif src == relay and lo <= sport <= hi and dst != relay:
            outs[sport].append((t, seq, ts))
    return ins, outs, caller_port


def new_pairs(a):
    """Pairs the callers who joined during the capture with their legs: a
    caller's stream starts at its answer, its leg's when the owner seats
    it, so the k-th new caller stream goes with the k-th new leg (the
    probes join a second apart, the set-up takes the same time for each)."""
    ins, _, caller_port = streams(a, a.files[0])
    if not ins:
        sys.exit("relay-hop: nothing captured")
    t0 = min(v[0][0] for v in ins.values())
    new = [(v[0][0], x) for x, v in ins.items() if v[0][0] - t0 > 0.2]
    callers = [x for _, x in sorted(new) if x in caller_port]
    legs = [x for _, x in sorted(new) if x not in caller_port]
    with open(a.pairs_out, "w") as f:
        f.write("".join("%d %d\n" % p for p in zip(callers, legs)))
    print("  hop %s: %d callers joined during the capture, %d new legs" % (a.label, len(callers), len(legs)))
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


def analyse(a):
    ins, outs, caller_port = streams(a, a.files[0])
    with open(a.pairs_in) as f:
        pairs = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    delays = {"up": [], "down": []}
    unmatched = {"up": 0, "down": 0}
    for c, l in pairs:
        for d, x, y in (("up", c, l), ("down", l, c)):
            off = offsets(ins[x], outs[y])
            if off is None:
                unmatched[d] += len(ins[x])
                continue
            sent = {}
            for t, seq, ts in outs[y]:
                sent.setdefault((seq, ts), t)
            for t, seq, ts in ins[x]:
                u = sent.get(((seq + off[0]) & 0xFFFF, (ts + off[1]) & 0xFFFFFFFF))
                if u is None or u < t:
                    unmatched[d] += 1
                else:
                    delays[d].append((u - t) * 1e6)
    print("  hop %s: %d callers with their legs" % (a.label, len(pairs)))
    for d, what in (("up", "caller to owner"), ("down", "owner to caller")):
        v = sorted(delays[d])
        print("    %-4s (%s): %d packets, median %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us; %d not matched"
              % (d, what, len(v), pct(v, 0.5), pct(v, 0.9), pct(v, 0.99), v[-1] if v else float("nan"),
                 unmatched[d]))
        if a.samples:
            with open("%s.%s" % (a.samples, d), "w") as f:
                f.write("".join("%.1f\n" % x for x in v))


def pooled(files):
    prefixes = sorted(set(p.rsplit(".", 1)[0] if p.endswith((".up", ".down")) else p for p in files))
    for d, what in (("up", "caller to owner"), ("down", "owner to caller")):
        v = []
        for p in prefixes:
            try:
                with open("%s.%s" % (p, d)) as f:
                    v.extend(float(x) for x in f)
            except FileNotFoundError:
                pass
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
    ap.add_argument("--samples", help="write the delays to PREFIX.up and PREFIX.down")
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
