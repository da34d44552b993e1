// A real browser for the tests: Debian's Chromium driven by playwright-core (Playwright's own browser download
// needs the internet). CI installs it (.ci/run); elsewhere the browser test files run when a Chromium is found
// (CHROMIUM_PATH, or /usr/bin/chromium), and the runner says so when not.
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const hasChromium = () => existsSync(CHROMIUM);

/** Headless Chromium with the flags that work as root on these machines, offline (no background networking). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface UploadOutcome {
  /** What the page reported: the photo as the API described it, and as the browser displayed it. */
  result: Record<string, any>;
  /** The requests the page made to other origins (method and host). */
  crossOrigin: string[];
}

/**
 * Opens the web app (test/kit/browser/upload.html, served from `webOrigin`) against a GraphQL endpoint: it signs in,
 * uploads a 64×48 PNG with the presigned PUT, posts it and displays it.
 */
export async function uploadFromWebApp(
  browser: Browser,
  webOrigin: string,
  api: string,
  login: string,
  password: string,
): Promise<UploadOutcome> {
  const page = await browser.newPage();
  const crossOrigin: string[] = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(webOrigin)) crossOrigin.push(`${request.method()} ${new URL(request.url()).host}`);
  });
  await page.goto(`${webOrigin}/upload.html?${new URLSearchParams({ api, login, password })}`);
  await page.waitForFunction(() => (window as { result?: unknown }).result, undefined, { timeout: 20_000 });
  const result = await page.evaluate(() => (window as unknown as { result: Record<string, any> }).result);
  await page.close();
  return { result, crossOrigin };
}
