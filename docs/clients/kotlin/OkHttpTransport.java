package vlgw;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;

/**
 * OkHttp as the transport. Java on purpose: OkHttp keeps its Java API the same from 3.x to 4.x
 * (Kotlin callers get different, Kotlin-only names in 4.x), so this file compiles unchanged
 * against both — the tests compile it against Debian's OkHttp 3.13; an Android app uses 4.12.
 */
public final class OkHttpTransport implements Transport {
    private static final MediaType JSON = MediaType.parse("application/json");
    // The mobile guide's 10 s for a whole answer.
    private final OkHttpClient client;
    // Streaming: no overall limit, but at most 30 s between events (the gateway sends keep-alives).
    private final OkHttpClient streaming;

    public OkHttpTransport() {
        client = new OkHttpClient.Builder()
                .connectTimeout(5, TimeUnit.SECONDS)
                .callTimeout(10, TimeUnit.SECONDS)
                .build();
        streaming = client.newBuilder()
                .callTimeout(0, TimeUnit.SECONDS)
                .readTimeout(30, TimeUnit.SECONDS)
                .build();
    }

    @Override
    public Reply post(String url, Map<String, String> headers, String json, boolean stream) throws IOException {
        Request.Builder request = new Request.Builder().url(url).post(RequestBody.create(JSON, json));
        for (Map.Entry<String, String> header : headers.entrySet()) {
            request.header(header.getKey(), header.getValue());
        }
        Response response = (stream ? streaming : client).newCall(request.build()).execute();
        return new OkReply(response);
    }

    private static final class OkReply implements Reply {
        private final Response response;

        OkReply(Response response) {
            this.response = response;
        }

        @Override
        public int status() {
            return response.code();
        }

        @Override
        public String header(String name) {
            return response.header(name);
        }

        @Override
        public String text() throws IOException {
            return response.body() == null ? "" : response.body().string();
        }

        @Override
        public String readLine() throws IOException {
            BufferedSource source = response.body().source();
            return source.readUtf8Line();
        }

        @Override
        public void close() {
            response.close();
        }
    }
}
