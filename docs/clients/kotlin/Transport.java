package vlgw;

import java.io.Closeable;
import java.io.IOException;
import java.util.Map;

/** The one HTTP call the client needs; OkHttpTransport is the Android one. */
public interface Transport {
    /** POST a JSON body; the reply must be closed. {@code stream}: no overall time limit. */
    Reply post(String url, Map<String, String> headers, String json, boolean stream) throws IOException;

    /** An HTTP answer: status, headers, and the body read whole or line by line. */
    interface Reply extends Closeable {
        int status();

        String header(String name);

        String text() throws IOException;

        /** The next line of the body without its line break; null at the end. */
        String readLine() throws IOException;
    }
}
