#!/usr/bin/env python3
"""Writes and checks the pcap files of the ethdev integration cases.

  pcaptool.py gen FILE [DST,SRC,TAG,COUNT ...]
      Writes COUNT Ethernet frames per group (none: an empty capture).
      Each frame: DST, SRC, ethertype 0x88b5 (local experimental), then
      "VRE", the one-letter TAG, a 32-bit sequence number and a filler
      derived from both; sizes vary from 60 to 1514 bytes with the number.
  pcaptool.py expect OUT IN:TAGS [IN:TAGS ...]
      OUT must hold exactly the frames of each IN whose tag is in TAGS,
      byte for byte, each IN's frames in their order (frames of different
      INs may interleave), and nothing else.
"""
import struct
import sys

MAGIC = 0xA1B2C3D4
ETHERTYPE = 0x88B5


def mac(s):
    b = bytes(int(x, 16) for x in s.split(":"))
    if len(b) != 6:
        raise ValueError("bad MAC " + s)
    return b


def frame(dst, src, tag, seq):
    size = 60 + (seq * 97) % 1455
    head = dst + src + struct.pack("!H", ETHERTYPE) + b"VRE" + tag.encode() + struct.pack("!I", seq)
    fill = bytes((seq + tag.encode()[0] + i) & 0xFF for i in range(size - len(head)))
    return head + fill


def write(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", MAGIC, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(fr), len(fr)))
            f.write(fr)


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise SystemExit("%s: no pcap header (%d bytes)" % (path, len(data)))
    magic = struct.unpack_from("<I", data)[0]
    if magic == MAGIC:
        end = "<"
    elif magic == 0xA1B23C4D:  # nanosecond timestamps: same record layout
        end = "<"
    elif struct.unpack_from(">I", data)[0] in (MAGIC, 0xA1B23C4D):
        end = ">"
    else:
        raise SystemExit("%s: not a pcap file (magic %#x)" % (path, magic))
    link = struct.unpack_from(end + "I", data, 20)[0]
    if link != 1:
        raise SystemExit("%s: link type %d, not Ethernet" % (path, link))
    off, out = 24, []
    while off < len(data):
        if off + 16 > len(data):
            raise SystemExit("%s: truncated record header at %d" % (path, off))
        _, _, incl, orig = struct.unpack_from(end + "IIII", data, off)
        off += 16
        if incl != orig or off + incl > len(data):
            raise SystemExit("%s: truncated frame at %d (%d of %d bytes)" % (path, off, incl, orig))
        out.append(data[off:off + incl])
        off += incl
    return out


def tag_of(fr):
    return chr(fr[17]) if len(fr) >= 22 and fr[14:17] == b"VRE" else None


def gen(path, groups):
    frames, seq = [], 0
    for g in groups:
        dst, src, tag, count = g.split(",")
        for _ in range(int(count)):
            frames.append(frame(mac(dst), mac(src), tag, seq))
            seq += 1
    write(path, frames)


def expect(out_path, specs):
    got = read(out_path)
    want = []  # one ordered list per input
    for s in specs:
        path, tags = s.rsplit(":", 1)
        want.append([fr for fr in read(path) if tag_of(fr) in tags])
    pos = [0] * len(want)
    for n, fr in enumerate(got):
        for i, w in enumerate(want):
            if pos[i] < len(w) and w[pos[i]] == fr:
                pos[i] += 1
                break
        else:
            t = tag_of(fr)
            raise SystemExit("%s: frame %d (tag %s, %d bytes, dst %s) is not the next expected one"
                             % (out_path, n, t, len(fr), fr[:6].hex(":")))
    for i, w in enumerate(want):
        if pos[i] != len(w):
            raise SystemExit("%s: %d of %d frames from %s arrived"
                             % (out_path, pos[i], len(w), specs[i]))
    total = sum(len(w) for w in want)
    print("%s: %d frames, exactly as expected" % (out_path, total))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("gen", "expect"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3:])
    else:
        expect(sys.argv[2], sys.argv[3:])


if __name__ == "__main__":
    main()
