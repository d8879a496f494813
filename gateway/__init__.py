"""vlgw: an OpenAI-compatible gateway for a vLLM server running Qwen3-VL."""

__version__ = "0.1.0"
