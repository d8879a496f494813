"""Video intake: safe fetching, container probing, bounded decoding, frame sampling (docs/video.md).

intake.py    VideoIntake.prepare(ref) -> PreparedVideo: the one entry point for the pipeline
source.py    URL / data:video URI / bare base64; strict base64, sizes checked before decoding
probe.py     forced demuxer from magic bytes, container/codec/stream allowlist, header limits
geometry.py  frames sampled, their size on the Qwen grid, the token estimate and its upper bound
decode.py    memory admitted before decoding, wall/CPU deadline, sampling by timestamp, rotation
prepared.py  PreparedVideo: the data:video/jpeg;base64,<f1>,<f2>,... URI vLLM 0.33 takes, its hash
limits.py    VideoLimits from GATEWAY_VIDEO_*, refusals with a reason
"""

from gateway.video.geometry import max_video_tokens, video_prompt_tokens
from gateway.video.intake import VideoIntake
from gateway.video.prepared import PreparedVideo

__all__ = ["PreparedVideo", "VideoIntake", "max_video_tokens", "video_prompt_tokens"]
