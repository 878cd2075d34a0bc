#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A reference for VRE's checksum and segmentation offloads, written from
the virtio spec and Linux's tcp_gso_segment, sharing no code with VRE.

  gso_ref.py selftest OL_DUMP [SEED COUNT]
      Runs tests/unit/ol_dump in a temp dir and checks every out-MODE.pcap
      it wrote against this script's own processing of in.pcap.
  gso_ref.py check MODE IN.pcap OUT.pcap [--mtu N]
      The same for one pair of files (records: 12-byte virtio-net header +
      frame, link type 147). MODE: full (no guest offloads: checksums
      completed, GSO segmented), partial (GUEST_CSUM only: NEEDS_CSUM passed
      on, segments left partial), pass (every guest offload: passed whole).
  gso_ref.py tcpgen OUT.pcap COUNT MIN_PAYLOAD [MAX_PAYLOAD]
      Writes COUNT TCP frames (IPv4 and IPv6, with and without options and
      VLAN tags, complete checksums) with payloads of MIN..MAX bytes.
  gso_ref.py tsocount IN.pcap --mss N
      How many frames the reference makes of IN (for tso).
  gso_ref.py tso IN.pcap OUT.pcap --mss N [--dst MAC] [--src MAC]
      IN holds plain Ethernet frames, OUT (Ethernet) what came out after a
      sender (testpmd's csum engine with TSO) rewrote their MACs, asked for
      TSO with this MSS and VRE segmented them: OUT must be exactly the
      reference segmentation of every TCP frame of IN (others as they are).

Rules (Linux): segments carry the GSO frame's headers with, for IPv4, the
total length, id + k and a new header checksum; for IPv6 the payload
length; TCP sequence + k * MSS, FIN and PSH only on the last segment, CWR
only on the first; the TCP checksum complete (0 written as 0xffff), or, for
NEEDS_CSUM, the pseudo header's sum. A destination's MTU makes the MSS at
most MTU - IP header - TCP header; a frame that is not GSO and is longer
than MTU + 18 is dropped.
"""
import os
import struct
import subprocess
import sys
import tempfile

NEEDS_CSUM = 1
GSO_TCPV4, GSO_TCPV6, GSO_ECN = 1, 4, 0x80


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise SystemExit("%s: no pcap header (%d bytes)" % (path, len(data)))
    magic, _, _, _, _, _, link = struct.unpack_from("<IHHiIII", data)
    # microsecond or nanosecond timestamps (DPDK's net_pcap writes the
    # latter); only the records matter here
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit("%s: not a little-endian pcap" % path)
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, incl, orig = struct.unpack_from("<IIII", data, off)
        off += 16
        if incl != orig:
            raise SystemExit("%s: record %d cut to %d of %d bytes" % (path, len(out), incl, orig))
        out.append(data[off:off + incl])
        off += incl
    return link, out


def split_vnet(rec):
    flags, gso_type, hdr_len, gso_size, cstart, coff = struct.unpack_from("<BBHHHH", rec)
    return (flags, gso_type, hdr_len, gso_size, cstart, coff), rec[12:]


def csum(data, init=0):
    if len(data) % 2:
        data += b"\0"
    s = init + sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def parse(frame):
    """(l2, l3, l4, v6) of a TCP frame."""
    l2 = 14
    etype = struct.unpack_from("!H", frame, 12)[0]
    if etype == 0x8100:
        l2, etype = 18, struct.unpack_from("!H", frame, 16)[0]
    v6 = etype == 0x86DD
    l3 = 40 if v6 else (frame[l2] & 15) * 4
    l4 = (frame[l2 + l3 + 12] >> 4) * 4
    return l2, l3, l4, v6


def pseudo(ip, v6, l4len):
    if v6:
        return csum(ip[8:40] + struct.pack("!I", l4len) + b"\0\0\0\x06")
    return csum(ip[12:20] + struct.pack("!BBH", 0, 6, l4len))


def segment(frame, gso_size, partial, mtu=0):
    l2, l3, l4, v6 = parse(frame)
    hl = l2 + l3 + l4
    mss = gso_size
    if mtu and mss > mtu - l3 - l4:
        mss = mtu - l3 - l4
    payload = frame[hl:]
    n = max(1, (len(payload) + mss - 1) // mss)
    seq0 = struct.unpack_from("!I", frame, l2 + l3 + 4)[0]
    segs = []
    for k in range(n):
        p = payload[k * mss:(k + 1) * mss]
        ip = bytearray(frame[l2:l2 + l3])
        th = bytearray(frame[l2 + l3:hl])
        if v6:
            struct.pack_into("!H", ip, 4, l4 + len(p))
        else:
            struct.pack_into("!H", ip, 2, l3 + l4 + len(p))
            struct.pack_into("!H", ip, 4, (struct.unpack_from("!H", ip, 4)[0] + k) & 0xFFFF)
            struct.pack_into("!H", ip, 10, 0)
            struct.pack_into("!H", ip, 10, ~csum(bytes(ip)) & 0xFFFF)
        struct.pack_into("!I", th, 4, (seq0 + k * mss) & 0xFFFFFFFF)
        if k:
            th[13] &= ~0x80 & 0xFF
        if k < n - 1:
            th[13] &= ~0x09 & 0xFF
        struct.pack_into("!H", th, 16, 0)
        ph = pseudo(bytes(ip), v6, l4 + len(p))
        if partial:
            c = ph
        else:
            c = ~csum(bytes(th) + p, ph) & 0xFFFF or 0xFFFF
        struct.pack_into("!H", th, 16, c)
        segs.append(frame[:l2] + bytes(ip) + bytes(th) + p)
    return segs, l2 + l3


def complete(frame, start, off):
    c = ~csum(frame[start:]) & 0xFFFF or 0xFFFF
    at = start + off
    return frame[:at] + struct.pack("!H", c) + frame[at + 2:]


def expected(mode, vh, frame, mtu=0):
    """[(header tuple, frame)] a destination in MODE receives for one record."""
    flags, gso_type, _, gso_size, cstart, coff = vh
    zero = (0, 0, 0, 0, 0, 0)
    if gso_type:
        l2, l3, l4, _ = parse(frame)
        if mode == "pass":
            ecn = gso_type & GSO_ECN or frame[l2 + l3 + 13] & 0x80
            gt = (gso_type & ~GSO_ECN) | (GSO_ECN if ecn else 0)
            return [((NEEDS_CSUM, gt, l2 + l3 + l4, gso_size, cstart, coff), frame)]
        partial = mode == "partial"
        segs, l4start = segment(frame, gso_size, partial, mtu)
        h = (NEEDS_CSUM, 0, 0, 0, l4start, 16) if partial else zero
        return [(h, s) for s in segs]
    if mtu and len(frame) > mtu + 18:
        return []
    if flags & NEEDS_CSUM:
        if mode in ("partial", "pass"):
            return [((NEEDS_CSUM, 0, 0, 0, cstart, coff), frame)]
        return [(zero, complete(frame, cstart, coff))]
    return [(zero, frame)]


def hexdiff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return "first difference at byte %d: %02x != %02x" % (i, a[i], b[i])
    return "lengths %d and %d" % (len(a), len(b))


def check(mode, inp, out, mtu=0):
    _, ins = read_pcap(inp)
    _, outs = read_pcap(out)
    want = []
    for i, rec in enumerate(ins):
        vh, frame = split_vnet(rec)
        want += [(i, h, f) for h, f in expected(mode, vh, frame, mtu)]
    if len(want) != len(outs):
        raise SystemExit("%s: %d frames, the reference makes %d" % (out, len(outs), len(want)))
    for n, ((i, h, f), rec) in enumerate(zip(want, outs)):
        gh, gf = split_vnet(rec)
        if gh != h:
            raise SystemExit("%s: frame %d (input %d): header %s, want %s" % (out, n, i, gh, h))
        if gf != f:
            raise SystemExit("%s: frame %d (input %d) differs: %s" % (out, n, i, hexdiff(gf, f)))
    print("%s: %d frames from %d inputs match the reference (%s)" % (out, len(outs), len(ins), mode))


def write_pcap(path, frames, link=1):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(fr), len(fr)))
            f.write(fr)


def tcp_frame(i, payload):
    """Frame i of tcpgen: varied headers, a payload pattern, checksums done."""
    v6, vlan, opts = i % 2 == 1, i % 5 == 4, (i % 3) * 4
    l2 = bytes.fromhex("525400000002525400000001") + (b"\x81\x00\x00\x2a" if vlan else b"")
    l2 += b"\x86\xdd" if v6 else b"\x08\x00"
    tcp_len = 20 + 4 * opts + payload
    flags = 0x10 | (0x08 if i % 4 == 0 else 0) | (0x01 if i % 7 == 6 else 0)
    th = bytearray(struct.pack("!HHIIBBHHH", 40000 + i, 5001, 1000 * i, 77, (5 + opts) << 4,
                               flags, 60000, 0, 0) + b"\x01" * (4 * opts))
    data = bytes((i * 13 + k * 7 + (k >> 8)) & 0xFF for k in range(payload))
    if v6:
        ip = struct.pack("!IHBB", 0x60000000 | i, tcp_len, 6, 64) + bytes(range(16)) + bytes(range(16, 32))
        ph = pseudo(ip, True, tcp_len)
    else:
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, 1000 + i, 0x4000, 64, 6,
                                   0, b"\x0a\0\0\x01", b"\x0a\0\0\x02"))
        struct.pack_into("!H", ip, 10, ~csum(bytes(ip)) & 0xFFFF)
        ip = bytes(ip)
        ph = pseudo(ip, False, tcp_len)
    struct.pack_into("!H", th, 16, ~csum(bytes(th) + data, ph) & 0xFFFF or 0xFFFF)
    return l2 + ip + bytes(th) + data


def tcpgen(path, count, lo, hi):
    write_pcap(path, [tcp_frame(i, lo + (i * 997) % (hi - lo + 1)) for i in range(count)])


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def tso_want(ins, mss, dst=None, src=None):
    want = []
    for i, f in enumerate(ins):
        f = (dst or f[:6]) + (src or f[6:12]) + f[12:]
        etype = struct.unpack_from("!H", f, 12)[0]
        l2, _, _, v6 = parse(f) if etype in (0x0800, 0x86DD, 0x8100) else (0, 0, 0, 0)
        tcp = l2 and f[l2 + (6 if v6 else 9)] == 6
        if tcp and len(f) - sum(parse(f)[:3]) > mss:
            want += [(i, s) for s in segment(f, mss, False)[0]]
        else:  # one segment: the checksum completed is the one it had
            want.append((i, f))
    return want


def tso(inp, out, mss, dst=None, src=None):
    _, ins = read_pcap(inp)
    link, outs = read_pcap(out)
    if link != 1:
        raise SystemExit("%s: link type %d, want Ethernet" % (out, link))
    want = tso_want(ins, mss, dst, src)
    if len(want) != len(outs):
        raise SystemExit("%s: %d frames, the reference makes %d" % (out, len(outs), len(want)))
    for n, ((i, f), g) in enumerate(zip(want, outs)):
        if g != f:
            raise SystemExit("%s: frame %d (input %d) differs: %s" % (out, n, i, hexdiff(g, f)))
    print("%s: %d frames from %d inputs match the reference segmentation (MSS %d)" %
          (out, len(outs), len(ins), mss))


def main(argv):
    if len(argv) >= 3 and argv[1] == "selftest":
        seed, count = (argv[3], argv[4]) if len(argv) >= 5 else ("1", "300")
        with tempfile.TemporaryDirectory(prefix="vre-gso-") as d:
            subprocess.run([argv[2], d, seed, count], check=True)
            for mode, name, mtu in (("full", "out-full.pcap", 0), ("partial", "out-partial.pcap", 0),
                                    ("pass", "out-pass.pcap", 0),
                                    ("full", "out-mtu1280.pcap", 1280)):
                check(mode, os.path.join(d, "in.pcap"), os.path.join(d, name), mtu)
        return 0
    if len(argv) >= 5 and argv[1] == "check":
        mtu = int(argv[argv.index("--mtu") + 1]) if "--mtu" in argv else 0
        check(argv[2], argv[3], argv[4], mtu)
        return 0
    if len(argv) >= 5 and argv[1] == "tcpgen":
        lo = int(argv[4])
        tcpgen(argv[2], int(argv[3]), lo, int(argv[5]) if len(argv) > 5 else lo)
        return 0
    if len(argv) >= 3 and argv[1] == "tsocount":
        print(len(tso_want(read_pcap(argv[2])[1], int(argv[argv.index("--mss") + 1]))))
        return 0
    if len(argv) >= 4 and argv[1] == "tso":
        opt = lambda k: argv[argv.index(k) + 1] if k in argv else None
        tso(argv[2], argv[3], int(opt("--mss")), opt("--dst") and mac(opt("--dst")),
            opt("--src") and mac(opt("--src")))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
