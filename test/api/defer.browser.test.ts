// The feed in a real browser (Chromium), fetched by urql on its defaults from a page on another origin: where the
// deployment streams, the page draws the posts (captions, photos) from the first part, before the part it deferred
// (counters, first comments) arrives; where it answers once, it draws everything at once. The page is a web app
// bundled for the browser with esbuild, as an app ships it; the document is the mobile app's Feed, as persisted.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "esbuild";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect } from "vitest";
import mobile from "../../clients/mobile/generated/persisted-documents.json" with { type: "json" };
import { launchBrowser } from "../kit/browser.ts";
import { createPost, test } from "../kit/helpers.ts";
import { type Instance, RESPONSES_STREAM, startInstance } from "../kit/instances.ts";
import { mobile as operations } from "../kit/operations.ts";

const FEED = Object.values(mobile).find((document) => /query Feed\b/.test(document)) as string;

/** The web app: asks for the feed with urql and records what the page shows after each result. */
const APP = `
import { Client, fetchExchange } from "@urql/core";
const params = new URLSearchParams(location.search);
const client = new Client({
  url: params.get("api"),
  exchanges: [fetchExchange],
  requestPolicy: "network-only",
  fetchOptions: { headers: { authorization: "Bearer " + params.get("token") } },
});
const list = document.getElementById("feed");
window.shown = [];
client.query(${JSON.stringify(FEED)}, { first: 20 }).subscribe((result) => {
  if (result.error) { window.failed = String(result.error); return; }
  list.replaceChildren(...result.data.feed.edges.map(({ node }) => {
    const item = document.createElement("li");
    const caption = document.createElement("p");
    caption.className = "caption";
    caption.textContent = node.caption;
    item.append(caption);
    for (const photo of node.photos) {
      const image = document.createElement("img");
      image.alt = "photo";
      image.dataset.src = photo.url;
      item.append(image);
    }
    if (node.likeCount !== undefined) {
      const counters = document.createElement("p");
      counters.className = "counters";
      counters.textContent = node.likeCount + " likes, " + node.commentCount + " comments";
      item.append(counters);
    }
    return item;
  }));
  window.shown.push({
    hasNext: result.hasNext,
    captions: [...list.querySelectorAll(".caption")].map((p) => p.textContent),
    photos: list.querySelectorAll("img").length,
    counters: [...list.querySelectorAll(".counters")].map((p) => p.textContent),
  });
});
`;

let browser: Browser;
let instance: Instance;
let web: Server;
let webOrigin: string;

beforeAll(async () => {
  const bundled = await build({
    stdin: { contents: APP, resolveDir: new URL("../..", import.meta.url).pathname, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const script = bundled.outputFiles[0]?.text ?? "";
  web = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(
      `<!doctype html><html lang="en"><body><ul id="feed"></ul><script type="module">${script}</script></body></html>`,
    );
  });
  await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
  webOrigin = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  [browser, instance] = await Promise.all([launchBrowser(), startInstance({ CORS_ORIGINS: webOrigin })]);
});
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => web?.close(resolve));
});

test("the page draws the posts before the part it deferred arrives", async ({ alice, bob }) => {
  await operations.follow(bob, { userId: alice.gid });
  for (const caption of ["first light", "blue hour"]) await createPost(alice, { caption });
  const page = await browser.newPage();
  await page.goto(`${webOrigin}/?${new URLSearchParams({ api: await instance.url(), token: bob.token })}`);
  await page.waitForFunction(
    () => {
      const w = window as unknown as { shown?: { hasNext: boolean }[]; failed?: string };
      return w.failed || w.shown?.some((frame) => !frame.hasNext);
    },
    undefined,
    { timeout: 20_000 },
  );
  const { frames, failed } = await page.evaluate(() => ({
    frames: (
      window as unknown as { shown: { hasNext: boolean; captions: string[]; photos: number; counters: string[] }[] }
    ).shown,
    failed: (window as { failed?: string }).failed,
  }));
  await page.close();
  expect(failed).toBeUndefined();
  const everything = {
    hasNext: false,
    captions: ["blue hour", "first light"],
    photos: 2,
    counters: ["0 likes, 0 comments", "0 likes, 0 comments"],
  };
  if (!RESPONSES_STREAM) {
    expect(frames).toEqual([everything]);
    return;
  }
  // First the posts as they are drawn above the fold, then (once the deferred part arrives) their counters.
  expect(frames[0]).toEqual({ hasNext: true, captions: ["blue hour", "first light"], photos: 2, counters: [] });
  expect(frames.at(-1)).toEqual(everything);
});
