"""Just enough PNG decoding (8-bit RGB/RGBA, not interlaced) to count pixels in a screenshot.

The test suite has no imaging library; Chromium's screenshots are plain 8-bit PNGs.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterator

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}


class Image:
    def __init__(self, width: int, height: int, channels: int, rows: list[bytes]) -> None:
        self.width, self.height, self.channels, self.rows = width, height, channels, rows

    def pixels(self, top: int = 0, bottom: int | None = None) -> Iterator[tuple[int, int, int]]:
        """RGB of every pixel in rows [top, bottom)."""
        c = self.channels
        for row in self.rows[top:bottom]:
            for x in range(0, self.width * c, c):
                yield row[x], row[x + 1], row[x + 2]


def _unfilter(kind: int, raw: bytes, prior: bytes, bpp: int) -> bytes:
    """Undo one scanline's filter (PNG spec §9). Sub and Up run in C; Average and Paeth,
    which depend on the byte just decoded, loop in Python."""
    if kind == 0:
        return raw
    if kind == 2:
        return bytes([(a + b) & 0xFF for a, b in zip(raw, prior, strict=True)])
    line = bytearray(raw)
    if kind == 1:
        for c in range(bpp):
            line[c::bpp] = bytes(v & 0xFF for v in itertools.accumulate(raw[c::bpp]))
        return bytes(line)
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = prior[i]
        if kind == 3:
            line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            continue
        corner = prior[i - bpp] if i >= bpp else 0
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
        line[i] = (line[i] + pred) & 0xFF
    return bytes(line)


def decode(data: bytes) -> Image:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    pos, idat, header = len(SIGNATURE), bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or color not in CHANNELS or interlace:
        raise ValueError(
            f"unsupported PNG: depth {depth}, color type {color}, interlace {interlace}"
        )
    bpp = CHANNELS[color]
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prior = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        prior = _unfilter(raw[start], raw[start + 1 : start + 1 + stride], prior, bpp)
        rows.append(prior)
    return Image(width, height, bpp, rows)
