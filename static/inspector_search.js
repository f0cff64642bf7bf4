/* The inspector's search box: filters the list of captured requests, live rows included.

   The server decides what matches (GET /api/bins/<id>/requests?q=, the same rules as the API
   and `hooklab bin requests --grep`); a new live row is asked about on its own. Each shown row
   says where it matched, the matched words in a <mark>, built from text nodes only: captured
   data is hostile. */
"use strict";

(() => {
  const inspector = Hooklab.inspector;
  if (!inspector) return;
  const { api, el } = Hooklab;
  const { root, apiBase, rows } = inspector;
  const MAX = 1000; // the API's largest page: every match a bin keeps, at the default limit
  const DEBOUNCE_MS = 250;
  const BEFORE_SHOWN = 12; // characters of context shown before a match in a row

  const input = document.getElementById("search-input");
  const status = document.getElementById("search-status");
  const pane = input.closest(".list-pane");
  let q = "";
  let matches = new Map(); // id -> match ({in, before, text, after} or null)
  // Live rows found to match while the current search was on its way: its answer may have
  // been made before they arrived, so they are kept when it replaces `matches`.
  let lateMatches = new Map();
  let token = 0;
  let timer = null;

  /** "in body: …before <mark>text</mark> after…", from text nodes and one <mark>. */
  function matchLine(match) {
    const line = el("span", { className: "row-match" });
    if (!match) {
      line.append(el("span", { className: "muted", text: "matches" }));
      return line;
    }
    // The row is narrow: a little context before the match, so the match itself shows.
    const before = oneLine(match.before);
    line.append(
      el("span", { className: "match-where", text: `${match.in}: ` }),
      document.createTextNode(before.length > BEFORE_SHOWN ? "…" + before.slice(-BEFORE_SHOWN) : before),
      el("mark", { text: oneLine(match.text) }),
      document.createTextNode(oneLine(match.after))
    );
    return line;
  }

  function oneLine(text) {
    return String(text || "").replace(/\s+/g, " ");
  }

  function showRow(id, row) {
    const on = !q || matches.has(id);
    row.hidden = !on;
    const main = row.querySelector(".row-main");
    const old = main.querySelector(".row-match");
    if (old) old.remove();
    if (q && on) main.append(matchLine(matches.get(id)));
  }

  function showAll() {
    for (const [id, row] of rows) showRow(id, row);
    pane.classList.toggle("searching", Boolean(q));
    showCount();
  }

  function showCount() {
    if (!q) {
      status.textContent = "";
      return;
    }
    const n = matches.size;
    status.textContent = n === 0 ? "No match" : `${n} match${n === 1 ? "" : "es"}`;
  }

  async function search(text) {
    const mine = ++token;
    lateMatches = new Map();
    q = text.trim();
    if (!q) {
      matches = new Map();
      showAll();
      return;
    }
    status.textContent = "Searching…";
    let items;
    try {
      const query = new URLSearchParams({ q, limit: String(MAX) });
      items = await api("GET", `${apiBase}/requests?${query}`);
    } catch (err) {
      if (mine === token) status.textContent = `Search failed: ${err.message}`;
      return;
    }
    if (mine !== token) return; // a newer search started meanwhile
    matches = new Map(items.map((item) => [item.id, item.match || null]));
    for (const [id, match] of lateMatches) if (!matches.has(id)) matches.set(id, match);
    inspector.addRequests(items.filter((item) => !rows.has(item.id)));
    showAll();
  }

  /** A row that arrived while searching: hidden until the server says it matches. */
  async function checkRow(request, row) {
    if (!q) return;
    if (matches.has(request.id)) {
      showRow(request.id, row);
      return;
    }
    row.hidden = true;
    const mine = token;
    const query = new URLSearchParams({
      q,
      after: String(request.id - 1),
      before: String(request.id + 1),
      limit: "1",
    });
    let found;
    try {
      found = await api("GET", `${apiBase}/requests?${query}`);
    } catch (err) {
      return;
    }
    if (mine !== token || !found.length) return;
    matches.set(request.id, found[0].match || null);
    lateMatches.set(request.id, found[0].match || null);
    showAll();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(input.value), DEBOUNCE_MS);
  });
  input.form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    search(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && input.value) {
      input.value = "";
      clearTimeout(timer);
      search("");
    }
  });
  root.addEventListener("hooklab:row", (event) => checkRow(event.detail.request, event.detail.row));
  root.addEventListener("hooklab:removed", (event) => {
    lateMatches.delete(event.detail.id);
    if (matches.delete(event.detail.id)) showCount();
  });
  root.addEventListener("hooklab:cleared", () => {
    matches = new Map();
    lateMatches = new Map();
    showAll();
  });
})();
