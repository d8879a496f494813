package vlgw

import org.json.JSONObject
import java.io.File
import java.io.FileDescriptor
import java.io.FileOutputStream
import java.io.PrintStream
import java.util.Base64
import kotlin.system.exitProcess

/**
 * A command-line run of VisionClient, as the tests use it (the same output as the Python and
 * JavaScript examples): VLGW_URL=... VLGW_KEY=... VLGW_IMAGE=photo.jpg java -cp ... vlgw.MainKt
 * On Android the image comes from PhotoEncoder instead (upright, downscaled).
 */
fun main() {
    // UTF-8 whatever the locale (a bare environment would print "?" for the Chinese text)
    val out = PrintStream(FileOutputStream(FileDescriptor.out), true, "UTF-8")
    val env = System.getenv()
    val image = "data:image/jpeg;base64," + Base64.getEncoder().encodeToString(File(env.getValue("VLGW_IMAGE")).readBytes())
    val client = VisionClient(env.getValue("VLGW_URL"), env.getValue("VLGW_KEY"))
    val answer = client.ask(image, prompt = "请描述这张图片的内容")
    out.println(line("answer", answer, 0))
    var pieces = 0
    val streamed = client.askStreaming(image, "请描述这张图片的内容", { pieces++ })
    out.println(line("stream", streamed, pieces))
    exitProcess(if (answer.code == 0 && streamed.code == 0) 0 else 1)
}

private fun line(mode: String, answer: Answer, chunks: Int): String {
    val json = JSONObject().put("mode", mode).put("code", answer.code).put("chunks", chunks)
    when (answer) {
        is Answer.Ok -> json.put("text", answer.text).put("request_id", answer.requestId)
        is Answer.Refused -> json.put("text", answer.message)
    }
    return json.toString()
}
