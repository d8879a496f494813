// The gateway's app contract from JavaScript: the same module in browsers, Node 20+ and React Native.
//
//   import { ask, askStreaming } from "./vlgw.mjs";
//   const answer = await ask(url, key, dataUri, "这是什么?");   // {code, text, request_id?, hint?}
//
// Rules (docs/clients/README.md): 10 s for a whole answer; retry only 429/503 after Retry-After,
// with one Idempotency-Key for every attempt; branch on the JSON `code`, never on the HTTP status
// alone; a body that is not JSON (a proxy's HTML error page) is an error, not a crash.

export const FALLBACK = "暂时没看清楚,换个角度再试试?";
const RETRYABLE = new Set([429, 503]);
const MAX_ATTEMPTS = 3;
const TIMEOUT_MS = 10_000; // the mobile guide's 10 s for a whole answer
const STREAM_TIMEOUT_MS = 60_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The gateway's JSON, or a stand-in when something else answered (e.g. a proxy's 502 page).
export async function jsonBody(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body === "object") return body;
  } catch {
    // not JSON: fall through
  }
  return { code: response.status * 100 + 99, message: `HTTP ${response.status}, not JSON` };
}

// Milliseconds to wait before the next attempt, or null when this answer is final.
function retryDelay(response, attempt) {
  if (!RETRYABLE.has(response.status) || attempt === MAX_ATTEMPTS) return null;
  const retryAfter = Number(response.headers.get("retry-after")) || 0.5 * 2 ** attempt;
  return Math.min(retryAfter, 10) * 1000 + Math.random() * 250;
}

async function postWithRetry(url, key, body, timeoutMs) {
  const idempotencyKey = crypto.randomUUID(); // the same on every retry: at most one answer is produced
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${url}/v1/qwen-vl`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${key}`,
        "Idempotency-Key": idempotencyKey,
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const delay = retryDelay(response, attempt);
    if (delay === null) return response;
    await response.body?.cancel();
    await sleep(delay);
  }
}

export async function ask(url, key, image, prompt, extra = {}) {
  try {
    const response = await postWithRetry(url, key, { image, prompt, max_tokens: 200, ...extra }, TIMEOUT_MS);
    const body = await jsonBody(response);
    if (body.code !== 0 || !body.text) {
      // 40009 carries a hint ("光线太暗,请在明亮处重拍 / too dark ...") worth showing as is.
      return { code: body.code, text: body.hint ?? FALLBACK, message: body.message };
    }
    return { code: 0, text: body.text, request_id: body.request_id, usage: body.usage };
  } catch (err) {
    return { code: -1, text: FALLBACK, error: err.name }; // TimeoutError, TypeError (network, CORS)
  }
}

// Decoded `data:` events; null for [DONE]. Comment lines (keep-alives) are skipped.
export async function* sseEvents(response) {
  const reader = response.body.getReader(); // getReader(): every browser has it, unlike for-await
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
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

export async function askStreaming(url, key, image, prompt, onText, extra = {}) {
  const parts = [];
  let final = null;
  try {
    const body = { image, prompt, max_tokens: 200, stream: true, ...extra };
    const response = await postWithRetry(url, key, body, STREAM_TIMEOUT_MS);
    if (response.status !== 200) {
      // Errors before the stream starts are ordinary JSON answers with a `code`.
      return { code: (await jsonBody(response)).code, text: FALLBACK };
    }
    for await (const event of sseEvents(response)) {
      if (event === null) break;
      if ("text" in event && !("code" in event)) {
        parts.push(event.text);
        onText(event.text); // append to the label on screen
      } else {
        final = event; // {code: 0, usage, finish_reason, request_id} or an error event {code, message}
      }
    }
  } catch (err) {
    return { code: -1, text: parts.join("") || FALLBACK, error: err.name };
  }
  // No final event: the stream was cut. A nonzero code: an error after the stream began.
  if (!final || final.code !== 0) return { code: final?.code ?? -1, text: parts.join("") || FALLBACK };
  return { code: 0, text: parts.join(""), chunks: parts.length, usage: final.usage, request_id: final.request_id };
}
