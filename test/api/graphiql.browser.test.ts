// `npm run dev` in a real browser (Chromium), as developers and web developers use it: GraphiQL loads the schema
// (the docs explorer lists Query's fields) and runs an authenticated query with the header a developer adds;
// a web app on another origin uploads a photo to the embedded S3 and shows it.
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { launchBrowser, uploadFromWebApp } from "../kit/browser.ts";
import { bareEnvironment, type Checkout, copyCheckout, type DevServer, startDev } from "../kit/dev-server.ts";
import { createUser, PASSWORD, type TestUser } from "../kit/helpers.ts";

/** How long the page may take to show something: GraphiQL's editor loads late, more so on a loaded machine. */
const UI = { timeout: 20_000 };

let checkout: Checkout;
let dev: DevServer;
let browser: Browser;
let ana: TestUser;

beforeAll(async () => {
  // Someone to sign in as (a database with people in it is not seeded again).
  ana = await createUser();
  // A checkout's dev server with its embedded S3 (its files in the checkout), on the test file's database (an
  // embedded one is test/dev.test.ts's business), on a free port.
  checkout = copyCheckout("graphiql");
  [dev, browser] = await Promise.all([
    startDev(checkout.dir, bareEnvironment({ DATABASE_URL: process.env.DATABASE_URL as string, PORT: "0" })),
    launchBrowser(),
  ]);
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await dev?.stop();
  checkout?.remove();
});

test("loads the schema: the docs explorer lists Query and its fields", async () => {
  const page = await browser.newPage();
  await page.goto(dev.url);
  await page.getByLabel("Show Documentation Explorer").click();
  const docs = page.locator(".graphiql-doc-explorer");
  await docs.getByText("Query", { exact: true }).click();
  for (const field of ["explore", "feed", "post", "user", "viewer"]) {
    // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator: innerText is the text as shown
    await expect.poll(() => docs.innerText({ timeout: 1000 }), UI).toMatch(new RegExp(`\\b${field}\\b`));
  }
  await page.close();
});

test("runs a query with an Authorization header and shows the result", async () => {
  const logIn = await fetch(dev.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: `mutation ($login: String!, $password: String!) { logIn(input: { login: $login, password: $password }) { ... on LogInSuccess { session { accessToken } } } }`,
      variables: { login: ana.handle, password: PASSWORD },
    }),
  });
  const token = (await logIn.json()).data.logIn.session.accessToken as string;
  const page = await browser.newPage();
  await page.goto(dev.url);
  const queryEditor = page.locator(".graphiql-query-editor").first();
  // The editor's text, as shown (Monaco renders spaces as no-break spaces).
  const text = async () =>
    // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator: innerText is the text as shown
    (await queryEditor.locator(".view-lines").innerText({ timeout: 1000 })).replace(/\u00a0/g, " ");
  // The editor is ready when it shows the welcome query.
  await queryEditor.locator(".view-lines").waitFor({ timeout: UI.timeout });
  await expect.poll(text, UI).toContain("query Explore");
  // As a developer does: the Headers tab, then the query editor (typed, so the editor closes brackets itself).
  await page.getByText("Headers", { exact: true }).click();
  await page.locator(".graphiql-editor-tool .graphiql-editor").last().click();
  await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${token}` }));
  await queryEditor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Backspace");
  await expect.poll(text, UI).not.toContain("Explore");
  await page.keyboard.type("query Me { viewer { user { handle } } }");
  await expect.poll(text, UI).toMatch(/^query Me \{ viewer \{ user \{ handle \} \} \}\s*$/);
  // GraphiQL has read the operation when its tab is named after it.
  await page.locator(".graphiql-tab").getByText("Me", { exact: true }).waitFor({ timeout: UI.timeout });
  await page.getByLabel("Execute query (Ctrl-Enter)").click();
  await expect
    // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator: innerText is the text as shown
    .poll(() => page.locator(".graphiql-response").innerText({ timeout: 1000 }), UI)
    .toMatch(new RegExp(`"handle":\\s*"${ana.handle}"`));
  await page.close();
});

test("a web app on another origin uploads a photo to the embedded S3, posts it and shows it", async () => {
  const { result, crossOrigin } = await uploadFromWebApp(browser, inject("webOrigin"), dev.url, ana.handle, PASSWORD);
  expect(result, JSON.stringify(result)).toMatchObject({ ok: true, displayed: { width: 64, height: 48 } });
  const s3 = dev.output
    .map((line) => /object storage: embedded \(s3rver, .*, (http:\S+)\)/.exec(line)?.[1])
    .find(Boolean);
  expect(crossOrigin).toContain(`PUT ${new URL(s3 as string).host}`);
});
