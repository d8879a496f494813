"""Images for bench/workload.py, made on the fly with Pillow (no photographs are shipped).

- phone photo: 4032x3024 JPEG (quality 90, a phone camera's 12.2 MP 4:3), a gradient with
  coloured shapes, Gaussian noise (sensor grain) and a blur pass, so it compresses like a photo
  (about 3-5 MB, not the few KB of a flat colour); each request gets its own picture (a
  different patch is drawn on one of a few base images, so the bytes and hashes differ);
- screenshot: 1080x2340 PNG (a 19.5:9 phone screen) with a status bar, a title bar, lines of
  text, an error banner and a button: flat colours and sharp text, as an app's screen;
- receipt: 1080x2400 JPEG of a long receipt: off-white paper with grain, rows of item names and
  prices, a total;
- product picture: 1200x1200 JPEG, an object on a white background, the usual shop main image,
  served by URL from a loopback image server.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

PHOTO_SIZE = (4032, 3024)
SCREEN_SIZE = (1080, 2340)
RECEIPT_SIZE = (1080, 2400)
PRODUCT_SIZE = (1200, 1200)
FONT = ImageFont.load_default(size=34)  # Pillow's bundled scalable font: phone-sized text


def _encode(img: Image.Image, fmt: str, **options: int) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def photo_base(seed: int) -> Image.Image:
    """A 12 MP photo-like picture: gradient, shapes, grain, slight blur."""
    rng = random.Random(seed)
    width, height = PHOTO_SIZE
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(40, 900)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(3))
    grain = Image.effect_noise((width, height), 48).convert("RGB")
    return Image.blend(img, grain, 0.18)


def phone_photo(base: Image.Image, rng: random.Random) -> bytes:
    """One unique photo: ``base`` with a random patch drawn on it, as JPEG quality 90."""
    img = base.copy()
    draw = ImageDraw.Draw(img)
    x, y = rng.randrange(PHOTO_SIZE[0] - 400), rng.randrange(PHOTO_SIZE[1] - 400)
    colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    draw.rectangle((x, y, x + rng.randrange(50, 400), y + rng.randrange(50, 400)), fill=colour)
    return _encode(img, "JPEG", quality=90)


def screenshot(rng: random.Random) -> bytes:
    """A phone screen: status bar, title, text lines, an error banner, a button (PNG)."""
    width, height = SCREEN_SIZE
    img = Image.new("RGB", (width, height), (245, 245, 247))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 90), fill=(30, 30, 30))
    draw.text((40, 30), f"{rng.randrange(24):02d}:{rng.randrange(60):02d}   5G  87%", font=FONT, fill="white")
    draw.rectangle((0, 90, width, 260), fill=(rng.randrange(40, 200), 90, 200))
    draw.text((60, 160), f"Order #{rng.randrange(10**8)}", font=FONT, fill="white")
    y = 320
    while y < height - 500:
        words = " ".join(
            rng.choice(("item", "price", "delivery", "status", "refund", "address")) for _ in range(8)
        )
        draw.text(
            (60, y), f"{words} {rng.randrange(1000)}.{rng.randrange(100):02d}", font=FONT, fill=(40, 40, 40)
        )
        y += rng.choice((60, 70, 110))
    draw.rectangle((40, height - 460, width - 40, height - 300), fill=(255, 235, 235), outline=(220, 40, 40))
    draw.text(
        (80, height - 400), "Network error: connection failed (code -1009)", font=FONT, fill=(200, 20, 20)
    )
    draw.rounded_rectangle((200, height - 220, width - 200, height - 120), 30, fill=(0, 122, 255))
    draw.text((480, height - 180), "Retry", font=FONT, fill="white")
    return _encode(img, "PNG")


def receipt(rng: random.Random) -> bytes:
    """A long receipt photographed flat: paper grain, item rows, a total (JPEG)."""
    width, height = RECEIPT_SIZE
    paper = Image.new("RGB", (width, height), (250, 248, 240))
    img = Image.blend(paper, Image.effect_noise((width, height), 20).convert("RGB"), 0.08)
    draw = ImageDraw.Draw(img)
    draw.text(
        (360, 80),
        f"SHOP {rng.randrange(1000)}  2026-11-{rng.randrange(1, 29):02d}",
        font=FONT,
        fill=(20, 20, 20),
    )
    total, y = 0, 200
    while y < height - 300:
        price = rng.randrange(100, 9999)
        total += price
        draw.text(
            (80, y), f"ITEM {rng.randrange(10**6):06d} x{rng.randrange(1, 4)}", font=FONT, fill=(30, 30, 30)
        )
        draw.text((820, y), f"{price / 100:.2f}", font=FONT, fill=(30, 30, 30))
        y += 56
    draw.text((80, height - 200), f"TOTAL  CNY {total / 100:.2f}", font=FONT, fill=(0, 0, 0))
    return _encode(img, "JPEG", quality=88)


def product(index: int) -> bytes:
    """Catalogue picture ``index``: one object on white (JPEG)."""
    rng = random.Random(1000 + index)
    img = Image.new("RGB", PRODUCT_SIZE, "white")
    draw = ImageDraw.Draw(img)
    colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    box = (
        rng.randrange(100, 300),
        rng.randrange(100, 300),
        rng.randrange(900, 1100),
        rng.randrange(900, 1100),
    )
    (draw.ellipse if index % 2 else draw.rounded_rectangle)(box, fill=colour)  # type: ignore[operator]
    draw.text((box[0] + 40, box[1] + 40), f"SKU-{index:04d}", font=FONT, fill="white")
    img = img.filter(ImageFilter.GaussianBlur(1.5))
    return _encode(img, "JPEG", quality=90)
