"""Video intake benchmark: decode + sampling time per second of clip on one core, tokens per clip.

    .venv/bin/python bench/video.py --runs 5

Pins itself to one CPU (``--cpu``) and encodes its inputs with PyAV: a moving, blurred-noise
texture (so inter-frame prediction and the decoder do real work), H.264 at phone-like bitrates
(1080p30 about 10-20 Mbit/s), VP9 for WebM. Reports medians of ``--runs``:

* ``intake``: ``VideoIntake.process`` on the calling thread (probe, decode every frame, pick
  frames by timestamp, scale, JPEG-encode, hash): the CPU time one clip costs, on one core, and
  its wall time (inflated on a shared machine).
* ``baseline``: PyAV decoding every frame of the same clip and nothing else, measured in the same
  run: the floor any intake that decodes the clip pays. ``ratio`` = intake CPU / baseline CPU.
* ``per s``: intake CPU time per second of clip; ``tokens``: the estimate at the default budgets.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from collections.abc import Callable

import av
from PIL import Image, ImageChops, ImageFilter

from gateway.settings import Settings
from gateway.video import VideoIntake

CLIPS = [
    # (name, container, codec, width, height, seconds, fps, bit rate): phone camera rates
    ("1080p h264 10 s", "mp4", "libx264", 1920, 1080, 10, 30, 16_000_000),
    ("1080p h264 30 s", "mp4", "libx264", 1920, 1080, 30, 30, 16_000_000),
    ("720p h264 10 s", "mp4", "libx264", 1280, 720, 10, 30, 8_000_000),
    ("1080p vp9 10 s", "webm", "libvpx-vp9", 1920, 1080, 10, 30, 8_000_000),
    ("4K h264 5 s", "mp4", "libx264", 3840, 2160, 5, 30, 45_000_000),
    ("portrait 1080p h264 10 s", "mp4", "libx264", 1080, 1920, 10, 30, 16_000_000),
]
OPTIONS = {
    "libx264": {"preset": "veryfast"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
}


def texture(width: int, height: int) -> Image.Image:
    """Blurred noise, twice the frame size, so a moving window shows new detail every frame."""
    noise = Image.effect_noise((width * 2, height * 2), 64).filter(ImageFilter.GaussianBlur(1))
    return Image.merge("RGB", (noise, ImageChops.offset(noise, 7, 3), ImageChops.invert(noise)))


def make_clip(
    container: str, codec: str, width: int, height: int, seconds: int, fps: int, rate: int
) -> bytes:
    """One clip of a texture panning diagonally, ``fps`` frames a second."""
    source = texture(width, height)
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = OPTIONS[codec]
        stream.bit_rate = rate
        for index in range(seconds * fps):
            x, y = (index * 7) % width, (index * 3) % height
            frame = av.VideoFrame.from_image(source.crop((x, y, x + width, y + height)))
            frame.pts = index
            muxer.mux(stream.encode(frame))
        muxer.mux(stream.encode(None))
    return out.getvalue()


def decode_all(data: bytes) -> int:
    """The baseline: decode every frame, single-threaded, keep nothing."""
    with av.open(io.BytesIO(data)) as clip:
        stream = clip.streams.video[0]
        stream.codec_context.thread_count = 1
        return sum(1 for _ in clip.decode(stream))


def medians(runs: int, *calls: Callable[[], object]) -> list[tuple[float, float]]:
    """Median (wall, CPU) seconds of each call over ``runs`` rounds, the calls interleaved in every
    round (one warm-up round first). CPU time is the calling thread's (``time.thread_time``: the
    decoders run single-threaded in it), so a busy machine inflates wall time, not CPU time."""
    times: list[list[tuple[float, float]]] = [[] for _ in calls]
    for round_ in range(runs + 1):
        for index, call in enumerate(calls):
            wall, cpu = time.perf_counter(), time.thread_time()
            call()
            if round_:
                times[index].append((time.perf_counter() - wall, time.thread_time() - cpu))
    return [(statistics.median(w for w, _ in each), statistics.median(c for _, c in each)) for each in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to")
    parser.add_argument("--only", default="", help="run only clips whose name contains this")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    settings = Settings(video_decode_timeout=600, video_decode_cpu_seconds=600)
    intake = VideoIntake(settings)
    print(
        f"video intake, one core (cpu {args.cpu}), median of {args.runs} runs; defaults: "
        f"{settings.video_sample_fps:g} fps, {settings.video_max_frames} frames, "
        f"{settings.video_frame_pixel_budget} px/frame, {settings.video_total_pixel_budget} px/clip\n"
    )
    print(
        "| clip | Mbit/s | intake CPU ms | CPU per s of clip | baseline CPU ms | ratio "
        "| intake wall ms | frames sent | size | tokens |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, container, codec, width, height, seconds, fps, rate in CLIPS:
        if args.only not in name:
            continue
        data = make_clip(container, codec, width, height, seconds, fps, rate)
        video = intake.process(data, "base64")
        (intake_wall, intake_cpu), (_, base_cpu) = medians(
            args.runs, lambda data=data: intake.process(data, "base64"), lambda data=data: decode_all(data)
        )
        mbits = len(data) * 8 / seconds / 1e6
        print(
            f"| {name} | {mbits:.1f} | {intake_cpu * 1000:.0f} | {intake_cpu / seconds * 1000:.0f} ms "
            f"| {base_cpu * 1000:.0f} | {intake_cpu / base_cpu:.2f} | {intake_wall * 1000:.0f} "
            f"| {video.frames} | {video.width}x{video.height} | {video.visual_tokens} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
