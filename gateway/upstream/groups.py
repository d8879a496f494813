"""Model groups: several served models, each with its own replicas, behind one gateway (docs/models.md).

``GATEWAY_MODEL_GROUPS`` maps each served model name (and its aliases) to a replica set; without
it there is one group built from ``GATEWAY_UPSTREAM_URLS``/``_MODEL``/``_MODEL_ALIASES``, whose
model name may be discovered from vLLM. Each group is a full :class:`UpstreamClient` over its own
:class:`ReplicaPool`, so health, ejection, routing, admission and retries never mix models;
cache keys carry the model, metrics the replica name (``r0`` in the first group,
``<model>/r0`` in the others).

A group may be a **canary** of another (``canary_of``, ``canary_percent``): that share of the
keys asking for the other model (or its aliases) is answered by the canary, chosen by a hash of
the key's name, so one app sees one model consistently while the canary runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import aiohttp
import httpx

from gateway import errors
from gateway.settings import ModelGroup, Settings
from gateway.upstream.client import UpstreamClient
from gateway.upstream.pool import ReplicaPool


@dataclass(eq=False)
class Group:
    """One served model, its aliases and the client for its replicas."""

    spec: ModelGroup | None  # None: the single group of GATEWAY_UPSTREAM_* (model maybe discovered)
    aliases: tuple[str, ...]
    client: UpstreamClient

    @property
    def model(self) -> str | None:
        """The served model name (None while a discovered one is not known yet)."""
        return self.spec.model if self.spec is not None else self.client.pool.model

    def names(self) -> list[str]:
        model = self.model
        return [*([model] if model else []), *(alias for alias in self.aliases if alias != model)]


class ModelRouter:
    """Every model group; ``resolve()`` picks the one a request names (or the first)."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, session: aiohttp.ClientSession) -> None:
        self.groups: list[Group] = []
        if not settings.model_groups:
            pool = ReplicaPool(settings, http)
            client = UpstreamClient(settings, session, pool)
            self.groups.append(Group(None, tuple(settings.upstream_model_aliases), client))
        for index, spec in enumerate(settings.model_groups):
            scoped = settings.model_copy(
                update={
                    "upstream_urls": spec.urls,
                    "upstream_urls_file": None,
                    "upstream_model": spec.model,
                    "upstream_model_aliases": spec.aliases,
                    "upstream_max_model_len": spec.max_model_len or settings.upstream_max_model_len,
                }
            )
            pool = ReplicaPool(scoped, http, name_prefix="r" if index == 0 else f"{spec.model}/r")
            self.groups.append(Group(spec, tuple(spec.aliases), UpstreamClient(scoped, session, pool)))

    @property
    def default(self) -> Group:
        return self.groups[0]

    async def start(self) -> None:
        for group in self.groups:
            await group.client.pool.start()

    async def aclose(self) -> None:
        for group in self.groups:
            await group.client.pool.aclose()

    def find(self, name: str) -> Group | None:
        """The group serving ``name`` (a model or an alias), if any."""
        return next((group for group in self.groups if name in group.names()), None)

    def resolve(self, requested: str | None, *, owner: str) -> Group:
        """The group that answers a request for ``requested`` (None: the first), canaries applied.

        404 (40401) for a name no group serves, as vLLM and OpenAI answer an unknown model.
        """
        group = self.default if requested is None else self.find(requested)
        if group is None:
            raise errors.NotFound(f"the model `{requested}` does not exist", param="model")
        return self._canary(group, owner)

    def _canary(self, group: Group, owner: str) -> Group:
        model = group.model
        for canary in self.groups:
            spec = canary.spec
            if spec is None or spec.canary_of is None or spec.canary_of != model or spec.canary_percent <= 0:
                continue
            digest = hashlib.sha256(f"{model}\x00{owner}".encode()).digest()
            if int.from_bytes(digest[:4], "big") % 10_000 < spec.canary_percent * 100:
                return canary
        return group

    def ready(self) -> bool:
        """At least one replica of any group is in rotation (CONTRACT.md §5)."""
        return any(group.client.pool.ready() for group in self.groups)

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Per replica (names are unique across groups): state, plus the model it serves."""
        out: dict[str, dict[str, object]] = {}
        for group in self.groups:
            for name, state in group.client.pool.snapshot().items():
                out[name] = {**state, "model": group.model}
        return out
