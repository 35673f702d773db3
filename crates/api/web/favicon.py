#!/usr/bin/env python3
"""Writes favicon.ico: favicon.svg's shapes drawn at 32x32 into one PNG in an ICO container,
for clients that ask for /favicon.ico whatever the page names. Python's standard library only;
run it after changing favicon.svg (python3 favicon.py, in this directory)."""
import struct
import zlib

W = H = 32


def inside(x, y, points):
    """Whether (x, y) is inside the polygon (even-odd rule)."""
    hit = False
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            hit = not hit
    return hit


def pixel(x, y):
    """The colour at the pixel's centre: the shapes of favicon.svg, later ones on top."""
    x, y = x + 0.5, y + 0.5
    colour = (0, 0, 0, 0)
    if inside(x, y, [(11, 4), (21, 4), (25, 24), (7, 24)]):
        colour = (0x2B, 0x1A, 0x4A, 255)
    if (x - 14) ** 2 + (y - 10) ** 2 <= 2.6**2:
        colour = (0xFF, 0x7A, 0x18, 255)
    if ((x - 18) / 3.6) ** 2 + ((y - 16) / 3) ** 2 <= 1:
        colour = (0xFF, 0x3D, 0x54, 255)
    if (x - 13) ** 2 + (y - 20.5) ** 2 <= 2.2**2:
        colour = (0xFF, 0xB0, 0x00, 255)
    if inside(x, y, [(7, 24), (25, 24), (23, 29), (9, 29)]):
        colour = (0x5A, 0x5A, 0x66, 255)
    if 10 <= x <= 22 and 2 <= y <= 5:
        colour = (0x5A, 0x5A, 0x66, 255)
    return colour


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


rows = b"".join(b"\0" + b"".join(bytes(pixel(x, y)) for x in range(W)) for y in range(H))
png = (
    b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 6, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(rows, 9))
    + chunk(b"IEND", b"")
)
# ICONDIR (one image), then its entry: 32x32, 32 bits per pixel, the PNG right after.
ico = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", W, H, 0, 0, 1, 32, len(png), 22) + png
with open("favicon.ico", "wb") as f:
    f.write(ico)
