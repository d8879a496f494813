import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import org.openapitools.client.infrastructure.Serializer
import org.openapitools.client.models.AppAnswer
import org.openapitools.client.models.AppError
import org.openapitools.client.models.ModelList
import org.openapitools.client.models.QwenVlRequest
import org.openapitools.client.models.QwenVlRequestImage

/** Calls a running gateway with the generated Kotlin models (tests/integration/test_openapi_clients.py). */
fun main(args: Array<String>) {
    val (base, key, image) = args
    val gson = Serializer.gsonBuilder.create()
    // HTTP/1.1: the JDK client otherwise offers an h2c upgrade, which uvicorn refuses.
    val http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()
    fun call(path: String, body: Any?): HttpResponse<String> {
        val request = HttpRequest.newBuilder(URI.create(base + path)).header("Authorization", "Bearer $key")
        if (body != null) {
            request.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(gson.toJson(body)))
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString())
    }
    val asked = call("/v1/qwen-vl", QwenVlRequest(image = QwenVlRequestImage(image), prompt = "What is this?", maxTokens = 32))
    val answer = gson.fromJson(asked.body(), AppAnswer::class.java)
    val tooMany = QwenVlRequest(image = QwenVlRequestImage(listOf(image)), prompt = "?", maxTokens = 1_000_000_000)
    val refused = call("/v1/qwen-vl", tooMany)
    val error = gson.fromJson(refused.body(), AppError::class.java)
    val models = gson.fromJson(call("/v1/models", null).body(), ModelList::class.java)
    val result = mapOf(
        "answer" to mapOf("status" to asked.statusCode(), "code" to answer.code, "text" to answer.text),
        "refused" to mapOf("status" to refused.statusCode(), "code" to error.code, "param" to error.param),
        "models" to models.`data`.map { it.id },
    )
    println(gson.toJson(result))
}
