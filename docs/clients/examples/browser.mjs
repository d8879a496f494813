// In a browser: the photo the user picked, upright and downscaled, as a JPEG data URI.
//
//   import { photoDataUri } from "./browser.mjs";
//   const image = await photoDataUri(input.files[0]);   // then ask(url, key, image, prompt)
//
// createImageBitmap applies the photo's EXIF Orientation ("from-image"), so a portrait phone
// photo stays portrait; re-encoding drops the tag, which is why the pixels must be turned first.
// The base64 comes from FileReader: String.fromCharCode(...bytes) throws RangeError on big photos.

export async function photoDataUri(file, { longSide = 1280, maxPixels = 1_310_720, quality = 0.85 } = {}) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(
    1,
    longSide / Math.max(bitmap.width, bitmap.height),
    Math.sqrt(maxPixels / (bitmap.width * bitmap.height)),
  );
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const blob = await canvas.convertToBlob({ type: "image/jpeg", quality });
  return await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result); // "data:image/jpeg;base64,..."
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
