/* The inspector of one bin: the live list of captured requests and the selected one in detail.

   Flow: load the newest requests from the API, remember the highest id, then open the
   websocket with ?after=<that id> so nothing that arrives in between is missed; reconnect
   with backoff when it drops. Captured data is hostile: it only ever reaches the page through
   textContent and createElement (Hooklab.el), never innerHTML. */
"use strict";

(() => {
  const { api, el, setText, textNodes, formatSize, formatTime, refreshTimes, shellQuote, toast } =
    Hooklab;

  const root = document.getElementById("inspector");
  if (!root) return;
  const binId = root.dataset.binId;
  const captureUrl = root.dataset.captureUrl;
  const apiBase = `/api/bins/${encodeURIComponent(binId)}`;
  // Capture URLs are <base>/b/<id>; the base may carry a path prefix (public_url).
  const captureBase = captureUrl.slice(0, captureUrl.length - `/b/${binId}`.length);
  const PAGE = 100;
  const LINK_PAGES = 20; // pages loaded at most to reach a linked request (#request-<id>)
  const FULL_CACHE = 50;
  const HEX_LIMIT = 64 * 1024;
  // A big body is shown in part: a span per JSON token of a 9 MiB body froze the page for
  // seconds. The whole body is one click away (the raw download).
  const TEXT_LIMIT = 256 * 1024; // characters of a text or JSON body shown (Body and Raw tabs)
  const BODY_FETCH_LIMIT = 4 * TEXT_LIMIT; // bytes of a body read: TEXT_LIMIT characters at least
  const COLOUR_LIMIT = 64 * 1024; // JSON up to this many characters is coloured, token by token
  const PRETTY_LIMIT = 1024 * 1024; // re-indented JSON longer than this is shown as sent
  const CURL_BODY_LIMIT = 64 * 1024; // a larger body: the curl command reads the downloaded file
  // The bin keeps its newest max_requests_per_bin requests (the server's setting).
  const MAX_REQUESTS = Number(root.dataset.maxRequests) || Infinity;

  const $ = (id) => document.getElementById(id);
  const list = $("request-list");

  const summaries = new Map(); // id -> summary
  const rows = new Map(); // id -> <li>
  const fullCache = new Map(); // id -> full request (a few, most recent use last)
  let maxId = 0;
  let minId = null;
  let selectedId = null;
  let selectToken = 0;
  let activeTab = "overview";
  let socket = null;
  let retryDelay = 500;
  let busyRefused = false; // the server had no thread to spare for this page
  let retryTimer = null;
  let stopped = false;

  /* ---------- the list ---------- */

  function methodClass(method) {
    const known = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    return "method m-" + (known.includes(method) ? method.toLowerCase() : "other");
  }

  function shownPath(request) {
    const path = request.subpath || "/";
    return request.query_string ? `${path}?${request.query_string}` : path;
  }

  function makeRow(request) {
    const time = el("time", { datetime: request.received_at, dataset: { ago: "" } });
    const row = el(
      "li",
      {
        className: "request-row",
        role: "option",
        id: `request-row-${request.id}`,
        "aria-selected": "false",
        dataset: { id: String(request.id) },
      },
      el("span", { className: methodClass(request.method), text: request.method }),
      el(
        "span",
        { className: "row-main" },
        el("span", { className: "row-path", text: shownPath(request), title: shownPath(request) }),
        el(
          "span",
          { className: "row-meta" },
          el("span", { text: `#${request.id}` }),
          el("span", { text: formatSize(request.body_size || 0) }),
          time,
          Hooklab.binRules.answeredBadge(request.answered_by)
        )
      )
    );
    row.addEventListener("click", () => select(request.id, { focusList: true }));
    return row;
  }

  /** Add a captured request to the list in id order (newest on top); false when known. */
  function addRequest(request, fresh) {
    if (summaries.has(request.id)) return false;
    summaries.set(request.id, request);
    const row = makeRow(request);
    rows.set(request.id, row);
    let before = null;
    for (const existing of list.children) {
      if (Number(existing.dataset.id) < request.id) {
        before = existing;
        break;
      }
    }
    list.insertBefore(row, before);
    refreshTimes(row);
    if (request.id > maxId) maxId = request.id;
    if (minId === null || request.id < minId) minId = request.id;
    announce("row", { request, row, fresh });
    if (fresh) {
      row.classList.add("fresh");
      // animationend does not fire in a background tab; the timer cleans up there.
      const done = () => row.classList.remove("fresh");
      row.addEventListener("animationend", done, { once: true });
      setTimeout(done, 4000);
    }
    return true;
  }

  /** Drop the rows past the bin's limit, the oldest: the bin evicted those requests. */
  function dropEvicted() {
    if (rows.size <= MAX_REQUESTS) return;
    // The list is in id order, newest first: the evicted are at its end.
    while (rows.size > MAX_REQUESTS) {
      const row = list.lastElementChild;
      const id = Number(row.dataset.id);
      row.remove();
      rows.delete(id);
      summaries.delete(id);
      fullCache.delete(id);
      if (list.getAttribute("aria-activedescendant") === row.id) {
        list.removeAttribute("aria-activedescendant");
      }
      if (selectedId === id) showGone(id); // the one being read: say so, not keep showing it
      announce("removed", { id });
    }
    minId = Number(list.lastElementChild.dataset.id);
    // Whatever is older than the rows dropped was evicted before them: nothing older to load.
    $("load-older").hidden = true;
  }

  /** The selected request is no longer kept: its details give way to a note saying so. */
  function showGone(id) {
    selectedId = null;
    ++selectToken; // a read of it still under way is not shown
    $("detail").hidden = true;
    const box = $("detail-error");
    box.textContent = `Request #${id} is no longer kept (evicted as the bin filled up).`;
    box.hidden = false;
    history.replaceState(null, "", location.pathname + location.search);
  }

  function updateCount() {
    const n = rows.size;
    // With older requests not loaded yet, say so: "100 requests" would read as the bin's total.
    const more = !$("load-older").hidden;
    $("request-count").textContent = `${n}${more ? " newest" : ""} request${n === 1 ? "" : "s"}`;
    const empty = n === 0;
    $("empty-bin").hidden = !empty;
    $("list-waiting").hidden = !empty;
    if (empty) {
      $("detail").hidden = true;
      $("pick-one").hidden = true;
      $("detail-error").hidden = true;
    } else if (selectedId === null) {
      $("pick-one").hidden = false;
    }
  }

  function clearList() {
    summaries.clear();
    rows.clear();
    fullCache.clear();
    list.replaceChildren();
    selectedId = null;
    minId = null;
    $("load-older").hidden = true;
    history.replaceState(null, "", location.pathname + location.search);
    updateCount();
    announce("cleared", {});
  }

  async function loadPage(before) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (before) query.set("before", String(before));
    const data = await api("GET", `${apiBase}/requests?${query}`);
    const items = Array.isArray(data) ? data : (data && data.requests) || [];
    for (const request of items) addRequest(request, false);
    $("load-older").hidden = items.length < PAGE;
    updateCount();
    return items;
  }

  async function loadOlder() {
    const button = $("load-older");
    button.disabled = true;
    try {
      await loadPage(minId);
    } catch (err) {
      toast(`Could not load older requests: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  /* ---------- selection ---------- */

  function markSelected(id) {
    for (const [rowId, row] of rows) {
      const on = rowId === id;
      row.setAttribute("aria-selected", on ? "true" : "false");
      row.classList.toggle("selected", on);
    }
  }

  async function select(id, options) {
    if (!rows.has(id)) return;
    selectedId = id;
    markSelected(id);
    const row = rows.get(id);
    row.scrollIntoView({ block: "nearest" });
    if (options && options.focusList) list.focus({ preventScroll: true });
    list.setAttribute("aria-activedescendant", row.id);
    history.replaceState(null, "", `#request-${id}`);
    $("pick-one").hidden = true;
    const token = ++selectToken;
    let full = fullCache.get(id);
    if (!full) {
      try {
        // A big body comes as its start only (body_cut): the page shows no more than that.
        full = await api("GET", `${apiBase}/requests/${id}?body_limit=${BODY_FETCH_LIMIT}`);
      } catch (err) {
        if (token !== selectToken) return;
        $("detail").hidden = true;
        const box = $("detail-error");
        box.textContent =
          err.status === 404
            ? `Request #${id} is no longer kept (cleared, or evicted as the bin filled up).`
            : `Could not load request #${id}: ${err.message}`;
        box.hidden = false;
        return;
      }
      // One still waiting for the app's answer is read again when selected again.
      if (Hooklab.binRules.settled(full)) fullCache.set(id, full);
      Hooklab.binRules.updateRow(full);
      if (fullCache.size > FULL_CACHE) fullCache.delete(fullCache.keys().next().value);
    }
    if (token !== selectToken) return;
    $("detail-error").hidden = true;
    renderDetail(full);
    announce("selected", { request: full });
  }

  function moveSelection(step) {
    // Rows a search hides are skipped.
    const ids = [...list.children].filter((row) => !row.hidden).map((row) => Number(row.dataset.id));
    if (!ids.length) return;
    let index = ids.indexOf(selectedId);
    index = index === -1 ? 0 : Math.min(ids.length - 1, Math.max(0, index + step));
    select(ids[index]);
  }

  /* ---------- the detail ---------- */

  function fullUrl(request) {
    if (request.url) return request.url;
    return captureBase + request.path + (request.query_string ? `?${request.query_string}` : "");
  }

  function headerValue(request, name) {
    const lower = name.toLowerCase();
    const found = (request.headers || []).find(([key]) => key.toLowerCase() === lower);
    return found ? found[1] : null;
  }

  function signatureBadge(signature, withReason) {
    const ok = signature.valid;
    const label = ok ? "Signature valid" : "Signature invalid";
    return el("span", {
      className: `badge ${ok ? "ok" : "bad"}`,
      text: withReason && signature.reason && !ok ? `${label}: ${signature.reason}` : label,
      title: `${signature.scheme || "signature"}${signature.reason ? ": " + signature.reason : ""}`,
    });
  }

  function renderDetail(request) {
    $("detail").hidden = false;
    const method = $("detail-method");
    method.className = methodClass(request.method);
    method.textContent = request.method;
    setText($("detail-path"), shownPath(request));
    const received = new Date(request.received_at);
    const time = $("detail-time");
    time.setAttribute("datetime", request.received_at);
    time.textContent = formatTime(received);
    $("detail-size").textContent = formatSize(request.body_size || 0);
    const sig = $("detail-signature");
    sig.replaceChildren();
    sig.hidden = !request.signature;
    if (request.signature) sig.append(signatureBadge(request.signature, false));

    const curl = curlCommand(request);
    $("copy-curl").dataset.curl = curl;
    $("copy-curl").dataset.bodyFile = curlReadsFile(request) ? bodyFile(request) : "";
    $("download-raw").href = rawHref(request);
    // Nothing to download from an empty body, nor from one over the limit (not kept).
    $("download-raw").hidden = !request.body_size || Boolean(request.truncated);

    const queryPairs = flatten(request.query);
    $("count-headers").textContent = String((request.headers || []).length);
    $("count-query").textContent = queryPairs.length ? String(queryPairs.length) : "";
    $("count-body").textContent = request.body_size ? formatSize(request.body_size) : "";

    renderOverview(request);
    renderCheck(request);
    $("panel-headers").replaceChildren(
      pairsTable(request.headers || [], ["Name", "Value"], "No headers.")
    );
    renderQuery(request, queryPairs);
    renderBody(request);
    renderRaw(request, curl);
    // The Response tab (what the app answered) only for forwarded requests.
    const forwarded = Hooklab.binRules.renderResponse(request, $("panel-response"));
    $("tab-response").hidden = !forwarded;
    if (!forwarded && activeTab === "response") showTab("overview");
  }

  function renderOverview(request) {
    const items = [
      ["Method", el("span", { className: methodClass(request.method), text: request.method })],
      ["URL", el("code", { className: "wrap", text: fullUrl(request) })],
      ["Client address", request.remote_addr || "unknown"],
      [
        "Received",
        el(
          "span",
          {},
          formatTime(new Date(request.received_at)),
          el("span", { className: "muted", text: `  ${request.received_at}` })
        ),
      ],
      [
        "Body size",
        `${formatSize(request.body_size || 0)}` +
          (request.body_size >= 1024 ? ` (${request.body_size} bytes)` : ""),
      ],
      ["Content type", request.content_type || "none"],
      ["HTTP version", request.http_version || "unknown"],
      ["Request id", String(request.id)],
    ];
    if (request.answered_by) {
      items.push(["Answered by", Hooklab.binRules.answeredBadge(request.answered_by)]);
    }
    if (request.signature) {
      const s = request.signature;
      items.push([
        "Signature check",
        el(
          "span",
          {},
          signatureBadge(s, false),
          el("span", { className: "muted", text: `  ${s.reason || ""} (${s.scheme || "signature"})` })
        ),
      ]);
    }
    const dl = el("dl", { className: "facts" });
    for (const [term, value] of items) dl.append(el("dt", { text: term }), el("dd", {}, value));
    const panel = $("panel-overview");
    panel.replaceChildren(dl);
    if (request.truncated) panel.prepend(truncatedNotice(request));
  }

  /* ---------- the payload check (requests that name their event) ---------- */

  const checkCache = new Map(); // request id -> check result, or {error}
  let checkToken = 0;

  async function renderCheck(request) {
    const token = ++checkToken;
    const badge = $("detail-check");
    badge.replaceChildren();
    badge.hidden = true;
    const slug = (headerValue(request, "X-Hooklab-Event") || "").trim();
    if (!slug) return;
    let result = checkCache.get(request.id);
    if (!result) {
      // What the server would refuse is said here, without asking it (each refusal was an
      // error in the browser's console during normal use).
      const why = await uncheckable(request, slug);
      if (why) {
        result = { error: why };
      } else {
        try {
          result = await api("GET", `${apiBase}/requests/${request.id}/check`);
        } catch (err) {
          result = { error: err.message };
        }
      }
      checkCache.set(request.id, result);
      if (checkCache.size > FULL_CACHE) checkCache.delete(checkCache.keys().next().value);
    }
    if (token !== checkToken) return; // shown again, or another request, meanwhile
    badge.append(checkBadge(result));
    badge.hidden = false;
    // First in the Overview: whether the payload is what it claims is what one looks for.
    $("panel-overview").prepend(checkReport(result));
  }

  let catalogSlugs = null; // the catalog's event slugs, read when first needed

  async function catalogHas(slug) {
    for (const fresh of [false, true]) {
      // Read again before saying no: an event may have been added since.
      if (fresh || !catalogSlugs) {
        try {
          catalogSlugs = new Set((await api("GET", "/api/events")).map((event) => event.slug));
        } catch (err) {
          return true; // unknown: let the server say
        }
      }
      if (catalogSlugs.has(slug)) return true;
    }
    return false;
  }

  /** Why a request that names an event cannot be checked against it, or null when it can. */
  async function uncheckable(request, slug) {
    if (request.truncated) return "The body was cut at the body limit, so it cannot be checked.";
    // A body the page read only the start of (body_cut) has no `json` here: the server knows.
    if (!request.body_cut && (request.json === null || request.json === undefined)) {
      return "The body is not JSON, so it cannot be checked against an event.";
    }
    if (!(await catalogHas(slug))) return `No event '${slug}' in the catalog.`;
    return null;
  }

  function checkBadge(result) {
    if (result.error) {
      return el("span", { className: "badge warn", text: "Not checked", title: result.error });
    }
    const count = result.problems.length;
    const text = result.valid
      ? `matches ${result.event.name}`
      : `${count} problem${count === 1 ? "" : "s"}`;
    return el("span", {
      className: `badge check-badge ${result.valid ? "ok" : "bad"}`,
      text,
      title: `Checked against the schema of ${result.event.name} (${result.event.slug})`,
    });
  }

  function checkReport(result) {
    const section = el("section", { className: "check-report", id: "check-report" });
    if (result.error) {
      section.append(el("h3", { text: "Payload check" }), el("p", { className: "muted", text: result.error }));
      return section;
    }
    const where = result.envelope ? " (the envelope's data)" : "";
    const verdict = result.valid
      ? `The body${where} matches the schema of ${result.event.name}.`
      : `The body${where} does not match the schema of ${result.event.name}.`;
    section.append(
      el("h3", {}, "Payload check ", checkBadge(result)),
      el("p", { text: verdict })
    );
    const items = [
      ...result.problems.map((p) => ["problem", p]),
      ...(result.warnings || []).map((w) => ["warning", w]),
    ];
    if (items.length) {
      const listEl = el("ul", { className: "check-problems" });
      for (const [kind, item] of items) {
        listEl.append(
          el(
            "li",
            { className: kind },
            el("code", { className: "check-path", text: item.path || "/" }),
            " ",
            el("span", { text: kind === "warning" ? `warning: ${item.message}` : item.message })
          )
        );
      }
      section.append(listEl);
    }
    return section;
  }

  function flatten(mapping) {
    const pairs = [];
    for (const [name, values] of Object.entries(mapping || {})) {
      for (const value of Array.isArray(values) ? values : [values]) pairs.push([name, value]);
    }
    return pairs;
  }

  function pairsTable(pairs, heads, emptyText) {
    if (!pairs.length) return el("p", { className: "empty", text: emptyText });
    const body = el("tbody");
    for (const [name, value] of pairs) {
      body.append(
        el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: String(value) }))
      );
    }
    return el(
      "div",
      { className: "table-wrap" },
      el(
        "table",
        { className: "table pairs" },
        el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col", text: h })))),
        body
      )
    );
  }

  function renderQuery(request, pairs) {
    const panel = $("panel-query");
    panel.replaceChildren(pairsTable(pairs, ["Name", "Value"], "No query string."));
    if (request.query_string) {
      panel.append(
        el(
          "p",
          { className: "raw-line" },
          el("span", { className: "muted", text: "Raw: " }),
          el("code", { className: "wrap", text: `?${request.query_string}` })
        )
      );
    }
  }

  function truncatedNotice(request) {
    return el("p", {
      className: "banner warn",
      text:
        `Truncated: the body (${formatSize(request.body_size || 0)}) was over the size limit, ` +
        "so it was not kept. The server answered 413.",
    });
  }

  function renderBody(request) {
    const panel = $("panel-body");
    panel.replaceChildren();
    if (request.truncated) panel.append(truncatedNotice(request));
    panel.append(
      el(
        "p",
        { className: "body-meta" },
        el("span", { text: request.content_type || "no content type" }),
        el("span", { text: formatSize(request.body_size || 0) })
      )
    );
    const form = flatten(request.form);
    const files = request.files || [];
    const text = request.body_text;
    if (request.json !== null && request.json !== undefined && text.length <= TEXT_LIMIT) {
      panel.append(el("h3", { text: "JSON" }), prettyJson(text, request.json));
    } else if (request.json !== null && request.json !== undefined) {
      // Too big to re-indent: the start of it as sent.
      panel.append(el("h3", { text: "JSON" }), ...textPart(request, text, "code json"));
    } else if (form.length || files.length) {
      if (form.length) {
        panel.append(el("h3", { text: "Form fields" }), pairsTable(form, ["Field", "Value"], ""));
      }
      if (files.length) panel.append(el("h3", { text: "Files" }), filesTable(request, files));
    } else if (!request.body_size || request.truncated) {
      if (!request.truncated) panel.append(el("p", { className: "empty", text: "No body." }));
    } else if (text !== null && text !== undefined) {
      panel.append(el("h3", { text: "Text" }), ...textPart(request, text, "code"));
    } else {
      panel.append(el("h3", { text: "Binary (hex)" }), hexDump(request));
    }
  }

  function rawHref(request) {
    return `${apiBase}/requests/${request.id}/raw`;
  }

  /** "the first N of M", in bytes exactly where the rounded sizes read the same
      ("256.0 KiB of 256.0 KiB" for 262,144 of 262,150 bytes). */
  function shownOf(shownBytes, totalBytes) {
    const shown = formatSize(shownBytes);
    const total = formatSize(totalBytes);
    if (shown !== total || shownBytes === totalBytes) return `${shown} of ${total}`;
    const exact = (n) => n.toLocaleString("en-US");
    return `${exact(shownBytes)} of ${exact(totalBytes)} bytes`;
  }

  /** "Showing the first N of M — Download the whole body", over a body shown in part. */
  function cutNotice(request, shownBytes) {
    return el(
      "p",
      { className: "banner body-cut" },
      `Showing the first ${shownOf(shownBytes, request.body_size || 0)} — `,
      el("a", { href: rawHref(request), download: "", text: "Download the whole body" })
    );
  }

  /** The first TEXT_LIMIT characters of a text, never half a surrogate pair. */
  function textStart(text) {
    if (text.length <= TEXT_LIMIT) return text;
    const end = /[\ud800-\udbff]/.test(text[TEXT_LIMIT - 1]) ? TEXT_LIMIT - 1 : TEXT_LIMIT;
    return text.slice(0, end);
  }

  /** A text body in a <pre>: whole when short, else its start under a note saying so. */
  function textPart(request, text, className) {
    const shown = textStart(text);
    const pre = el("pre", { className, text: shown });
    if (shown.length === text.length && !request.body_cut) return [pre];
    return [cutNotice(request, new TextEncoder().encode(shown).length), pre];
  }

  function filesTable(request, files) {
    const body = el("tbody");
    files.forEach((file, index) => {
      const href = `${apiBase}/requests/${request.id}/files/${index}`;
      body.append(
        el(
          "tr",
          {},
          el("td", { text: file.field }),
          el("td", { text: file.filename || "(no name)" }),
          el("td", { text: file.content_type || "" }),
          el("td", { className: "num", text: formatSize(file.size || 0) }),
          el("td", {}, el("a", { href, download: file.filename || "", text: "Download" }))
        )
      );
    });
    return el(
      "div",
      { className: "table-wrap" },
      el(
        "table",
        { className: "table files" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["Field", "File name", "Content type", "Size", ""].map((h) =>
              el("th", { scope: "col", text: h })
            )
          )
        ),
        body
      )
    );
  }

  /** Re-indent JSON from its text, keeping numbers and strings exactly as sent: coloured (a
      span per token) up to COLOUR_LIMIT characters, one plain text above. */
  function prettyJson(text, parsed) {
    const pre = el("pre", { className: "code json" });
    const tokens = tokenizeJson(text || "");
    if (!tokens) {
      setText(pre, JSON.stringify(parsed, null, 2));
      return pre;
    }
    const colour = text.length <= COLOUR_LIMIT;
    const indent = (depth) => "\n" + "  ".repeat(depth);
    const pieces = []; // plain text, or [class, token] for a coloured span
    let depth = 0;
    let plain = "";
    let length = 0;
    const add = (value) => {
      plain += value;
      length += value.length;
    };
    const token = (cls, value) => {
      if (!colour) return add(value);
      if (plain) pieces.push(plain);
      plain = "";
      pieces.push([cls, value]);
      length += value.length;
    };
    for (let i = 0; i < tokens.length && length <= PRETTY_LIMIT; i++) {
      const [kind, value] = tokens[i];
      const next = tokens[i + 1];
      if (value === "{" || value === "[") {
        const close = value === "{" ? "}" : "]";
        if (next && next[1] === close) {
          add(value + close);
          i++;
        } else {
          depth++;
          add(value + indent(depth));
        }
      } else if (value === "}" || value === "]") {
        depth--;
        add(indent(depth) + value);
      } else if (value === ",") {
        add("," + indent(depth));
      } else if (value === ":") {
        add(": ");
      } else if (kind === "string") {
        token(next && next[1] === ":" ? "j-key" : "j-str", value);
      } else if (kind === "number") {
        token("j-num", value);
      } else {
        token("j-lit", value);
      }
    }
    if (length > PRETTY_LIMIT) {
      // Nested so deep that its indentation alone would be megabytes: as sent, then.
      setText(pre, text);
      return pre;
    }
    if (plain) pieces.push(plain);
    for (const piece of pieces) {
      pre.append(
        typeof piece === "string" ? textNodes(piece) : el("span", { className: piece[0], text: piece[1] })
      );
    }
    return pre;
  }

  function tokenizeJson(text) {
    const re = /\s*(?:("(?:[^"\\\u0000-\u001f]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false|null)|([{}[\],:]))/y;
    const tokens = [];
    re.lastIndex = text.charCodeAt(0) === 0xfeff ? 1 : 0;
    while (re.lastIndex < text.length) {
      const start = re.lastIndex;
      const match = re.exec(text);
      if (!match) {
        return /^\s*$/.test(text.slice(start)) ? tokens : null;
      }
      if (match[1] !== undefined) tokens.push(["string", match[1]]);
      else if (match[2] !== undefined) tokens.push(["number", match[2]]);
      else if (match[3] !== undefined) tokens.push(["literal", match[3]]);
      else tokens.push(["punct", match[4]]);
    }
    return tokens;
  }

  function decodeBase64(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  /** A classic hex dump: offset, 16 bytes in hex, and the printable ASCII beside them. */
  function hexDump(request) {
    // Only the bytes shown are decoded: 4 base64 characters carry 3 bytes.
    const base64 = (request.body_base64 || "").slice(0, Math.ceil(HEX_LIMIT / 3) * 4);
    const shown = decodeBase64(base64).subarray(0, HEX_LIMIT);
    const lines = [];
    for (let offset = 0; offset < shown.length; offset += 16) {
      const chunk = shown.subarray(offset, offset + 16);
      let hex = "";
      let ascii = "";
      for (let i = 0; i < 16; i++) {
        if (i === 8) hex += " ";
        if (i < chunk.length) {
          hex += chunk[i].toString(16).padStart(2, "0") + " ";
          ascii += chunk[i] >= 0x20 && chunk[i] < 0x7f ? String.fromCharCode(chunk[i]) : ".";
        } else {
          hex += "   ";
        }
      }
      lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex} |${ascii}|`);
    }
    const wrap = el("div", {}, el("pre", { className: "code hex", text: lines.join("\n") }));
    if (request.body_size > shown.length) wrap.prepend(cutNotice(request, shown.length));
    return wrap;
  }

  function renderRaw(request, curl) {
    const panel = $("panel-raw");
    const target = request.path + (request.query_string ? `?${request.query_string}` : "");
    const head = [`${request.method} ${target} ${request.http_version || "HTTP/1.1"}`];
    for (const [name, value] of request.headers || []) head.push(`${name}: ${value}`);
    let text = head.join("\n") + "\n\n";
    let note = null;
    let cut = null;
    if (request.truncated) {
      note = "The body was over the size limit and was not kept.";
    } else if (request.body_size && (request.body_text === null || request.body_text === undefined)) {
      note = `The body is binary (${formatSize(request.body_size)}); see the Body tab for a hex dump.`;
    } else {
      const body = request.body_text || "";
      const shown = textStart(body);
      text += shown;
      if (shown.length < body.length || request.body_cut) {
        cut = cutNotice(request, new TextEncoder().encode(shown).length);
      }
    }
    panel.replaceChildren(el("pre", { className: "code raw", text }));
    if (cut) panel.prepend(cut);
    if (note) panel.append(el("p", { className: "muted", text: note }));
    if (!request.truncated && request.body_size) {
      panel.append(
        el(
          "p",
          { className: "body-meta" },
          el("a", { href: rawHref(request), download: "", text: "Download the body exactly as received" })
        )
      );
    }
    panel.append(
      el("h3", { text: "As curl" }),
      el("pre", { className: "code curl", id: "curl-text", text: curl })
    );
    if (curlReadsFile(request)) {
      panel.append(
        el("p", {
          className: "muted",
          text:
            `The body (${formatSize(request.body_size)}) is too big to paste into a terminal: the ` +
            `command reads it from ${bodyFile(request)}, the file the download link above saves.`,
        })
      );
    }
  }

  /* ---------- copy as curl ---------- */

  // Headers curl sets itself from the URL and the body; repeating them would break the replay.
  const CURL_SKIP = new Set(["host", "content-length", "transfer-encoding", "connection"]);
  // Text that a terminal paste or a shell string would not carry safely goes through base64.
  const UNSAFE_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f]/;

  /** Whether the curl command reads the body from the downloaded file, not from the command. */
  function curlReadsFile(request) {
    return !request.truncated && request.body_size > CURL_BODY_LIMIT;
  }

  /** The name the raw download saves the body under (its Content-Disposition). */
  function bodyFile(request) {
    return `request-${request.id}.bin`;
  }

  /** A shell-quoted curl command that sends the same request again. */
  function curlCommand(request) {
    const first = ["curl"];
    const rest = [];
    const method = request.method;
    const hasBody = !request.truncated && request.body_size > 0;
    let stdin = null;
    if (method === "HEAD") first.push("--head");
    else if (method !== "GET" || hasBody) first.push(`-X ${shellWord(method)}`);
    first.push(shellQuote(fullUrl(request)));
    for (const [name, value] of request.headers || []) {
      if (CURL_SKIP.has(name.toLowerCase())) continue;
      // "Name:" would tell curl to drop the header; "Name;" sends it empty.
      rest.push(`-H ${headerWord(value === "" ? `${name};` : `${name}: ${value}`)}`);
    }
    if (hasBody) {
      if (headerValue(request, "content-type") === null) {
        rest.push(`-H ${shellQuote("Content-Type:")}`); // curl would add a form content type
      }
      const text = request.body_text;
      if (curlReadsFile(request)) {
        rest.push(`--data-binary @${bodyFile(request)}`);
      } else if (text !== null && text !== undefined && !UNSAFE_TEXT.test(text)) {
        rest.push(`--data-raw ${shellQuote(text)}`);
      } else {
        stdin = request.body_base64 || "";
        rest.push("--data-binary @-");
      }
    }
    const command = [first.join(" "), ...rest].join(" \\\n  ");
    return stdin === null ? command : `printf %s ${shellQuote(stdin)} | base64 -d | ${command}`;
  }

  /** A header line for the shell. Its characters are its bytes as received (one each, as the
      API gives them): plain ASCII is quoted as is; anything else goes byte for byte in bash's
      $'…' quoting, since pasted as text a terminal would send "é" as two bytes, not one. */
  function headerWord(line) {
    if (/^[\x20-\x7e]*$/.test(line)) return shellQuote(line);
    let out = "";
    for (const char of line) {
      const code = char.codePointAt(0);
      if (char === "\\" || char === "'") out += "\\" + char;
      else if (code >= 0x20 && code <= 0x7e) out += char;
      else if (code <= 0xff) out += "\\x" + code.toString(16).padStart(2, "0");
      else for (const byte of new TextEncoder().encode(char)) out += "\\x" + byte.toString(16).padStart(2, "0");
    }
    return `$'${out}'`;
  }

  /** A word for the shell: as is when it is plain, quoted otherwise. */
  function shellWord(text) {
    return /^[A-Za-z0-9_.-]+$/.test(text) ? text : shellQuote(text);
  }

  /* ---------- tabs ---------- */

  const TABS = ["overview", "headers", "query", "body", "raw", "response"];

  function showTab(name, focus) {
    activeTab = name;
    for (const tab of TABS) {
      const on = tab === name;
      const button = $(`tab-${tab}`);
      button.setAttribute("aria-selected", on ? "true" : "false");
      button.tabIndex = on ? 0 : -1;
      $(`panel-${tab}`).hidden = !on;
      if (on && focus) button.focus();
    }
  }

  /* ---------- live stream ---------- */

  function setLive(state, text) {
    const box = $("live-status");
    box.dataset.state = state;
    box.textContent = text;
  }

  function binDeleted() {
    stopped = true;
    if (socket) socket.close();
    setLive("off", "Deleted");
    $("deleted-banner").hidden = false;
    for (const id of ["clear-button", "delete-button", "rename-button"]) $(id).disabled = true;
  }

  function handleMessage(message) {
    if (message.type === "request" && message.request) {
      const added = addRequest(message.request, true);
      if (added) {
        Hooklab.binRules.counted(message.request.answered_by, message.request.id);
        dropEvicted();
        updateCount();
        // The newest is shown when nothing is, but not in place of a note that the request
        // being read is gone (the reader would not see that it went).
        if (selectedId === null && $("detail-error").hidden) select(message.request.id);
      }
    } else if (message.type === "cleared") {
      clearList();
    } else if (message.type === "bin_deleted") {
      binDeleted();
    } else if (message.type === "error" && message.error && message.error.code === "bin_not_found") {
      binDeleted();
    } else if (message.type === "error" && message.error && message.error.code === "too_many_waiting") {
      busyRefused = true; // too many connections wait on the server: back off, do not hammer it
    }
  }

  function connect() {
    if (stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws/bins/${encodeURIComponent(binId)}?after=${maxId}`;
    setLive("connecting", "Connecting…");
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.addEventListener("open", () => {
      retryDelay = 500;
      setLive("live", "Live");
    });
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      handleMessage(message);
    });
    ws.addEventListener("close", () => {
      if (socket === ws) socket = null;
      if (busyRefused) {
        busyRefused = false;
        retryDelay = Math.max(retryDelay, 4000);
      }
      if (!stopped) scheduleReconnect();
    });
  }

  async function scheduleReconnect() {
    clearTimeout(retryTimer);
    // A socket refused for good (bin deleted) looks like any drop; ask the API which it is.
    try {
      await api("GET", apiBase);
    } catch (err) {
      if (err.status === 404) {
        binDeleted();
        return;
      }
    }
    const delay = retryDelay;
    retryDelay = Math.min(retryDelay * 2, 15000);
    setLive("offline", `Offline, retrying in ${Math.ceil(delay / 1000)} s`);
    retryTimer = setTimeout(connect, delay);
  }

  /* ---------- bin settings, rename, clear, delete ---------- */

  function bindRename() {
    const title = $("bin-name");
    const form = $("rename-form");
    const input = $("rename-input");
    const open = (on) => {
      form.hidden = !on;
      title.hidden = on;
      $("rename-button").hidden = on;
      if (on) {
        input.focus();
        input.select();
      } else {
        Hooklab.clearFieldErrors(form);
      }
    };
    $("rename-button").addEventListener("click", () => open(true));
    $("rename-cancel").addEventListener("click", () => open(false));
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") open(false);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const bin = await api("PATCH", apiBase, { name: input.value });
        setText(title, bin.name || "Untitled bin");
        title.classList.toggle("untitled", !bin.name);
        input.value = bin.name;
        document.title = `${bin.name || "Untitled bin"} · Hooklab`;
        open(false);
        toast("Renamed", "ok");
      } catch (err) {
        Hooklab.showFieldError(form, err);
      }
    });
  }

  function parseHeaderLines(text) {
    const headers = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (!line) continue;
      const colon = line.indexOf(":");
      if (colon <= 0) {
        throw new Hooklab.ApiError(
          422, "invalid", `Line ${i + 1}: write each header as "Name: value".`, "response.headers"
        );
      }
      headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    }
    return headers;
  }

  function numberOrText(value) {
    const trimmed = value.trim();
    return /^-?\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
  }

  function summarize(bin) {
    const r = bin.response;
    let text = `answers ${r.status}`;
    if (r.delay_ms) text += ` after ${r.delay_ms} ms`;
    text += r.body === null ? " · default JSON body" : " · custom body";
    if (bin.has_secret) text += " · checks signatures";
    return text;
  }

  function bindSettings() {
    const form = $("settings-form");
    const status = $("settings-status");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      Hooklab.clearFieldErrors(form);
      status.textContent = "";
      let change;
      try {
        const body = $("response-body").value;
        const secret = $("bin-secret").value.trim();
        change = {
          response: {
            status: numberOrText($("response-status").value),
            delay_ms: numberOrText($("response-delay").value || "0"),
            headers: parseHeaderLines($("response-headers").value),
            body: body === "" ? null : body,
          },
          secret: secret === "" ? null : secret,
        };
      } catch (err) {
        Hooklab.showFieldError(form, err);
        return;
      }
      try {
        const bin = await api("PATCH", apiBase, change);
        $("settings-summary").textContent = summarize(bin);
        status.textContent = "Saved";
        toast("Response settings saved", "ok");
      } catch (err) {
        Hooklab.showFieldError(form, err);
      }
    });
  }

  function bindDangerButtons() {
    $("clear-button").addEventListener("click", async () => {
      const ok = await Hooklab.confirmDialog(
        "Clear this bin?",
        "Every captured request of this bin is deleted. The bin and its URL stay.",
        "Clear requests"
      );
      if (!ok) return;
      try {
        await api("DELETE", `${apiBase}/requests`);
        clearList();
        toast("Cleared", "ok");
      } catch (err) {
        toast(`Could not clear: ${err.message}`, "error");
      }
    });
    $("delete-button").addEventListener("click", async () => {
      const ok = await Hooklab.confirmDialog(
        "Delete this bin?",
        "The bin, its URL and every request it captured are deleted. This cannot be undone.",
        "Delete bin"
      );
      if (!ok) return;
      try {
        stopped = true;
        await api("DELETE", apiBase);
        window.location.assign("/");
      } catch (err) {
        stopped = false;
        toast(`Could not delete: ${err.message}`, "error");
      }
    });
  }

  /* ---------- keyboard ---------- */

  function bindKeys() {
    document.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      const target = event.target;
      // The tabs only use Left/Right, so Up/Down there still step through the requests: click
      // Body once, then read one request's body after another.
      if (target.closest("input, textarea, select, [contenteditable], dialog")) return;
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      moveSelection(event.key === "ArrowDown" ? 1 : -1);
    });
    $("tab-overview").parentElement.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      const shown = TABS.filter((tab) => !$(`tab-${tab}`).hidden);
      const index = (shown.indexOf(activeTab) + step + shown.length) % shown.length;
      showTab(shown[index], true);
    });
    for (const tab of TABS) $(`tab-${tab}`).addEventListener("click", () => showTab(tab));
  }

  /* ---------- for the search and replay scripts (inspector_search.js, inspector_replay.js) ---------- */

  /** Tell the other inspector scripts: "row" (a row added), "removed" (a row the bin no longer
      keeps), "selected", "cleared". */
  function announce(name, detail) {
    root.dispatchEvent(new CustomEvent(`hooklab:${name}`, { detail }));
  }

  Hooklab.inspector = {
    root,
    binId,
    apiBase,
    rows,
    /** Add summaries (e.g. search results older than the loaded pages) to the list. */
    addRequests(items) {
      for (const request of items) addRequest(request, false);
      dropEvicted();
      updateCount();
    },
    /** Forget the cached copy of a request (it changed: a replay was added). */
    forget(id) {
      fullCache.delete(id);
    },
    selectedId: () => selectedId,
    select: (id) => select(id),
  };

  /* ---------- start ---------- */

  async function start() {
    bindRename();
    bindSettings();
    Hooklab.binRules.start(apiBase);
    bindDangerButtons();
    bindKeys();
    $("load-older").addEventListener("click", loadOlder);
    $("copy-curl").addEventListener("click", async (event) => {
      const button = event.currentTarget;
      const ok = await Hooklab.copyText(button.dataset.curl || "");
      if (ok) {
        Hooklab.flash(button, "Copied");
        const file = button.dataset.bodyFile;
        toast(file ? `curl command copied; it reads the body from ${file}: download it first` : "curl command copied", "ok");
      } else {
        showTab("raw");
        toast("Copying failed: the command is in the Raw tab", "error");
      }
    });
    updateCount();
    try {
      await loadPage(null);
    } catch (err) {
      if (err.status === 404) {
        binDeleted();
        return;
      }
      toast(`Could not load the requests: ${err.message}`, "error");
    }
    connect();
    const wanted = Number((location.hash.match(/^#request-(\d+)$/) || [])[1]);
    if (wanted && !rows.has(wanted)) await reachOlder(wanted);
    if (wanted && rows.has(wanted)) select(wanted);
    else if (wanted) linkedMissing(wanted);
    else if (rows.size) select(Number(list.firstElementChild.dataset.id));
  }

  /** A link to a request older than the first page: older pages are loaded until it is in
      the list, LINK_PAGES at most. */
  async function reachOlder(wanted) {
    for (let pages = 0; pages < LINK_PAGES && !rows.has(wanted); pages++) {
      if ($("load-older").hidden || minId === null || wanted > minId) return;
      try {
        await loadPage(minId);
      } catch (err) {
        return;
      }
    }
  }

  /** The linked request is not in the list: say why, instead of showing another one. */
  function linkedMissing(id) {
    $("detail").hidden = true;
    $("pick-one").hidden = true;
    const box = $("detail-error");
    box.textContent =
      !$("load-older").hidden && minId !== null && id < minId
        ? `Request #${id} is further down the list: press “Load older requests” to reach it.`
        : `Request #${id} is no longer kept (deleted, cleared, or evicted as the bin filled ` +
          "up). Pick another request in the list.";
    box.hidden = false;
  }

  start();
})();
