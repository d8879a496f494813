"""Model groups over real emulators serving different model names: routing by name and alias,
isolation of replica sets, canary share by key, unknown models, settings validation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
import pytest
from pydantic import ValidationError

from gateway import errors
from gateway.settings import Settings
from gateway.upstream.groups import ModelRouter
from tests.unit.upstream.fleet import Fleet


def group_settings(groups: list[dict[str, Any]], **overrides: Any) -> Settings:
    values: dict[str, Any] = {"model_groups": groups, "upstream_health_interval": 0.2}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def make_router() -> AsyncIterator[Callable[..., ModelRouter]]:
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=0.5))
    session = aiohttp.ClientSession()
    routers: list[ModelRouter] = []

    def make(settings: Settings) -> ModelRouter:
        router = ModelRouter(settings, http, session)
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.aclose()
    await session.close()
    await http.aclose()


CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


async def test_each_name_reaches_its_own_replicas(
    make_router: Callable[..., ModelRouter], fleet_factory: Callable[..., Fleet]
) -> None:
    small, fp8 = fleet_factory(2, model="qwen3-vl-8b"), fleet_factory(1, model="qwen3-vl-8b-fp8")
    router = make_router(
        group_settings(
            [
                {"model": "qwen3-vl-8b", "urls": small.urls, "aliases": ["qwen-vl"]},
                {"model": "qwen3-vl-8b-fp8", "urls": fp8.urls, "aliases": ["qwen-vl-fp8"]},
            ]
        )
    )
    await router.start()
    for requested, expected in [
        (None, "qwen3-vl-8b"),
        ("qwen-vl", "qwen3-vl-8b"),
        ("qwen-vl-fp8", "qwen3-vl-8b-fp8"),
    ]:
        group = router.resolve(requested, owner="app")
        assert group.model == expected
        answer = await group.client.chat({**CHAT, "model": await group.client.model()}, request_id="x")
        assert answer.completion.model == expected
    assert sorted(router.snapshot()) == ["qwen3-vl-8b-fp8/r0", "r0", "r1"]
    assert fp8.stats(0)["chat_requests"] == 1
    assert small.stats(0)["chat_requests"] + small.stats(1)["chat_requests"] == 2


async def test_a_dead_group_does_not_touch_the_other(
    make_router: Callable[..., ModelRouter], fleet_factory: Callable[..., Fleet]
) -> None:
    live, dead = fleet_factory(1, model="a"), fleet_factory(1, model="b")
    router = make_router(
        group_settings([{"model": "a", "urls": live.urls}, {"model": "b", "urls": dead.urls}])
    )
    await router.start()
    dead.kill(0)
    with pytest.raises(errors.ServiceUnavailable):
        await router.resolve("b", owner="k").client.chat({**CHAT, "model": "b"}, request_id="x")
    answer = await router.resolve("a", owner="k").client.chat({**CHAT, "model": "a"}, request_id="y")
    assert answer.completion.model == "a" and router.ready()


def test_unknown_model_is_404() -> None:
    router = ModelRouter(group_settings([{"model": "a", "urls": ["http://127.0.0.1:9"]}]), None, None)  # type: ignore[arg-type]
    with pytest.raises(errors.NotFound) as caught:
        router.resolve("gpt-4o", owner="k")
    assert caught.value.code == 40401 and caught.value.param == "model"


def test_a_canary_takes_its_share_of_keys_consistently() -> None:
    settings = group_settings(
        [
            {"model": "stable", "urls": ["http://127.0.0.1:9"], "aliases": ["qwen-vl"]},
            {"model": "next", "urls": ["http://127.0.0.1:10"], "canary_of": "stable", "canary_percent": 20},
        ]
    )
    router = ModelRouter(settings, None, None)  # type: ignore[arg-type]
    owners = [f"app-{n}" for n in range(2000)]
    chosen = {owner: router.resolve("qwen-vl", owner=owner).model for owner in owners}
    share = sum(model == "next" for model in chosen.values()) / len(owners)
    assert 0.16 < share < 0.24  # 20 % of keys, by hash
    assert all(router.resolve(None, owner=o).model == chosen[o] for o in owners[:100])  # stable per key
    assert router.resolve("next", owner="app-1").model == "next"  # asked by name: always the canary


@pytest.mark.parametrize(
    "groups",
    [
        [{"model": "a", "urls": ["http://x:1"]}, {"model": "b", "urls": ["http://y:1"], "aliases": ["a"]}],
        [{"model": "a", "urls": ["ftp://x"]}],
        [{"model": "a", "urls": []}],
        [{"model": "a", "urls": ["http://x:1"], "canary_of": "nope", "canary_percent": 5}],
    ],
    ids=["name twice", "not http", "no urls", "canary of unknown"],
)
def test_bad_groups_are_refused_at_start_up(groups: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError):
        group_settings(groups)


def test_without_groups_one_group_from_the_upstream_settings() -> None:
    settings = Settings(_env_file=None, upstream_urls=["http://127.0.0.1:9"], upstream_model="m")  # type: ignore[call-arg]
    router = ModelRouter(settings, None, None)  # type: ignore[arg-type]
    assert len(router.groups) == 1 and router.default.names() == ["m", "qwen-vl", "qwen3-vl"]
