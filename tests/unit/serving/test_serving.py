"""The pipeline's pieces without HTTP: the slot, the route policies, the two question forms, replays."""

from __future__ import annotations

import time
from typing import Any

from gateway.auth import Limits, Principal
from gateway.cache import CachedAnswer, CacheMode, RequestCacheControl
from gateway.cache.broadcast import Broadcast
from gateway.limits import Limiter
from gateway.serving.answers import plan_cache, replay_items
from gateway.serving.ask import Ask, Chat, Prompt
from gateway.serving.gate import Gate
from gateway.serving.relay import StreamResult, relay_app, relay_openai
from gateway.serving.task import Sampling
from gateway.settings import Settings
from gateway.upstream.wire import Usage

SETTINGS = Settings(_env_file=None, upstream_urls=["http://127.0.0.1:9"])  # type: ignore[call-arg]
ANSWER = CachedAnswer(
    text="a red square",
    finish_reason="stop",
    usage=Usage(10, 3, 13),
    model="qwen3-vl-8b",
    created=time.time(),
)


def ask(question: Prompt | Chat, **fields: Any) -> Ask:
    values: dict[str, Any] = {
        "principal": Principal(name="k", key_id="-"),
        "route": "/v1/qwen-vl",
        "request_id": "r",
        "started": 0.0,
        "question": question,
        "images": ("aGk=",),
        "sampling": Sampling(max_tokens=64, temperature=None, top_p=None),
    }
    return Ask(**(values | fields))


def source_of(items: list[bytes | None]) -> Any:
    return Broadcast.complete(items, ANSWER).subscribe()


def chat(text: str, **body: Any) -> Chat:
    content = [{"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}, {"type": "text", "text": text}]
    full = {"model": "m", "messages": [{"role": "user", "content": content}], **body}
    return Chat(body=full, image_parts=(content[0],), text_bytes=len(text.encode()), last_user_text=text)


async def test_a_slot_is_settled_once_however_the_request_ends() -> None:
    limiter = Limiter(None)
    principal = Principal(name="c", key_id="-", limits=Limits(None, None, 1))
    gate = Gate(None, limiter)  # type: ignore[arg-type]
    async with await gate.admit(principal, estimated_tokens=0) as slot:
        await slot.settle(Usage(1, 1, 2))
    async with await gate.admit(principal, estimated_tokens=0) as slot:  # the one slot came back
        pass
    try:
        async with await gate.admit(principal, estimated_tokens=0):
            raise RuntimeError("intake failed")
    except RuntimeError:
        pass
    held = await gate.admit(principal, estimated_tokens=0)  # released by the error exit
    async with held:
        held.hand_over()  # a stream: leaving the block does not settle...
    assert not held.settled
    await held.settle(None)  # ...its end does, once
    await held.settle(None)
    async with await gate.admit(principal, estimated_tokens=0):
        pass


def test_route_policies() -> None:
    sampled = Sampling(max_tokens=64, temperature=0.7, top_p=None)
    app = ask(Prompt("hi", None, "hi"), sampling=sampled, any_temperature=True)
    assert plan_cache(SETTINGS, app).mode is CacheMode.USE  # the app route: whatever the temperature
    openai = ask(chat("hi"), sampling=sampled)
    assert plan_cache(SETTINGS, openai).mode is CacheMode.BYPASS  # reproducible only
    greedy = ask(chat("hi"), sampling=Sampling(max_tokens=64, temperature=0, top_p=None))
    assert plan_cache(SETTINGS, greedy).mode is CacheMode.USE
    assert plan_cache(SETTINGS, ask(chat("hi"), sampling=greedy.sampling, n=2)).mode is CacheMode.BYPASS
    no_store = ask(
        Prompt("hi", None, "hi"), any_temperature=True, cache_control=RequestCacheControl(no_store=True)
    )
    assert plan_cache(SETTINGS, no_store).mode is CacheMode.BYPASS
    no_cache = ask(
        Prompt("hi", None, "hi"), any_temperature=True, cache_control=RequestCacheControl(no_cache=True)
    )
    assert plan_cache(SETTINGS, no_cache).mode is CacheMode.REFRESH


def test_the_chat_key_ignores_transport_fields_and_keeps_sampling() -> None:
    plain = ask(chat("what is it?", temperature=0)).key_material(["h1"], "m")
    streamed = ask(chat("what is it?", temperature=0, stream=True, user="u")).key_material(["h1"], "m")
    assert plain == streamed
    hotter = ask(chat("what is it?", temperature=1)).key_material(["h1"], "m")
    assert hotter != plain
    assert plain.messages["messages"][0]["content"][0] == {"type": "image_url", "sha256": "h1"}


def test_the_upstream_body_gets_the_images_and_leaves_the_ask_alone() -> None:
    question = chat("what is it?", stream=True)
    sent = question.payload("m", ["data:image/jpeg;base64,AAAA"], ask(question, stream=True))
    assert sent["messages"][0]["content"][0]["image_url"]["url"] == "data:image/jpeg;base64,AAAA"
    assert sent["stream_options"] == {"include_usage": True}  # streams are always accounted
    assert question.image_parts[0]["image_url"]["url"] == "https://x/y.jpg"  # the key still sees the ref


def test_both_questions_measure_text_the_same_way() -> None:
    text = "请描述这张图片的内容 and in English"
    assert Prompt(text, None, text).text_bytes == chat(text).text_bytes == len(text.encode())


async def test_a_replay_renders_like_the_live_stream() -> None:
    done: list[StreamResult] = []

    async def finished(result: StreamResult) -> None:
        done.append(result)

    events = [
        e
        async for e in relay_app(
            source_of(replay_items(ANSWER)), request_id="r", route="x", started=None, on_done=finished
        )
    ]
    assert events[0] == b'data: {"text":"a red square"}\n\n' and events[-1] == b"data: [DONE]\n\n"
    assert b'"finish_reason":"stop"' in events[-2] and b'"total_tokens":13' in events[-2]
    assert done[0].completed and done[0].text == ANSWER.text and done[0].usage == ANSWER.usage
    hidden = [
        e
        async for e in relay_openai(
            source_of(replay_items(ANSWER)), route="x", started=None, include_usage=False
        )
    ]
    shown = [
        e
        async for e in relay_openai(
            source_of(replay_items(ANSWER)), route="x", started=None, include_usage=True
        )
    ]
    assert len(shown) == len(hidden) + 1 and b'"usage"' in shown[-2]
