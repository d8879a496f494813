"""Type aliases for Litestar objects the handlers share."""

from typing import Any, TypeAlias

from litestar import Request

AnyRequest: TypeAlias = Request[Any, Any, Any]
