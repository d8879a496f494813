"""JPEG container: segment walk up to the first scan, then marker scan to the end of the image.

Kept: tables, frame and scan headers, JFIF (APP0), ICC profile (APP2 ``ICC_PROFILE``), Adobe
(APP14, needed for CMYK colour). Dropped: EXIF and XMP (APP1, incl. GPS), MPF and other APPn,
comments, and anything after the end-of-image marker (phones append depth maps, HDR gain maps
and secondary pictures there). A file without an end-of-image marker is truncated: refused.

Work limit: every scan of a progressive JPEG revisits the whole image, so decoding costs
scans x pixels. Cameras and phones write 1 (baseline) or about 10 scans, libjpeg's progressive
script 10, mozjpeg's up to 12 or so; a file with more than ``MAX_JPEG_SCANS`` is refused
(``ContainerLimit``) from the byte walk, before any decode. A 725 KB file with its last scan
repeated 2,000 times took 55 s of CPU before this rule.
"""

from __future__ import annotations

import re

from gateway.images.containers import ContainerError, ContainerLimit, Parsed, exif_orientation
from gateway.images.limits import MAX_JPEG_SCANS

_SOI = b"\xff\xd8"
_SOF_SUPPORTED = frozenset({0xC0, 0xC1, 0xC2})  # baseline, extended, progressive Huffman
_SOF_ALL = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # minus DHT, JPG, DAC
_EOI = 0xD9
_SOS = 0xDA
# After a scan header: the next byte pair that is a marker (not a stuffed 0xFF00, not RSTn, not fill).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def parse(data: bytes) -> Parsed:
    """Parse a JPEG; ContainerError if malformed, truncated or of an unsupported coding."""
    size = len(data)
    view = memoryview(data)
    keep: list[memoryview] = [view[0:2]]
    dropped = False
    orientation = 1
    width = height = 0
    progressive = False
    coefficients = 0
    pos = 2
    while True:
        if pos + 4 > size:
            raise ContainerError("JPEG is truncated before its first scan", "truncated")
        if data[pos] != 0xFF:
            raise ContainerError("JPEG segment structure is corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD8 or marker == _EOI or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            raise ContainerError("JPEG has a stray marker before its first scan")
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end < pos + 4:
            raise ContainerError("JPEG segment length is corrupt")
        if end > size:
            raise ContainerError("JPEG is truncated inside a segment", "truncated")
        if marker == _SOS:
            if not width:
                raise ContainerError("JPEG has a scan before its frame header")
            break
        if marker in _SOF_ALL:
            if marker not in _SOF_SUPPORTED:
                raise ContainerError(
                    "JPEG coding (lossless, arithmetic or hierarchical) is not supported", "format"
                )
            if end - pos < 10:
                raise ContainerError("JPEG frame header is corrupt")
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            if not width or not height:
                raise ContainerError("JPEG frame header has a zero size")
            progressive = marker == 0xC2
            coefficients = _coefficient_bytes(data[pos + 9 : end], width, height)
        if _keep(marker, data, pos + 4):
            keep.append(view[pos:end])
        else:
            if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                orientation = exif_orientation(view[pos + 10 : end])
            dropped = True
        pos = end
    eoi, scans = _end_of_image(data, pos)
    # A multi-scan file (progressive, or sequential non-interleaved) is decoded through a
    # whole-image coefficient buffer, whatever the draft scale.
    buffered = coefficients if progressive or scans > 1 else 0
    if dropped or eoi + 2 != size:
        keep.append(view[pos : eoi + 2])
        data = b"".join(keep)
    return Parsed(
        "JPEG", width, height, orientation, data, decoder_bytes=buffered, progressive=progressive, scans=scans
    )


def _coefficient_bytes(frame: bytes, width: int, height: int) -> int:
    """Bytes of libjpeg's whole-image coefficient buffer: 64 16-bit values per block, MCU-padded."""
    count = frame[0] if frame else 0
    factors = [(frame[2 + 3 * i] >> 4, frame[2 + 3 * i] & 15) for i in range(count) if 2 + 3 * i < len(frame)]
    if not factors or len(factors) != count:
        raise ContainerError("JPEG frame header is corrupt")
    h_max = max(h for h, _ in factors) or 1
    v_max = max(v for _, v in factors) or 1
    mcus_x = -(-width // (8 * h_max))
    mcus_y = -(-height // (8 * v_max))
    return sum(mcus_x * h * mcus_y * v for h, v in factors) * 64 * 2


def _keep(marker: int, data: bytes, payload: int) -> bool:
    if marker == 0xE0:
        return data[payload : payload + 5] == b"JFIF\x00"
    if marker == 0xE2:
        return data[payload : payload + 12] == b"ICC_PROFILE\x00"
    if marker == 0xEE:
        return data[payload : payload + 5] == b"Adobe"
    return not (0xE0 <= marker <= 0xEF or marker == 0xFE)  # other APPn, COM


def _end_of_image(data: bytes, sos: int) -> tuple[int, int]:
    """Offset of the EOI marker and the number of scans, skipping further scan and table headers."""
    size = len(data)
    pos = sos
    scans = 1
    while True:
        header_end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if pos + 4 > size or header_end > size:
            raise ContainerError("JPEG is truncated", "truncated")
        match = _NEXT_MARKER.search(data, header_end)
        if match is None:
            raise ContainerError("JPEG is truncated (no end-of-image marker)", "truncated")
        pos = match.start()
        if data[pos + 1] == _EOI:
            return pos, scans
        if data[pos + 1] == _SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise ContainerLimit(
                    f"JPEG has more than {MAX_JPEG_SCANS} scans; cameras and encoders write at most ~12",
                    "scans",
                )
