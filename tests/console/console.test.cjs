// The console in headless Chromium (Debian's, through playwright-core), run
// by tests/console.rs against a live `docpipe serve` with a worker behind it.
// Prints one line per check; exits non-zero at the first failure.
"use strict";

const { chromium } = require("playwright-core");
const path = require("node:path");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/console.rs sets it)`);
  return value;
};
const base = env("CONSOLE_URL");
const keys = { acme: env("KEY_ACME"), globex: env("KEY_GLOBEX"), admin: env("KEY_ADMIN") };
const screenshots = env("SCREENSHOTS");

const pageErrors = [];

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}${pageErrors.length ? `; errors on the page: ${pageErrors.join("; ")}` : ""}`);
  console.log(`ok: ${what}`);
}

async function signIn(page, key) {
  await page.click("#forget-key");
  await page.fill("#key", key);
  await page.click("#key-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#who").textContent.startsWith("Key "));
}

async function view(page, name) {
  await page.click(`nav button[data-view="${name}"]`);
  await page.waitForSelector(`section#${name}:not([hidden])`);
}

async function search(page, query) {
  await view(page, "search");
  await page.fill("#query", query);
  await page.click("#search-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#search-timings").textContent !== ""
    || document.querySelector("#message").textContent !== "");
  return page.$$eval("#hits li .hit-meta strong", (nodes) => nodes.map((node) => node.textContent));
}

async function lookUp(page, document) {
  await view(page, "document");
  await page.fill("#document-id", document);
  await page.evaluate(() => { document.querySelector("#document-result").textContent = ""; });
  await page.click("#document-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#document-result").textContent !== "");
  return page.textContent("#document-result");
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(base + "/");
  check((await page.title()) === "docpipe console", "the console is served at /");

  // A tenant key: search, document lookup, its own dead letters only.
  await signIn(page, keys.acme);
  check((await page.textContent("#who")).includes("tenant acme"), "the acme key is recognised as tenant acme");
  const found = await search(page, env("QUERY"));
  check(found[0] === env("EXPECTED_DOCUMENT"), `search finds ${env("EXPECTED_DOCUMENT")} first (got ${found.join(", ")})`);
  check((await page.$$("#hits mark")).length > 0, "query terms are highlighted in the hits");
  check(/generation .* in [0-9.]+ ms \(embed/.test(await page.textContent("#search-timings")), "the search's stage timings are shown");
  await page.screenshot({ path: path.join(screenshots, "search.png"), fullPage: true });

  const lookup = await lookUp(page, env("EXPECTED_DOCUMENT"));
  check(lookup.includes("searchable") && !lookup.includes("not searchable"), "the document lookup says the document is searchable");
  const chunks = await page.$$("#document-result .chunk");
  check(chunks.length > 0, `the lookup lists the document's chunks (${chunks.length})`);
  const ordinals = await page.$$eval("#document-result .chunk .hit-meta", (nodes) => nodes.map((node) => Number(node.textContent.match(/#(\d+)/)[1])));
  check(ordinals.every((ordinal, index) => ordinal === index), "the chunks are in order");
  await page.screenshot({ path: path.join(screenshots, "document.png"), fullPage: true });

  // Nothing of globex, in any view.
  const secret = env("SECRET_WORD");
  const secretHits = await search(page, secret);
  check(!secretHits.includes("secret-plan"), "a search for globex's word finds nothing of globex");
  check(!(await lookUp(page, "secret-plan")).includes("searchable"), "globex's document cannot be looked up with acme's key");
  await view(page, "dead-letters");
  await page.waitForSelector("#letters tbody tr");
  const acmeLetters = await page.textContent("#letters tbody");
  check(acmeLetters.includes("late-notes") && !acmeLetters.includes("globex"), "acme's key lists acme's dead letter and not globex's");
  check((await page.$$("#letters button.replay")).length === 0, "a tenant key has no replay button");
  await view(page, "ingestion");
  await page.waitForFunction(() => document.querySelector("#queues").textContent !== "");
  check((await page.textContent("#queues")).includes("admin key"), "ingestion status asks for an admin key");
  await view(page, "generations");
  await page.waitForFunction(() => document.querySelector("#generation-table tbody").textContent !== "");
  check((await page.textContent("#generation-table tbody")).includes("admin key"), "generations ask for an admin key");
  const forged = await page.evaluate(async () => {
    const response = await fetch("/v1/dead-letters/replay", { method: "POST", headers: { Authorization: `Bearer ${sessionStorage.getItem("docpipe.key")}`, "Content-Type": "application/json" }, body: JSON.stringify({ all: true }) });
    return response.status;
  });
  check(forged === 403, "the API refuses a replay with a tenant key, whatever the page shows");

  // The admin key: ingestion status, generations, dead letters and replay.
  await signIn(page, keys.admin);
  check(await page.evaluate(() => document.body.classList.contains("admin")), "the admin key unlocks the admin views");
  await view(page, "ingestion");
  await page.waitForSelector("#queues table");
  check((await page.textContent("#queues")).includes("workers consuming"), "ingestion shows the queues and the workers");
  await page.waitForFunction(() => document.querySelector("#outcome-totals").textContent.includes("indexed"));
  await page.waitForFunction(() => /worker\(s\)|:\d+/.test(document.querySelector("#in-flight tbody").textContent), null, { timeout: 20_000 });
  check(!(await page.textContent("#in-flight tbody")).includes("No worker"), "ingestion shows the worker and what it handles");
  await page.screenshot({ path: path.join(screenshots, "ingestion.png"), fullPage: true });

  await view(page, "generations");
  await page.waitForSelector("#generation-table td.state-live");
  check((await page.textContent("#generation-table tbody")).includes("live"), "generations list the live one with its counts");
  await page.screenshot({ path: path.join(screenshots, "generations.png"), fullPage: true });

  await view(page, "dead-letters");
  // The table still shows the tenant key's letters until the admin's list
  // arrives: wait for the list, not for any row.
  await page
    .waitForFunction(() => {
      const letters = document.querySelector("#letters tbody")?.textContent ?? "";
      return letters.includes("late-notes") && letters.includes("globex-only-draft");
    }, null, { timeout: 20_000 })
    .catch(() => {});
  const allLetters = await page.textContent("#letters tbody");
  check(allLetters.includes("late-notes") && allLetters.includes("globex-only-draft"), "the admin key lists every tenant's dead letters");
  await page.click("#letters tbody tr:first-child td a");
  await page.waitForSelector("#letter-detail:not([hidden])");
  check((await page.textContent("#letter-detail")).includes("source_not_found"), "a letter's detail shows its history");
  await page.screenshot({ path: path.join(screenshots, "dead-letters.png"), fullPage: true });
  const row = page.locator("#letters tbody tr", { hasText: "late-notes" });
  await row.locator("button.replay").click();
  await page.waitForFunction(() => document.querySelector("#message").textContent.includes("published again"));
  check(!(await page.textContent("#letters tbody")).includes("late-notes"), "the replayed letter leaves the list");

  // The replayed upload becomes searchable; the lookup shows it.
  await signIn(page, keys.acme);
  const deadline = Date.now() + 60_000;
  let shown = "";
  while (Date.now() < deadline) {
    shown = await lookUp(page, "late-notes");
    if (shown.includes("searchable") && !shown.includes("not searchable")) break;
    await page.waitForTimeout(500);
  }
  check(shown.includes("searchable") && !shown.includes("not searchable"), "the replayed document is indexed and searchable");
  check(pageErrors.length === 0, "no script error on the page");
  await browser.close();
}

main().catch((error) => {
  console.log(error.stack ?? String(error));
  process.exit(1);
});
