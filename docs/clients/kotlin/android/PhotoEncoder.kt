package vlgw

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Matrix
import android.util.Base64
import androidx.exifinterface.media.ExifInterface
import java.io.ByteArrayInputStream
import java.io.ByteArrayOutputStream
import kotlin.math.max
import kotlin.math.min
import kotlin.math.roundToInt
import kotlin.math.sqrt

/**
 * A photo as the gateway wants it: upright, long side ≤ 1280 px and ≤ ~1.3 MP, JPEG 85, as a data URI.
 *
 * Android only (android.graphics, androidx.exifinterface), so NOT compiled by the tests: there is
 * no Android SDK on the build machine. The same steps run in the Python and browser examples,
 * whose tests check that an EXIF-rotated photo arrives upright.
 */
object PhotoEncoder {
    fun dataUri(bytes: ByteArray, longSide: Int = 1280, maxPixels: Double = 1_310_720.0): String {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        BitmapFactory.decodeByteArray(bytes, 0, bytes.size, bounds)
        // inSampleSize decodes at 1/2, 1/4 ... so a 12 MP photo never sits in memory in full.
        var sample = 1
        while (max(bounds.outWidth, bounds.outHeight) / (sample * 2) >= longSide) sample *= 2
        val decoded = BitmapFactory.decodeByteArray(bytes, 0, bytes.size,
            BitmapFactory.Options().apply { inSampleSize = sample })
        // Phones store the sensor's pixels plus an EXIF Orientation tag; re-encoding drops the
        // tag, so turn the pixels first or the model sees the photo sideways.
        val degrees = ExifInterface(ByteArrayInputStream(bytes)).rotationDegrees
        val scale = min(1.0, min(longSide.toDouble() / max(decoded.width, decoded.height),
            sqrt(maxPixels / (decoded.width.toDouble() * decoded.height))))
        val matrix = Matrix().apply {
            postScale(scale.toFloat(), scale.toFloat())
            postRotate(degrees.toFloat())
        }
        val upright = Bitmap.createBitmap(decoded, 0, 0, decoded.width, decoded.height, matrix, true)
        val out = ByteArrayOutputStream()
        upright.compress(Bitmap.CompressFormat.JPEG, 85, out)
        return "data:image/jpeg;base64," + Base64.encodeToString(out.toByteArray(), Base64.NO_WRAP)
    }
}
