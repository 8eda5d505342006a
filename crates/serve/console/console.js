// docpipe console: plain DOM, no build step. Every request carries the API
// key in the Authorization header (never in a cookie, so another site cannot
// make the browser send it: admin actions are CSRF-safe). The key lives in
// sessionStorage only, for this tab. Text from the server is inserted as
// text nodes, never as HTML.
"use strict";

const KEY_STORAGE = "docpipe.key";
const OUTCOMES = ["document.indexed", "document.unchanged", "document.failed", "document.removed", "document.superseded"];
const COLOURS = { "document.indexed": "#2a9d8f", "document.unchanged": "#8ab17d", "document.failed": "#e63946", "document.removed": "#6c757d", "document.superseded": "#e9c46a" };

const $ = (selector) => document.querySelector(selector);
let principal = null;
let ingestionTimer = null;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Children for replaceChildren: arrays flattened, absent ones dropped. */
function nodes(...children) {
  return children.flat().filter((child) => child !== null && child !== undefined);
}

function say(text, ok = false) {
  const message = $("#message");
  message.textContent = text;
  message.className = ok ? "ok" : "";
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) throw new ApiFailure(401, { error: { message: "enter an API key first" } });
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiFailure(response.status, data);
  return data;
}

async function guarded(action) {
  say("");
  try {
    await action();
  } catch (error) {
    say(error.message);
  }
}

// ---- the key ----

async function useKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
  try {
    principal = await api("GET", "/v1/whoami");
  } catch (error) {
    sessionStorage.removeItem(KEY_STORAGE);
    principal = null;
    $("#who").textContent = error.message;
    return;
  }
  document.body.classList.toggle("admin", principal.role === "admin");
  $("#who").textContent = principal.role === "admin"
    ? `Key "${principal.name}": admin (every tenant; name one to search)`
    : `Key "${principal.name}": tenant ${principal.tenant}`;
  showView(currentView());
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#key");
  useKey(input.value.trim());
  input.value = "";
});
$("#forget-key").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORAGE);
  principal = null;
  document.body.classList.remove("admin");
  $("#who").textContent = "No key.";
});

// ---- views ----

function currentView() {
  return document.querySelector("nav button.active").dataset.view;
}

function showView(view) {
  for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.view === view);
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== view;
  clearInterval(ingestionTimer);
  if (!principal) return;
  if (view === "ingestion") {
    guarded(refreshIngestion);
    ingestionTimer = setInterval(() => guarded(refreshIngestion), 5000);
  }
  if (view === "dead-letters") guarded(refreshLetters);
  if (view === "generations") guarded(refreshGenerations);
}

for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => showView(button.dataset.view));
}

const tenantOf = (input) => (principal?.role === "admin" ? $(input).value.trim() || undefined : undefined);

// ---- search ----

/** The text with every query term wrapped in <mark>. */
function highlighted(text, query) {
  const terms = query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((term) => term.length > 1);
  if (terms.length === 0) return [text];
  const escaped = terms.map((term) => term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})`, "giu");
  return text.split(pattern).map((part, index) => (index % 2 === 1 ? element("mark", {}, part) : part));
}

$("#search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const query = $("#query").value;
    const request = { query, mode: $("#mode").value, top_k: Number($("#top-k").value) };
    const tenant = tenantOf("#search-tenant");
    if (tenant) request.tenant = tenant;
    const result = await api("POST", "/v1/search", request);
    const t = result.timings;
    $("#search-timings").textContent =
      `${result.documents.length} documents from generation ${result.generation} in ${t.total_ms.toFixed(1)} ms ` +
      `(embed ${t.embed_ms.toFixed(1)}${t.embedding_cached ? " cached" : ""}, retrieve ${t.retrieve_ms.toFixed(1)}, group ${t.group_ms.toFixed(1)}, text ${t.text_ms.toFixed(1)})`;
    $("#hits").replaceChildren(...result.documents.map((hit) => element("li", { className: "hit" },
      element("div", { className: "hit-meta" },
        element("strong", {}, hit.document_id), ` · score ${hit.score.toFixed(4)}`,
        hit.chunk.page !== null ? ` · page ${hit.chunk.page}` : "",
        hit.chunk.heading_path.length ? ` · ${hit.chunk.heading_path.join(" › ")}` : "",
        ` · chunk ${hit.chunk.ordinal}`),
      element("div", { className: "hit-text" }, highlighted(hit.chunk.text, query)))));
  });
});

// ---- document lookup ----

$("#document-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const id = $("#document-id").value.trim();
    const parameters = new URLSearchParams({ chunks: "true" });
    const tenant = tenantOf("#document-tenant");
    if (tenant) parameters.set("tenant", tenant);
    const path = `/v1/documents/${id.split("/").map(encodeURIComponent).join("/")}?${parameters}`;
    let status;
    try {
      status = await api("GET", path);
    } catch (error) {
      $("#document-result").replaceChildren(element("p", {}, error.message));
      return;
    }
    const rows = status.generations.map((holding) => element("tr", {},
      element("td", { className: `state-${holding.state}` }, holding.state),
      element("td", {}, holding.generation),
      element("td", {}, Object.entries(holding.chunks).map(([store, count]) => `${store} ${count}`).join(", ")),
      element("td", {}, holding.content_hash.slice(0, 16)),
      element("td", {}, holding.source)));
    const event = status.last_event;
    const letter = status.dead_letter;
    $("#document-result").replaceChildren(...nodes(
      element("h3", {}, `${status.tenant} / ${status.document_id}: ${status.searchable ? "searchable" : "not searchable"}`),
      element("table", {},
        element("thead", {}, element("tr", {}, ["state", "generation", "chunks per store", "content hash", "source"].map((h) => element("th", {}, h)))),
        element("tbody", {}, rows)),
      element("p", {}, "Last event: ", event ? `${event.event}${event.error_code ? ` (${event.error_code}: ${event.reason})` : ""}` : "none seen since the server started"),
      letter ? element("p", {}, `Dead letter ${letter.id}: ${letter.error_code}: ${letter.reason}`) : null,
      element("h3", {}, `Chunks in order (${(status.chunks ?? []).length})`),
      (status.chunks ?? []).map((chunk) => element("div", { className: "chunk" },
        element("div", { className: "hit-meta" }, `#${chunk.ordinal}`,
          chunk.page !== null ? ` · page ${chunk.page}` : "",
          chunk.heading_path.length ? ` · ${chunk.heading_path.join(" › ")}` : ""),
        element("div", { className: "chunk-text" }, chunk.text)))));
  });
});

// ---- ingestion ----

async function refreshIngestion() {
  if (principal?.role !== "admin") {
    $("#queues").replaceChildren(element("p", {}, "Ingestion status needs an admin key."));
    return;
  }
  const activity = await api("GET", "/v1/activity");
  const q = activity.queues;
  $("#queues").replaceChildren(element("table", {},
    element("thead", {}, element("tr", {}, ["uploads waiting", "bulk waiting", "dead letters", "workers consuming"].map((h) => element("th", {}, h)))),
    element("tbody", {}, element("tr", {}, [q.ingest, q.bulk, q.dead, q.workers].map((n) => element("td", {}, n))))));
  const rows = activity.workers.flatMap((worker) => worker.in_flight.map((document) => element("tr", {},
    element("td", {}, worker.worker),
    element("td", {}, `${document.tenant ?? "?"} / ${document.document_id ?? "?"}`),
    element("td", {}, `${((Date.now() - document.since_unix_ms) / 1000).toFixed(0)} s`))));
  const idle = activity.workers.length === 0
    ? "No worker heard from in the last 15 s."
    : `${activity.workers.length} worker(s), none handling a document now.`;
  $("#in-flight tbody").replaceChildren(...(rows.length ? rows : [element("tr", {}, element("td", { colspan: "3" }, idle))]));
  drawThroughput(activity);
}

function drawThroughput(activity) {
  const canvas = $("#throughput");
  const context = canvas.getContext("2d");
  const buckets = activity.buckets;
  const totals = buckets.map((bucket) => OUTCOMES.reduce((sum, outcome) => sum + (bucket.outcomes[outcome] ?? 0), 0));
  const highest = Math.max(1, ...totals);
  const width = canvas.width / buckets.length;
  context.clearRect(0, 0, canvas.width, canvas.height);
  buckets.forEach((bucket, index) => {
    let top = canvas.height;
    for (const outcome of OUTCOMES) {
      const height = ((bucket.outcomes[outcome] ?? 0) / highest) * (canvas.height - 10);
      context.fillStyle = COLOURS[outcome];
      context.fillRect(index * width + 1, top - height, width - 2, height);
      top -= height;
    }
  });
  const sums = Object.fromEntries(OUTCOMES.map((outcome) => [outcome, buckets.reduce((sum, bucket) => sum + (bucket.outcomes[outcome] ?? 0), 0)]));
  $("#outcome-totals").replaceChildren(element("p", {}, OUTCOMES.map((outcome) =>
    element("span", { style: `color:${COLOURS[outcome]}; margin-right:1em` }, `${outcome.replace("document.", "")} ${sums[outcome]}`)),
    element("span", { className: "muted" }, `(peak ${highest} per ${activity.bucket_seconds} s)`)));
}

// ---- dead letters ----

async function refreshLetters() {
  const list = await api("GET", "/v1/dead-letters?limit=200");
  $("#letter-detail").hidden = true;
  $("#letters tbody").replaceChildren(...list.dead_letters.map((letter) => element("tr", {},
    element("td", {}, element("a", { href: "#", onclick: (event) => { event.preventDefault(); guarded(() => showLetter(letter.id)); } }, letter.id.slice(0, 8))),
    element("td", {}, `${letter.tenant ?? "?"} / ${letter.document_id ?? "?"}`),
    element("td", {}, letter.error_code),
    element("td", {}, letter.reason),
    element("td", {}, letter.attempts),
    element("td", {}, principal.role === "admin"
      ? element("button", { type: "button", className: "replay", onclick: () => guarded(() => replay({ ids: [letter.id] })) }, "Replay")
      : ""))));
  if (list.dead_letters.length === 0) say("No dead letters.", true);
}

async function showLetter(id) {
  const detail = await api("GET", `/v1/dead-letters/${encodeURIComponent(id)}`);
  const shown = $("#letter-detail");
  shown.textContent = JSON.stringify(detail, null, 2);
  shown.hidden = false;
}

async function replay(request) {
  const what = request.all ? "every dead letter" : `dead letter ${request.ids[0].slice(0, 8)}`;
  if (!confirm(`Publish ${what} again for indexing?`)) return;
  const result = await api("POST", "/v1/dead-letters/replay", request);
  await refreshLetters();
  say(`${result.replayed.length} dead letter(s) published again.`, true);
}

$("#refresh-letters").addEventListener("click", () => guarded(refreshLetters));
$("#replay-all").addEventListener("click", () => guarded(() => replay({ all: true })));

// ---- generations ----

let liveGeneration = null;

async function refreshGenerations() {
  if (principal?.role !== "admin") {
    $("#generation-table tbody").replaceChildren(element("tr", {}, element("td", { colspan: "6" }, "Generations need an admin key.")));
    return;
  }
  const { generations } = await api("GET", "/v1/generations");
  liveGeneration = generations.find((generation) => generation.state === "live")?.version ?? null;
  const listed = (generation) => generation.tantivy ?? generation.milvus;
  $("#generation-table tbody").replaceChildren(...generations.map((generation) => element("tr", {},
    element("td", { className: `state-${generation.state}` }, generation.state),
    element("td", {}, generation.version),
    element("td", {}, `${generation.max_tokens}/${generation.overlap_tokens} tokens`),
    element("td", {}, generation.model),
    element("td", {}, listed(generation)?.documents ?? "?"),
    element("td", {}, listed(generation)?.chunks ?? "?"))));
  $("#rollback").disabled = !generations.some((generation) => generation.state === "previous");
}

$("#refresh-generations").addEventListener("click", () => guarded(refreshGenerations));
$("#rollback").addEventListener("click", () => guarded(async () => {
  if (!confirm(`Make the previous generation live again instead of ${liveGeneration}? Searches switch at once.`)) return;
  const result = await api("POST", "/v1/generations/rollback", { live: liveGeneration });
  await refreshGenerations();
  say(`Generation ${result.live} is live again.`, true);
}));

// ---- start ----

const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) useKey(saved);
