"""Auth first: the caller's principal as a Litestar dependency, resolved before any body is read.

Every ``/v1`` handler takes ``principal: PrincipalDep``, so a request without a valid key gets
40101 (or 40301 for a route its key may not use) whatever its body holds, malformed or huge.
"""

from __future__ import annotations

from gateway.api.context import context_of
from gateway.api.types import AnyRequest, ServicesDep
from gateway.auth import Principal


async def provide_principal(request: AnyRequest, services: ServicesDep) -> Principal:
    """Authenticate the request's key for its route; the access line names the key from now on.

    It depends on ``services`` so that Litestar resolves the two one after the other: dependencies
    of one level are resolved in a task group, which costs a task per request.
    """
    path = request.scope["path"]
    client = request.client.host if request.client else None
    with services.tracing.phase("auth"):
        principal = await services.gate.authenticate(request.headers, path, client=client)
        services.tracing.annotate(key=principal.name)
    context_of(request.scope).key_name = principal.name
    return principal
