// Calling the gateway from Node 20+ with fetch: a whole answer, then a streamed one.
//
//   VLGW_URL=http://127.0.0.1:8080 VLGW_KEY=vlgw_... VLGW_IMAGE=photo.jpg node client.mjs
//
// Prints one JSON line per call. The calls themselves live in vlgw.mjs (the same in browsers);
// in a browser, make the data URI with browser.mjs (upright, downscaled) instead of readFile.
import { readFile } from "node:fs/promises";

import { ask, askStreaming } from "./vlgw.mjs";

const { VLGW_URL: url, VLGW_KEY: key, VLGW_IMAGE: path } = process.env;
const image = "data:image/jpeg;base64," + (await readFile(path)).toString("base64");
const answer = await ask(url, key, image, "请描述这张图片的内容");
console.log(JSON.stringify({ mode: "answer", ...answer }));
const streamed = await askStreaming(url, key, image, "请描述这张图片的内容", () => {});
console.log(JSON.stringify({ mode: "stream", ...streamed }));
process.exitCode = answer.code === 0 && streamed.code === 0 ? 0 : 1;
