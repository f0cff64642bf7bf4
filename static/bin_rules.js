/* Bins that act, in the inspector: the rules editor (presets one click each), the forwarding
   target, the answered-by badge of each request, and the "Response" tab of a forwarded one.

   Loaded before inspector.js, which calls Hooklab.binRules.* at its few hook points. Captured
   data (and the app's answer) is hostile: text only, through Hooklab.el. */
"use strict";

Hooklab.binRules = (() => {
  const { api, el, formatSize, toast } = Hooklab;
  const $ = (id) => document.getElementById(id);

  const PRESETS = {
    fail3: { name: "Fail the first 3", times: 3, status: 503 },
    flaky: { name: "Flaky", percent: 30, status: 500 },
    slow: { name: "Slow", delay_ms: 1000, delay_ms_max: 5000 },
    ratelimited: { name: "Rate limited", status: 429, headers: [["Retry-After", "5"]] },
    gone: { name: "Gone", status: 410 },
    hangup: { name: "Hang up", drop: true },
  };

  let apiBase = "";
  let rules = [];
  let wanted = null; // the rules as the last change asked for, shown until its save answers
  let saving = Promise.resolve(); // the changes' saves, one after the other
  let counts = [];
  let forwarding = false;

  /* ---------- answered-by badge ---------- */

  function statusClass(status) {
    if (status === null || status === undefined) return "bad";
    if (status >= 500) return "bad";
    if (status >= 400) return "warn";
    return "ok";
  }

  /** The badge saying what answered a captured request: "503 · Fail the first 3". */
  function answeredBadge(answeredBy) {
    if (!answeredBy) return null;
    const status = answeredBy.status;
    let label;
    if (answeredBy.name === "forward" && status === null) label = "forwarding…";
    else if (status === null) label = `dropped · ${answeredBy.name}`;
    else label = `${status} · ${answeredBy.name === "default" ? "default" : answeredBy.name}`;
    if (answeredBy.capped) label += " (too many waiting)";
    return el("span", {
      className: `badge answered ${statusClass(status)}`,
      text: label,
      title:
        answeredBy.rule === null || answeredBy.rule === undefined
          ? `Answered by the ${answeredBy.name === "forward" ? "app (forwarded)" : "default response"}`
          : `Answered by rule ${answeredBy.rule + 1}`,
      dataset: { answeredBy: "" },
    });
  }

  /* ---------- the Response tab (forwarded requests) ---------- */

  /** Fill the Response tab with the app's answer; returns whether there is one to show. */
  function renderResponse(request, panel) {
    const forward = request.forward;
    if (!forward) {
      panel.replaceChildren();
      return false;
    }
    const facts = el("dl", { className: "facts" });
    const add = (term, value) => facts.append(el("dt", { text: term }), el("dd", {}, value));
    add("Sent to", el("code", { className: "wrap", text: forward.url || "" }));
    if (forward.error) add("Error", el("span", { className: "badge bad", text: forward.error }));
    else add("Status", el("span", { className: `badge ${statusClass(forward.status_code)}`, text: String(forward.status_code) }));
    if (forward.duration_ms !== null && forward.duration_ms !== undefined) {
      add("Time", `${forward.duration_ms} ms`);
    }
    if (forward.tries) add("Tries", String(forward.tries));
    const parts = [el("p", { className: "muted", text: "What your app answered." }), facts];
    if (!forward.error) {
      const headers = forward.headers || [];
      const body = el("tbody");
      for (const [name, value] of headers) {
        body.append(el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: value })));
      }
      parts.push(
        el("h3", { text: "Headers" }),
        headers.length
          ? el("div", { className: "table-wrap" }, el("table", { className: "table pairs" }, body))
          : el("p", { className: "empty", text: "No headers." }),
        el("h3", { text: `Body${forward.body_size ? ` (${formatSize(forward.body_size)})` : ""}` })
      );
      if (forward.body_text !== undefined && forward.body_text !== null) {
        parts.push(el("pre", { className: "code", id: "forward-body", text: forward.body_text || "(empty)" }));
      } else {
        parts.push(el("p", { className: "muted", text: "Binary body (base64):" }));
        parts.push(el("pre", { className: "code", id: "forward-body", text: forward.body_base64 || "" }));
      }
      if (forward.body_truncated) {
        parts.push(el("p", { className: "muted", text: "Only the start of the body was kept." }));
      }
    }
    panel.replaceChildren(...parts);
    return true;
  }

  /* ---------- the rules editor ---------- */

  function describe(rule) {
    const when = [];
    if (rule.match && rule.match.method) when.push(rule.match.method);
    if (rule.match && rule.match.path) when.push(rule.match.path);
    if (rule.times) when.push(`first ${rule.times}`);
    if (rule.percent !== undefined) when.push(`${rule.percent} %`);
    const what = [];
    if (rule.drop) what.push("hang up");
    else what.push(rule.status ? String(rule.status) : "default status");
    for (const [name, value] of rule.headers || []) what.push(`${name}: ${value}`);
    if (rule.delay_ms_max) what.push(`after ${rule.delay_ms || 0}–${rule.delay_ms_max} ms`);
    else if (rule.delay_ms) what.push(`after ${rule.delay_ms} ms`);
    if (rule.body !== undefined) what.push("custom body");
    return `${when.length ? when.join(", ") + " → " : ""}${what.join(", ")}`;
  }

  function renderRules() {
    const list = $("rules-list");
    list.replaceChildren();
    (wanted || rules).forEach((rule, index) => {
      const spent = rule.times && (counts[index] || 0) >= rule.times;
      const remove = el("button", {
        type: "button",
        className: "button small ghost",
        text: "Remove",
        "aria-label": `Remove rule ${index + 1}`,
      });
      // This rule, not this position: a change still being saved may have moved it.
      remove.addEventListener("click", () => change((current) => current.filter((r) => r !== rule)));
      list.append(
        el(
          "li",
          { className: "rule-row", dataset: { index: String(index) } },
          el("span", { className: "rule-name", text: rule.name || `Rule ${index + 1}` }),
          el("span", { className: "rule-what muted", text: describe(rule) }),
          el("span", {
            className: `badge ${spent ? "" : "ok"} rule-count`,
            text: `answered ${counts[index] || 0}${spent ? " (spent)" : ""}`,
          }),
          remove
        )
      );
    });
    $("rules-empty").hidden = rules.length > 0;
    $("rules-text").value = JSON.stringify(rules, null, 2);
  }

  /**
   * Show a bin's saved rules and forward. `parts` says which forms to refill: saving the rules
   * must not wipe a forward URL being typed, nor the other way round.
   */
  function showBin(bin, parts = { rules: true, forward: true }) {
    if (parts.rules) {
      rules = bin.rules || [];
      counts = bin.rule_counts || [];
      renderRules();
    }
    const forward = bin.forward;
    forwarding = Boolean(forward);
    $("forward-stop").hidden = !forward;
    if (parts.forward) {
      $("forward-url").value = forward ? forward.url : "";
      $("forward-mode").value = forward ? forward.mode : "sync";
    }
  }

  /** The rules were saved: show them, and no error of an earlier attempt is left standing. */
  function rulesSaved(bin, message) {
    showBin(bin, { rules: true });
    showError(null);
    Hooklab.clearFieldErrors($("rules-form"));
    toast(message, "ok");
  }

  /** The forward was saved or stopped: the same for its form. */
  function forwardSaved(bin, message) {
    showBin(bin, { forward: true });
    Hooklab.clearFieldErrors($("forward-form"));
    toast(message, "ok");
  }

  function showError(err) {
    const box = $("rules-error");
    box.textContent = err ? err.message : "";
    box.hidden = !err;
  }

  /** Apply `edit` to the rules shown, show the result at once and save it. Changes made in
      quick succession (two presets clicked before the first save came back) each build on the
      one before and are saved in order: each used to start from the rules last saved, and the
      later save dropped the earlier one's rule. */
  function change(edit) {
    const newRules = edit(wanted || rules);
    wanted = newRules;
    renderRules();
    saving = saving.then(async () => {
      showError(null);
      try {
        const bin = await api("PATCH", apiBase, { rules: newRules });
        if (wanted === newRules) wanted = null; // the last change: show the server's answer
        rulesSaved(bin, "Rules saved");
      } catch (err) {
        wanted = null; // back to what the server holds, with the error beside it
        renderRules();
        showError(err);
      }
    });
  }

  /** Show a newer answered-by on a request's row (a sync forward that has finished). */
  function updateRow(request) {
    const badge = document.querySelector(`#request-row-${request.id} [data-answered-by]`);
    const fresh = answeredBadge(request.answered_by);
    if (badge && fresh) badge.replaceWith(fresh);
  }

  /** Re-read a request in flight to the app until its answer is known, then update its row. */
  function followForward(id, tries) {
    setTimeout(async () => {
      try {
        const request = await api("GET", `${apiBase}/requests/${id}`);
        if (settled(request) || tries <= 1) updateRow(request);
        else followForward(id, tries - 1);
      } catch (err) {
        // Evicted or cleared meanwhile: nothing to update.
      }
    }, 500);
  }

  /** A captured request arrived live: count it for the rule that answered. */
  function counted(answeredBy, id) {
    if (answeredBy && answeredBy.name === "forward" && answeredBy.status === null) {
      followForward(id, 120);
    }
    if (!answeredBy || answeredBy.rule === null || answeredBy.rule === undefined) return;
    if (answeredBy.rule >= rules.length) return;
    counts[answeredBy.rule] = (counts[answeredBy.rule] || 0) + 1;
    renderRules();
  }

  function bindRules() {
    for (const button of document.querySelectorAll("[data-preset]")) {
      button.addEventListener("click", () => {
        const preset = PRESETS[button.dataset.preset];
        if (preset) change((current) => [...current, structuredClone(preset)]);
      });
    }
    $("rules-clear").addEventListener("click", () => change(() => []));
    $("rules-reset").addEventListener("click", async () => {
      try {
        rulesSaved(await api("POST", `${apiBase}/rules/reset`), "Counts reset");
      } catch (err) {
        showError(err);
      }
    });
    const form = $("rules-form");
    const toggle = $("rules-json-toggle");
    toggle.addEventListener("click", () => {
      form.hidden = !form.hidden;
      toggle.setAttribute("aria-expanded", form.hidden ? "false" : "true");
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      Hooklab.clearFieldErrors(form);
      let parsed;
      try {
        parsed = JSON.parse($("rules-text").value || "[]");
      } catch (err) {
        Hooklab.showFieldError(form, new Hooklab.ApiError(422, "invalid", `Not JSON: ${err.message}`, ""));
        return;
      }
      if (overflows(parsed)) {
        // JSON.parse reads 1e999 as Infinity, which JSON.stringify would send as null:
        // "no limit" for `times`. The API refuses such a number; so does this form.
        const message = "A number is too large (JSON reads it as infinity): nothing was saved.";
        Hooklab.showFieldError(form, new Hooklab.ApiError(422, "invalid", message, ""));
        return;
      }
      try {
        rulesSaved(await api("PATCH", apiBase, { rules: parsed }), "Rules saved");
      } catch (err) {
        Hooklab.showFieldError(form, new Hooklab.ApiError(err.status, err.code, err.message, ""));
      }
    });
  }

  /** Whether a parsed JSON value holds a number too large for a double (read as Infinity). */
  function overflows(value) {
    if (typeof value === "number") return !Number.isFinite(value);
    if (value !== null && typeof value === "object") return Object.values(value).some(overflows);
    return false;
  }

  function bindForward() {
    const form = $("forward-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      Hooklab.clearFieldErrors(form);
      const url = $("forward-url").value.trim();
      const change = url ? { url, mode: $("forward-mode").value } : null;
      try {
        forwardSaved(
          await api("PATCH", apiBase, { forward: change }),
          change ? "Forwarding saved" : "Forwarding stopped"
        );
      } catch (err) {
        // The URL's own slot for forward.url (named by its label there), else the form's.
        Hooklab.showFieldError(form, err);
      }
    });
    $("forward-stop").addEventListener("click", async () => {
      try {
        forwardSaved(await api("PATCH", apiBase, { forward: null }), "Forwarding stopped");
      } catch (err) {
        toast(err.message, "error");
      }
    });
  }

  /** Set up the editor for the bin at `base` (its API URL). */
  async function start(base) {
    apiBase = base;
    if (!$("rules-editor")) return;
    bindRules();
    bindForward();
    try {
      showBin(await api("GET", apiBase));
    } catch (err) {
      showError(err);
    }
  }

  /** Whether a captured request is final (worth caching): not waiting for the app's answer. */
  function settled(request) {
    const by = request.answered_by;
    if (by && by.name === "forward" && by.status === null) return false; // sync, in flight
    // Async: the app's answer is recorded a moment after the bin's own.
    return !(forwarding && !request.forward && by && (by.rule === null || by.rule === undefined));
  }

  return { start, answeredBadge, renderResponse, counted, settled, updateRow };
})();
