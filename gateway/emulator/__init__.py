"""A vLLM stand-in (no GPU, not a model) faithful to UPSTREAM.md, for tests, benchmarks and demos."""

from gateway.emulator.app import EmulatorApp, create_emulator_app
from gateway.emulator.config import EmulatorConfig, Faults
from gateway.emulator.state import EmulatorState

__all__ = ["EmulatorApp", "EmulatorConfig", "EmulatorState", "Faults", "create_emulator_app"]
