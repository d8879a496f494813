package vlgw

import org.json.JSONException
import org.json.JSONObject
import java.io.IOException
import java.util.UUID
import kotlin.math.min

/**
 * The gateway's app contract for Android (and any JVM): ask, retry politely, stream, feedback.
 *
 * Blocking calls: on Android run them off the main thread, e.g.
 * `val answer = withContext(Dispatchers.IO) { client.ask(image, prompt = "这是什么?") }`.
 * Rules (docs/clients/README.md): retry only 429/503, after Retry-After, with one
 * Idempotency-Key for every attempt; branch on the JSON `code`; a body that is not JSON (a
 * proxy's HTML 502 page) is an error, never a crash; show the fallback text or the 40009 hint.
 */
const val FALLBACK = "暂时没看清楚,换个角度再试试?"
private const val MAX_ATTEMPTS = 3

sealed class Answer {
    abstract val code: Int

    data class Ok(val text: String, val requestId: String) : Answer() {
        override val code = 0
    }

    /** [message] is safe to show: the fallback text, or the 40009 hint ("光线太暗,请在明亮处重拍 / ..."). */
    data class Refused(val message: String, override val code: Int) : Answer()
}

class VisionClient(
    private val baseUrl: String,
    private val apiKey: String,
    private val http: Transport = OkHttpTransport(),
    private val sleep: (Long) -> Unit = { Thread.sleep(it) },
) {
    /** One whole answer. [image]: a data URI (PhotoEncoder) or an https URL. */
    fun ask(image: String, prompt: String? = null, preset: String? = null, maxTokens: Int = 200): Answer {
        val body = request(image, prompt, preset, maxTokens, stream = false)
        return try {
            post(body, stream = false).use { reply -> answerOf(parse(reply.status(), reply.text())) }
        } catch (e: IOException) { // timeout, no network
            Answer.Refused(FALLBACK, -1)
        }
    }

    /** A streamed answer: [onText] gets each piece as it arrives (append it to the TextView). */
    fun askStreaming(image: String, prompt: String, onText: (String) -> Unit, maxTokens: Int = 200): Answer {
        val body = request(image, prompt, null, maxTokens, stream = true)
        val text = StringBuilder()
        try {
            post(body, stream = true).use { reply ->
                if (reply.status() != 200) { // errors before the stream starts are plain JSON answers
                    return Answer.Refused(FALLBACK, codeOf(parse(reply.status(), reply.text())))
                }
                while (true) {
                    val line = reply.readLine() ?: break // cut before the final event
                    if (!line.startsWith("data:")) continue // ": keep-alive" comments
                    val payload = line.removePrefix("data:").trim()
                    if (payload == "[DONE]") break
                    val event = JSONObject(payload)
                    if (!event.has("code")) {
                        val piece = event.getString("text")
                        text.append(piece)
                        onText(piece)
                    } else if (event.getInt("code") == 0) {
                        return Answer.Ok(text.toString(), event.optString("request_id"))
                    } else { // an error after the stream began
                        return Answer.Refused(FALLBACK, event.getInt("code"))
                    }
                }
            }
        } catch (e: IOException) {
            // fall through: a stream without its final event is an error
        } catch (e: JSONException) {
            // an unreadable event: the same
        }
        return Answer.Refused(FALLBACK, -1)
    }

    /** The "识别有误?" button: feedback on an answer, by its request_id. */
    fun reportWrong(requestId: String, expected: String? = null): Boolean {
        val body = JSONObject().put("request_id", requestId).put("verdict", "bad")
        if (expected != null) body.put("expected", expected)
        return try {
            http.post("$baseUrl/v1/feedback", headers(), body.toString(), false).use { it.status() == 200 }
        } catch (e: IOException) {
            false
        }
    }

    private fun request(image: String, prompt: String?, preset: String?, maxTokens: Int, stream: Boolean): String {
        val body = JSONObject().put("image", image).put("max_tokens", maxTokens)
        if (prompt != null) body.put("prompt", prompt)
        if (preset != null) body.put("preset", preset)
        if (stream) body.put("stream", true)
        return body.toString()
    }

    private fun headers(idempotencyKey: String? = null): Map<String, String> {
        val headers = mutableMapOf("Authorization" to "Bearer $apiKey", "Content-Type" to "application/json")
        if (idempotencyKey != null) headers["Idempotency-Key"] = idempotencyKey
        return headers
    }

    /** POST, retrying 429/503 after Retry-After (or 1 s, 2 s) with one Idempotency-Key for all tries. */
    private fun post(body: String, stream: Boolean): Transport.Reply {
        val headers = headers(UUID.randomUUID().toString())
        var attempt = 1
        while (true) {
            val reply = http.post("$baseUrl/v1/qwen-vl", headers, body, stream)
            val status = reply.status()
            if ((status != 429 && status != 503) || attempt == MAX_ATTEMPTS) return reply
            val retryAfter = reply.header("Retry-After")?.toDoubleOrNull() ?: (0.5 * (1 shl attempt))
            reply.close()
            sleep((min(retryAfter, 10.0) * 1000).toLong() + (0..250).random())
            attempt++
        }
    }

    private fun answerOf(json: JSONObject): Answer {
        val code = codeOf(json)
        val text = json.optString("text")
        return when {
            code == 0 && text.isNotBlank() -> Answer.Ok(text, json.optString("request_id"))
            code == 40009 -> Answer.Refused(json.optString("hint", FALLBACK), code)
            else -> Answer.Refused(FALLBACK, code)
        }
    }

    private fun codeOf(json: JSONObject): Int = json.optInt("code", -1)

    /** The gateway's JSON, or a stand-in with code status*100+99 when something else answered. */
    private fun parse(status: Int, text: String): JSONObject =
        try {
            JSONObject(text)
        } catch (e: JSONException) {
            JSONObject().put("code", status * 100 + 99).put("message", "HTTP $status, not JSON")
        }
}
