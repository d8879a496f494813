"""Hostile image files, made here from small real encodes (Pillow, libwebp, libheif) by editing bytes.

Each builder names the attack it reproduces; sources: the scan bomb from "JPEG progressive
scan amplification" (libjpeg-turbo issue #220 / CVE-2019-13960 class, and the 725 KB file of
issue #13), decompression bombs after Pillow's ``DecompressionBombError`` docs and
"Bombs" in PayloadsAllTheThings/Upload Insecure Files, canvas bombs from libwebp's
WebPAnimDecoder (canvas allocated from the VP8X header), polyglots after "GIFAR" and
PortSwigger's JPEG/JS polyglots.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from tests.unit.images import factory


def _markers(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of every JPEG marker after SOI, scan data skipped."""
    found = []
    pos = 2
    while pos < len(data) - 1:
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker in (0x00, 0xFF) or 0xD0 <= marker <= 0xD7:
            pos += 1
            continue
        found.append((pos, marker))
        if marker == 0xD9:
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big") if marker != 0xDA else 2
    return found


def progressive_jpeg(width: int = 512, height: int = 384) -> bytes:
    """A real progressive JPEG (libjpeg's default script: 10 scans for colour)."""
    return factory.photo(width, height, progressive=True, quality=90)


def jpeg_scan_bomb(scans: int = 2000, width: int = 4000, height: int = 3000) -> bytes:
    """A progressive JPEG whose smallest refinement scan is repeated until it has ``scans``.

    Every copy makes libjpeg revisit every block of the image: CPU grows with ``scans`` (about
    1.5 ms per copy at 12 MP) while the file grows by 15 bytes per copy (the issue's 725 KB file
    took 55 s of CPU). A smooth gradient keeps the scans tiny; copies go just before EOI.
    """
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    data = factory.encode(img, "JPEG", progressive=True, quality=90)
    marks = _markers(data)
    bounds = [(pos, marks[i + 1][0]) for i, (pos, marker) in enumerate(marks) if marker == 0xDA]
    start, end = min(reversed(bounds), key=lambda span: span[1] - span[0])  # ties: the last one
    eoi = data.rindex(b"\xff\xd9")
    return data[:eoi] + data[start:end] * (scans - len(bounds)) + data[eoi:]


def count_scans(data: bytes) -> int:
    return sum(1 for _, marker in _markers(data) if marker == 0xDA)


def png_zlib_bomb(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A valid PNG of zeros: megapixels of data in a few KB of deflate (every row filter 0)."""
    colour_type, bands = {"RGBA": (6, 4), "RGB": (2, 3), "L": (0, 1)}[mode]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width * bands + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + factory.png_chunk(b"IHDR", ihdr)
        + factory.png_chunk(b"IDAT", body)
        + factory.png_chunk(b"IEND", b"")
    )


def apng_frame_bomb(frames: int = 100_000) -> bytes:
    """An APNG claiming 100,000 frames (``acTL``): only the default image may be decoded."""
    png = factory.flat(64, 48, "PNG")
    actl = factory.png_chunk(b"acTL", struct.pack(">II", frames, 0))
    return png[:33] + actl + png[33:]


def gif_canvas_bomb(width: int = 7000, height: int = 7000) -> bytes:
    """A 1x1 frame on a huge logical screen: Pillow allocates the whole screen."""
    out = b"GIF89a" + struct.pack("<HH", width, height) + bytes([0x80, 0, 0]) + b"\x00\x00\x00\xff\xff\xff"
    out += b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00"
    return out + b"\x02\x02\x44\x01\x00;"


def gif_frame_bomb(frames: int = 20_000) -> bytes:
    """A small GIF with 20,000 frames: only the first may be decoded."""
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    head = b"GIF89a" + struct.pack("<HH", 64, 48) + bytes([0x80, 0, 0]) + b"\x00\x00\x00\xff\xff\xff"
    return head + frame * frames + b";"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def webp_canvas_bomb(width: int = 7000, height: int = 7000, frames: int = 1) -> bytes:
    """An animated WebP of a few hundred bytes: 1x1 lossless frames on a huge canvas (VP8X)."""
    still = io.BytesIO()
    Image.new("RGBA", (1, 1), (255, 0, 0, 255)).save(still, "WEBP", lossless=True)
    vp8l = still.getvalue()[12:]  # the VP8L chunk, header included
    vp8x = (
        struct.pack("<B3s", 0x12, b"\0\0\0")
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    anim = struct.pack("<IH", 0, 0)
    anmf = _chunk(
        b"ANMF",
        (0).to_bytes(3, "little") * 2
        + (0).to_bytes(3, "little") * 2
        + (100).to_bytes(3, "little")
        + b"\x00"
        + vp8l,
    )
    body = b"WEBP" + _chunk(b"VP8X", vp8x) + _chunk(b"ANIM", anim) + anmf * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def heic_declaring(width: int, height: int) -> bytes:
    """A real small HEIC whose ``ispe`` property is patched to claim ``width`` x ``height``."""
    data = bytearray(factory.encode(Image.new("RGB", (64, 64), (10, 200, 30)), "HEIF", quality=50))
    at = data.index(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def jpeg_zip_polyglot() -> bytes:
    """A JPEG with a ZIP archive after its end-of-image marker (GIFAR-style)."""
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.html", "<script>alert(1)</script>")
    return factory.photo(160, 120) + archive.getvalue()


def jpeg_html_polyglot() -> bytes:
    """A JPEG carrying HTML/JS in a comment segment (COM), the PortSwigger polyglot trick."""
    photo = factory.photo(160, 120)
    payload = b"<html><script>alert(document.domain)</script></html>"
    com = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return photo[:2] + com + photo[2:]


def png_html_polyglot() -> bytes:
    """A PNG carrying a script in a ``tEXt`` chunk and HTML after ``IEND``."""
    png = factory.flat(64, 48, "PNG")
    text = factory.png_chunk(b"tEXt", b"Comment\x00<script>alert(1)</script>")
    return png[:33] + text + png[33:] + b"<html><script>alert(2)</script></html>"
