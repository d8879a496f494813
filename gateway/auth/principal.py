"""Who is calling: the stored key record, its limits, and the authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import Forbidden

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-key limits; None means "no limit of this kind" (or "use the default")."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None

    def or_defaults(self, defaults: Limits) -> Limits:
        """These limits, with each unset one taken from ``defaults``."""
        return Limits(
            rpm=self.rpm if self.rpm is not None else defaults.rpm,
            tpm=self.tpm if self.tpm is not None else defaults.tpm,
            concurrency=self.concurrency if self.concurrency is not None else defaults.concurrency,
        )

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.concurrency is None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One stored API key. Holds the SHA-256 of the key, never the key."""

    name: str
    key_id: str
    key_hash: str
    limits: Limits = field(default_factory=Limits)
    presets: tuple[str, ...] | None = None  # None: every preset
    routes: tuple[str, ...] | None = None  # None: every route
    created_at: float = 0.0  # unix seconds
    last_used_at: float | None = None
    revoked_at: float | None = None
    models: tuple[str, ...] | None = None  # None: every model
    expires_at: float | None = None  # None: never; for a rotated-out key, the end of its grace
    rotated_at: float | None = None  # set when ``vlgw keys rotate`` replaced this key
    signed: bool = True  # False: a legacy CRC32 key from before signed keys (rotate it)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def current(self) -> bool:
        """True for the key that holds its name (not revoked, not replaced by a rotation)."""
        return self.revoked_at is None and self.rotated_at is None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def status(self, now: float) -> str:
        """``active``, ``revoked``, ``expired``, ``grace`` (rotated, still valid) or ``rotated``."""
        if self.revoked:
            return "revoked"
        if self.rotated_at is not None:
            return "rotated" if self.expired(now) else "grace"
        return "expired" if self.expired(now) else "active"

    def principal(self) -> Principal:
        return Principal(
            name=self.name,
            key_id=self.key_id,
            limits=self.limits,
            presets=self.presets,
            routes=self.routes,
            models=self.models,
        )


def _allowed(name: str, allowed: tuple[str, ...] | None) -> bool:
    if allowed is None:
        return True
    # "prefix*" entries allow a family ("/v1/*"); everything else matches exactly.
    return any(name == item or (item.endswith("*") and name.startswith(item[:-1])) for item in allowed)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as routes and the limiter see it."""

    name: str
    key_id: str
    limits: Limits = field(default_factory=Limits)
    presets: tuple[str, ...] | None = None
    routes: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None

    @classmethod
    def anonymous(cls) -> Principal:
        """The caller when ``GATEWAY_AUTH_DISABLED`` is on: every route and preset, default limits."""
        return cls(name=ANONYMOUS, key_id="-")

    def allows_route(self, route: str) -> bool:
        return _allowed(route, self.routes)

    def allows_preset(self, preset: str) -> bool:
        return _allowed(preset, self.presets)

    def allows_model(self, model: str) -> bool:
        return _allowed(model, self.models)

    def check_model(self, model: str, *, served: str | None = None) -> None:
        """Raise Forbidden (40301) unless this key may use ``model``.

        ``model`` is the name the client asked for; ``served`` the served model it resolved to
        (an alias's target). Either on the key's list allows it, so an operator may list the
        served name once instead of every alias.
        """
        if self.allows_model(model) or (served is not None and self.allows_model(served)):
            return
        raise Forbidden(f"this key is not allowed the model {model!r}", param="model")

    def check_route(self, route: str) -> None:
        """Raise Forbidden (40301) unless this key may call ``route``."""
        if not self.allows_route(route):
            raise Forbidden(f"this key is not allowed the route {route}")

    def check_preset(self, preset: str) -> None:
        """Raise Forbidden (40301) unless this key may use ``preset``."""
        if not self.allows_preset(preset):
            raise Forbidden(f"this key is not allowed the preset {preset!r}", param="preset")
