"""Type aliases for Litestar objects the handlers share."""

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency

from gateway.serving.services import Services

AnyRequest: TypeAlias = Request[Any, Any, Any]

ServicesDep: TypeAlias = NamedDependency[Services]
"""How handlers ask for the services (Litestar's explicit named dependency)."""
