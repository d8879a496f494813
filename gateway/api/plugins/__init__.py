"""Features installed with one line each, in the shape of Litestar's ``plugins/prometheus``:
a config, a controller (the feature's routes) and the plugin that installs them."""

from gateway.api.plugins.devex import DevexConfig, DevexController, DevexPlugin
from gateway.api.plugins.metrics import MetricsConfig, MetricsController, MetricsPlugin

__all__ = [
    "DevexConfig",
    "DevexController",
    "DevexPlugin",
    "MetricsConfig",
    "MetricsController",
    "MetricsPlugin",
]
