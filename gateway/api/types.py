"""Type aliases for Litestar objects the handlers share."""

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency

from gateway.auth import Principal
from gateway.serving.services import Services

AnyRequest: TypeAlias = Request[Any, Any, Any]

ServicesDep: TypeAlias = NamedDependency[Services]
"""How handlers ask for the services (Litestar's explicit named dependency)."""

PrincipalDep: TypeAlias = NamedDependency[Principal]
"""The authenticated caller, resolved before the handler reads its body (gateway/api/auth.py)."""
