#!/usr/bin/env python3
"""Compares two guest RAM dumps page by page (QMP pmemsave of a paused
migration source and of its paused destination).

Usage: ramcmp.py SRC DST
Prints "same", or "N pages differ: 0xGPA(differing bytes) ..." (the first
16). Exit 0 when the dumps are equal, 1 when they differ, 2 on a usage or
I/O error.
"""
import sys

PAGE = 4096


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        a = f.read()
    with open(sys.argv[2], "rb") as f:
        b = f.read()
    if len(a) != len(b):
        print("dumps differ in size: %d and %d" % (len(a), len(b)))
        return 1
    diff = []
    for off in range(0, len(a), PAGE):
        pa, pb = a[off:off + PAGE], b[off:off + PAGE]
        if pa != pb:
            diff.append((off, sum(1 for x, y in zip(pa, pb) if x != y)))
    if not diff:
        print("same")
        return 0
    print("%d pages differ: %s" % (
        len(diff), " ".join("0x%x(%d)" % d for d in diff[:16])))
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        print("ramcmp: %s" % e, file=sys.stderr)
        sys.exit(2)
