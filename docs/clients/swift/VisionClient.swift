import Foundation
import UIKit

let fallbackText = "暂时没看清楚,换个角度再试试?"

enum Answer {
    case ok(text: String, requestId: String)
    case refused(message: String, code: Int)  // message is safe to show
}

final class VisionClient {
    private let baseURL: URL
    private let apiKey: String
    private let session: URLSession    // whole answers: 10 s each (set per request)
    private let streaming: URLSession  // streams: no cap on the whole, 30 s between bytes

    init(baseURL: URL, apiKey: String) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        session = URLSession(configuration: .default)
        let config = URLSessionConfiguration.default
        config.timeoutIntervalForRequest = 30        // longest gap between bytes (the gateway sends keep-alives)
        config.timeoutIntervalForResource = 60 * 60  // no practical cap: a long answer must not be cut
        streaming = URLSession(configuration: config)
    }

    /// The gateway's JSON, or a stand-in with code status*100+99 when something else answered
    /// (a proxy's HTML 502 page): an error, never a crash.
    private static func json(_ data: Data, status: Int) -> [String: Any] {
        if let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] { return object }
        return ["code": status * 100 + 99, "message": "HTTP \(status), not JSON"]
    }

    /// Seconds to wait before another try after a 429/503, or nil when the answer is final.
    private static func retryDelay(_ response: HTTPURLResponse?, attempt: Int) -> Double? {
        guard let response, response.statusCode == 429 || response.statusCode == 503, attempt < 3 else { return nil }
        let header = Double(response.value(forHTTPHeaderField: "Retry-After") ?? "")
        return min(header ?? 0.5 * pow(2, Double(attempt)), 10) + Double.random(in: 0...0.25)
    }

    /// Downscale to a long side of 1280 px and at most ~1.3 MP, JPEG quality 0.85, as a data URI.
    static func encodePhoto(_ image: UIImage) -> String? {
        let size = image.size  // already oriented: UIImage applies EXIF orientation when drawn
        let scale = min(1, 1280 / max(size.width, size.height), sqrt(1_310_720 / (size.width * size.height)))
        let target = CGSize(width: (size.width * scale).rounded(), height: (size.height * scale).rounded())
        let format = UIGraphicsImageRendererFormat.default()
        format.scale = 1  // pixels, not points
        let resized = UIGraphicsImageRenderer(size: target, format: format).image { _ in
            image.draw(in: CGRect(origin: .zero, size: target))
        }
        guard let jpeg = resized.jpegData(compressionQuality: 0.85) else { return nil }
        return "data:image/jpeg;base64," + jpeg.base64EncodedString()
    }

    private func request(_ path: String, body: [String: Any]) throws -> URLRequest {
        var request = URLRequest(url: baseURL.appendingPathComponent(path))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        return request
    }

    /// One answer within 10 s; retries 429/503 after Retry-After with the same Idempotency-Key.
    func ask(image: String, preset: String = "identify_object", prompt: String? = nil) async -> Answer {
        var body: [String: Any] = ["image": image, "preset": preset]
        if let prompt { body["prompt"] = prompt }
        let idempotencyKey = UUID().uuidString
        for attempt in 1...3 {
            do {
                var request = try request("v1/qwen-vl", body: body)
                request.timeoutInterval = 10  // the mobile guide's advice
                request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key")
                let (data, response) = try await session.data(for: request)
                let http = response as? HTTPURLResponse
                if let wait = Self.retryDelay(http, attempt: attempt) {
                    try await Task.sleep(nanoseconds: UInt64(wait * 1_000_000_000))
                    continue
                }
                let json = Self.json(data, status: http?.statusCode ?? 0)
                let code = json["code"] as? Int ?? -1
                if code == 0, let text = json["text"] as? String, !text.isEmpty,
                   let requestId = json["request_id"] as? String {
                    return .ok(text: text, requestId: requestId)
                }
                if code == 40009 { return .refused(message: json["hint"] as? String ?? fallbackText, code: code) }
                return .refused(message: fallbackText, code: code)
            } catch {
                return .refused(message: fallbackText, code: -1)  // timeout, offline
            }
        }
        return .refused(message: fallbackText, code: -1)
    }

    /// Streamed answer: onText gets each piece as it arrives (append it to the label, on the main actor).
    func askStreaming(image: String, prompt: String, onText: @escaping @MainActor (String) -> Void) async -> Answer {
        var text = ""
        do {
            var request = try request("v1/qwen-vl", body: ["image": image, "prompt": prompt, "stream": true])
            request.setValue(UUID().uuidString, forHTTPHeaderField: "Idempotency-Key")
            var attempt = 1
            var opened = try await streaming.bytes(for: request)
            while let wait = Self.retryDelay(opened.1 as? HTTPURLResponse, attempt: attempt) {
                opened.0.task.cancel()
                try await Task.sleep(nanoseconds: UInt64(wait * 1_000_000_000))
                attempt += 1
                opened = try await streaming.bytes(for: request)
            }
            let (bytes, response) = opened
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            guard status == 200 else {  // errors before the stream starts are plain JSON answers
                var data = Data()
                for try await byte in bytes { data.append(byte) }
                return .refused(message: fallbackText, code: Self.json(data, status: status)["code"] as? Int ?? -1)
            }
            for try await line in bytes.lines {
                guard line.hasPrefix("data:") else { continue }  // ": keep-alive"
                let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                if payload == "[DONE]" { break }
                guard let event = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]
                else { continue }
                if let code = event["code"] as? Int {
                    if code == 0, let requestId = event["request_id"] as? String {
                        return .ok(text: text, requestId: requestId)
                    }
                    return .refused(message: fallbackText, code: code)
                }
                if let piece = event["text"] as? String {
                    text += piece
                    await onText(piece)
                }
            }
        } catch {}
        return .refused(message: fallbackText, code: -1)  // cut before the final event
    }

    /// The "识别有误?" button.
    func reportWrong(requestId: String, expected: String?) async {
        var body: [String: Any] = ["request_id": requestId, "verdict": "bad"]
        if let expected { body["expected"] = expected }
        guard let request = try? request("v1/feedback", body: body) else { return }
        _ = try? await session.data(for: request)
    }
}
