// Calling the gateway from JavaScript with fetch (Node 20+, browsers, React Native): ask, retry, stream.
//
//   VLGW_URL=http://127.0.0.1:8080 VLGW_KEY=vlgw_... VLGW_IMAGE=photo.jpg node client.mjs
//
// Prints one JSON line per call. In a browser, downscale with a <canvas> first (see docs/clients/README.md).
import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";

const FALLBACK = "暂时没看清楚,换个角度再试试?";
const RETRYABLE = new Set([429, 503]);
const MAX_ATTEMPTS = 3;
const TIMEOUT_MS = 10_000; // the mobile guide's 10 s for a whole answer
const STREAM_TIMEOUT_MS = 60_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function postWithRetry(url, key, body) {
  const idempotencyKey = randomUUID(); // the same key on every retry: at most one answer is produced
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${url}/v1/qwen-vl`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${key}`,
        "Idempotency-Key": idempotencyKey,
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!RETRYABLE.has(response.status) || attempt === MAX_ATTEMPTS) return response;
    const retryAfter = Number(response.headers.get("retry-after")) || 0.5 * 2 ** attempt;
    await sleep(Math.min(retryAfter, 10) * 1000 + Math.random() * 250);
  }
}

async function ask(url, key, image, prompt) {
  try {
    const response = await postWithRetry(url, key, { image, prompt, max_tokens: 200 });
    const body = await response.json();
    if (body.code !== 0 || !body.text) {
      // 40009 carries a hint ("光线太暗,请在明亮处重拍 / too dark ...") worth showing as is.
      return { code: body.code, text: body.hint ?? FALLBACK, message: body.message };
    }
    return { code: 0, text: body.text, request_id: body.request_id, usage: body.usage };
  } catch (err) {
    return { code: -1, text: FALLBACK, error: err.name }; // TimeoutError, TypeError (network)
  }
}

// Yields decoded `data:` events; null for [DONE]. Comment lines (keep-alives) are skipped.
async function* sseEvents(response) {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (!line.startsWith("data:")) continue;
      const payload = line.slice(5).trim();
      yield payload === "[DONE]" ? null : JSON.parse(payload);
    }
  }
}

async function askStreaming(url, key, image, prompt, onText) {
  const parts = [];
  let final = null;
  try {
    const response = await fetch(`${url}/v1/qwen-vl`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      body: JSON.stringify({ image, prompt, max_tokens: 200, stream: true }),
      signal: AbortSignal.timeout(STREAM_TIMEOUT_MS),
    });
    if (response.status !== 200) return { code: (await response.json()).code, text: FALLBACK };
    for await (const event of sseEvents(response)) {
      if (event === null) break;
      if ("text" in event && !("code" in event)) {
        parts.push(event.text);
        onText(event.text); // append to the label on screen
      } else {
        final = event; // {code: 0, usage, finish_reason, request_id} or an error event
      }
    }
  } catch (err) {
    return { code: -1, text: parts.join("") || FALLBACK, error: err.name };
  }
  if (!final || final.code !== 0) return { code: final?.code ?? -1, text: parts.join("") || FALLBACK };
  return { code: 0, text: parts.join(""), chunks: parts.length, usage: final.usage };
}

const { VLGW_URL: url, VLGW_KEY: key, VLGW_IMAGE: path } = process.env;
const image = "data:image/jpeg;base64," + (await readFile(path)).toString("base64");
const answer = await ask(url, key, image, "请描述这张图片的内容");
console.log(JSON.stringify({ mode: "answer", ...answer }));
const streamed = await askStreaming(url, key, image, "请描述这张图片的内容", () => {});
console.log(JSON.stringify({ mode: "stream", ...streamed }));
process.exitCode = answer.code === 0 && streamed.code === 0 ? 0 : 1;
