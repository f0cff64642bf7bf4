/* The inspector's "Replay": an editor filled from the selected request, Send, the answer beside
   it and the request's replay history below (POST /api/bins/<id>/requests/<rid>/replay).

   Left as captured, the method, headers and body are not sent at all, so the server replays
   them byte for byte; only what the person changed goes in the request. Captured data is
   hostile: it reaches the page through input values and textContent only. */
"use strict";

(() => {
  const inspector = Hooklab.inspector;
  if (!inspector) return;
  const { api, el, formatTime, toast } = Hooklab;
  const { root, binId, apiBase } = inspector;
  const $ = (id) => document.getElementById(id);
  const URL_KEY = `hooklab.replay.url.${binId}`;
  // Headers that describe one connection or are computed again: the server never re-sends them.
  const NOT_RESENT = new Set([
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "host", "content-length",
  ]);
  const SIGNATURE_HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature"];

  const section = $("replay");
  const form = $("replay-form");
  const bodyBox = $("replay-body");
  let current = null; // the request in full the editor was filled from
  let initial = null; // {method, headers (JSON text), body} as filled
  let webhooksLoaded = false;
  let editAsJson = false; // the person pressed "Pretty-print JSON": the body is meant as JSON

  /* ---------- filling the editor ---------- */

  function resentHeaders(request) {
    const named = new Set();
    for (const [name, value] of request.headers || []) {
      if (name.toLowerCase() === "connection") {
        for (const part of value.split(",")) named.add(part.trim().toLowerCase());
      }
    }
    return (request.headers || []).filter(([name]) => {
      const lower = name.toLowerCase();
      return !NOT_RESENT.has(lower) && !named.has(lower);
    });
  }

  function headerRow(name, value) {
    const remove = el("button", { type: "button", className: "button small ghost", text: "Remove" });
    const input = (className, label) =>
      el("input", { type: "text", className, "aria-label": label, spellcheck: "false" });
    const row = el(
      "tr",
      {},
      el("td", {}, input("header-name", "Header name")),
      el("td", {}, input("header-value", "Header value")),
      el("td", {}, remove)
    );
    row.querySelector(".header-name").value = name;
    row.querySelector(".header-value").value = value;
    remove.addEventListener("click", () => {
      row.remove();
      markJson(); // the Content-Type may have gone with it
    });
    return row;
  }

  function editedHeaders() {
    const pairs = [];
    for (const row of $("replay-headers").children) {
      const name = row.querySelector(".header-name").value.trim();
      const value = row.querySelector(".header-value").value;
      if (name) pairs.push([name, value]);
    }
    return pairs;
  }

  function carriesSignature(request) {
    const names = new Set((request.headers || []).map(([name]) => name.toLowerCase()));
    return SIGNATURE_HEADERS.every((name) => names.has(name));
  }

  function fill(request) {
    current = request;
    editAsJson = false;
    Hooklab.clearFieldErrors(form);
    $("replay-of").textContent = `of #${request.id}`;
    $("replay-url").value = localStorage.getItem(URL_KEY) || "";
    $("replay-with-path").checked = false;
    $("replay-method").value = request.method;
    $("replay-headers").replaceChildren(
      ...resentHeaders(request).map(([name, value]) => headerRow(name, value))
    );
    const isText = request.body_text !== null && request.body_text !== undefined;
    bodyBox.value = isText ? request.body_text : "";
    // A body the page read only the start of (body_cut) is sent as captured, never cut.
    bodyBox.disabled = !isText || request.truncated || Boolean(request.body_cut);
    const note = $("replay-body-note");
    note.hidden = isText && !request.truncated && !request.body_cut;
    if (request.truncated) {
      note.textContent = "The body was over the size limit when captured and was not kept.";
    } else if (request.body_cut) {
      note.textContent = `The body is large (${request.body_size} bytes): it is sent as captured.`;
      bodyBox.value = "";
    } else {
      note.textContent = `The body is binary (${request.body_size} bytes): it is sent as captured.`;
    }
    initial = {
      method: request.method,
      headers: JSON.stringify(editedHeaders()),
      body: bodyBox.value,
    };
    markJson();
    const signed = carriesSignature(request);
    $("replay-resign-field").hidden = !signed;
    $("replay-resign").value = "";
    $("replay-secret").hidden = true;
    $("replay-secret").value = "";
    $("replay-resign-bin").disabled = !binSecret();
    if (signed) loadWebhooks();
    renderHistory(request.replays || []);
    $("replay-answer").replaceChildren(el("p", { className: "muted", text: "The answer shows here." }));
    $("replay-status").textContent = "";
  }

  function binSecret() {
    const input = $("bin-secret");
    return input ? input.value.trim() : "";
  }

  /** The webhooks' names as "Re-sign with" options; their secrets are fetched one at a time. */
  async function loadWebhooks() {
    if (webhooksLoaded) return;
    webhooksLoaded = true;
    let hooks;
    try {
      hooks = await api("GET", "/api/webhooks");
    } catch (err) {
      return; // the option is just missing
    }
    const items = Array.isArray(hooks) ? hooks : (hooks && hooks.webhooks) || [];
    const select = $("replay-resign");
    for (const hook of items) {
      select.append(
        el("option", { value: `webhook:${hook.id}`, text: `Webhook “${hook.name}”’s secret` })
      );
    }
  }

  /* ---------- the body's JSON mark ---------- */

  /** What the body is sent as, by the Content-Type in the editor: "json", "form" or "other". */
  function bodyKind() {
    if (editAsJson) return "json";
    const header = editedHeaders().find(([name]) => name.toLowerCase() === "content-type");
    const type = header ? header[1].split(";")[0].trim().toLowerCase() : "";
    if (/^[\w.+-]+\/([\w.+-]+\+)?json$/.test(type)) return "json";
    if (type === "application/x-www-form-urlencoded" || type.startsWith("multipart/")) return "form";
    return "other";
  }

  /** "Valid JSON" / "Not valid JSON: …" by the body. Only a body sent as JSON is called not
      valid JSON: a form body is not JSON and is not meant to be. */
  function markJson() {
    const mark = $("replay-json-mark");
    const text = bodyBox.value;
    mark.className = "json-mark";
    mark.textContent = "";
    const kind = bodyKind();
    if (bodyBox.disabled || !text.trim() || kind === "form") return;
    try {
      JSON.parse(text);
      mark.textContent = "Valid JSON";
      mark.classList.add("ok");
    } catch (err) {
      if (kind !== "json") return;
      mark.textContent = `Not valid JSON: ${err.message}`;
      mark.classList.add("bad");
    }
  }

  function prettyPrint() {
    editAsJson = true;
    try {
      bodyBox.value = JSON.stringify(JSON.parse(bodyBox.value), null, 2);
    } catch (err) {
      toast("The body is not valid JSON, so it cannot be pretty-printed", "error");
    }
    markJson();
  }

  /* ---------- sending ---------- */

  async function resignSecret() {
    const choice = $("replay-resign").value;
    if ($("replay-resign-field").hidden || !choice) return null;
    if (choice === "bin") return binSecret();
    if (choice === "paste") return $("replay-secret").value.trim();
    const id = choice.slice("webhook:".length);
    const hook = await api("GET", `/api/webhooks/${encodeURIComponent(id)}`);
    return hook.secret || "";
  }

  async function send(event) {
    event.preventDefault();
    if (!current) return;
    Hooklab.clearFieldErrors(form);
    const request = current;
    const fields = { url: $("replay-url").value.trim() };
    if ($("replay-with-path").checked) fields.with_path = true;
    const method = $("replay-method").value.trim();
    if (method !== initial.method) fields.method = method;
    const headers = editedHeaders();
    if (JSON.stringify(headers) !== initial.headers) fields.headers = headers;
    if (!bodyBox.disabled && bodyBox.value !== initial.body) fields.body = bodyBox.value;
    const button = $("replay-send");
    button.disabled = true;
    $("replay-status").textContent = "Sending…";
    try {
      const secret = await resignSecret();
      if (secret !== null) fields.resign = { secret };
      if (fields.url) localStorage.setItem(URL_KEY, fields.url);
      const answer = await api("POST", `${apiBase}/requests/${request.id}/replay`, fields);
      $("replay-status").textContent = "";
      renderAnswer(answer);
      inspector.forget(request.id);
      // Only its replays are wanted: none of the body (it may be megabytes).
      const full = await api("GET", `${apiBase}/requests/${request.id}?body_limit=0`);
      if (current && current.id === request.id) renderHistory(full.replays || []);
    } catch (err) {
      $("replay-status").textContent = "";
      const field = (err.field || "").startsWith("headers") ? "headers" : err.field;
      Hooklab.showFieldError(form, Object.assign(err, { field }));
    } finally {
      button.disabled = false;
    }
  }

  function statusBadge(code, error) {
    if (code === null || code === undefined) {
      return el("span", { className: "badge bad", text: "No answer" });
    }
    const ok = code >= 200 && code < 300;
    return el("span", { className: `badge ${ok ? "ok" : "bad"}`, text: String(code) });
  }

  function renderAnswer(answer) {
    const box = $("replay-answer");
    box.replaceChildren(
      el(
        "p",
        { className: "answer-line" },
        statusBadge(answer.status_code, answer.error),
        el("span", { className: "muted", text: ` in ${answer.duration_ms} ms` })
      )
    );
    if (answer.error) box.append(el("p", { className: "banner danger", text: answer.error }));
    if (answer.headers && answer.headers.length) {
      const body = el("tbody");
      for (const [name, value] of answer.headers) {
        body.append(el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: value })));
      }
      box.append(
        el("div", { className: "table-wrap" }, el("table", { className: "table pairs" }, body))
      );
    }
    if (answer.body_text !== undefined && answer.body_text !== null && answer.body_text !== "") {
      box.append(el("pre", { className: "code", id: "replay-answer-body", text: answer.body_text }));
    } else if (answer.body_base64) {
      box.append(el("p", { className: "muted", text: "The answer's body is binary." }));
    }
  }

  function renderHistory(replays) {
    const box = $("replay-history");
    if (!replays.length) {
      box.replaceChildren(el("p", { className: "empty", text: "Not replayed yet." }));
      return;
    }
    const body = el("tbody");
    for (const r of replays) {
      const changed = r.edited.length ? r.edited.join(", ") : "nothing";
      body.append(
        el(
          "tr",
          {},
          el("td", { text: formatTime(new Date(r.at)) }),
          el("td", { text: r.method }),
          el("td", { className: "wrap", text: r.url }),
          el("td", {
            text:
              changed +
              (r.resigned ? "; re-signed" : "") +
              (r.sent_from === "cli" ? "; sent by the CLI" : ""),
          }),
          el("td", {}, statusBadge(r.status_code, r.error)),
          el("td", { className: "num", text: `${r.duration_ms} ms` }),
          el("td", { text: r.error || "" })
        )
      );
    }
    const heads = ["When", "Method", "URL", "Changed", "Status", "Time", "Error"];
    box.replaceChildren(
      el(
        "div",
        { className: "table-wrap" },
        el(
          "table",
          { className: "table replay-history" },
          el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col", text: h })))),
          body
        )
      )
    );
  }

  /* ---------- opening and closing ---------- */

  function open(on) {
    section.hidden = !on;
    $("replay-button").setAttribute("aria-expanded", on ? "true" : "false");
    if (on && current) {
      fill(current);
      section.scrollIntoView({ block: "nearest" });
      $("replay-url").focus();
    }
  }

  $("replay-button").addEventListener("click", () => open(section.hidden));
  $("replay-close").addEventListener("click", () => open(false));
  $("replay-add-header").addEventListener("click", () => {
    const row = headerRow("", "");
    $("replay-headers").append(row);
    row.querySelector(".header-name").focus();
  });
  $("replay-pretty").addEventListener("click", prettyPrint);
  $("replay-reset-body").addEventListener("click", () => {
    if (!current || bodyBox.disabled) return;
    bodyBox.value = initial.body;
    markJson();
  });
  bodyBox.addEventListener("input", markJson);
  $("replay-headers").addEventListener("input", markJson); // a Content-Type typed or changed
  $("replay-resign").addEventListener("change", () => {
    const paste = $("replay-resign").value === "paste";
    $("replay-secret").hidden = !paste;
    if (paste) $("replay-secret").focus();
  });
  form.addEventListener("submit", send);
  root.addEventListener("hooklab:selected", (event) => {
    const request = event.detail.request;
    const same = current && current.id === request.id;
    current = request;
    // Another request selected with the editor open: start over from that one.
    if (!section.hidden && !same) fill(request);
  });
  root.addEventListener("hooklab:cleared", () => {
    current = null;
    open(false);
  });
})();
