"""Auth first: the caller's principal as a Litestar dependency, resolved before any body is read.

Every ``/v1`` handler takes ``principal: PrincipalDep``, so a request without a valid key gets
40101 (or 40301 for a route its key may not use) whatever its body holds, malformed or huge.
"""

from __future__ import annotations

from gateway.api.context import context_of
from gateway.api.types import AnyRequest
from gateway.auth import Principal
from gateway.serving.services import Services


async def provide_principal(request: AnyRequest) -> Principal:
    """Authenticate the request's key for its route; the access line names the key from now on."""
    services: Services = request.app.state.services
    path = request.scope["path"]
    principal = await services.gate.authenticate(request.headers, path)
    context_of(request.scope).key_name = principal.name
    return principal
