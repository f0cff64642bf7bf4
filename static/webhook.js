/* One webhook's page: the secret (hidden until shown), Rotate, Send Test Event with its
   confirmation, Probe the receiver with its report card, and the delivery log (each delivery expands into its attempts; redeliver).
   Payloads and responses are hostile text: textContent only, never innerHTML. */
"use strict";

(() => {
  const { api, el, setText, toast, copyText, flash, confirmDialog, formatTime, refreshTimes } =
    Hooklab;
  const root = document.querySelector(".webhook-page");
  if (!root) return;
  const webhookId = root.dataset.webhookId;
  const base = `/api/webhooks/${encodeURIComponent(webhookId)}`;
  const PAGE = 25;
  const FAST_POLL_MS = 2000;
  const SLOW_POLL_MS = 10000;

  // ---- the secret ------------------------------------------------------------------------

  const secretValue = document.getElementById("secret-value");
  const secretToggle = document.getElementById("secret-toggle");
  const secretError = document.getElementById("secret-error");
  let secret = null;

  const MASK = "whsec_••••••••••••••••••••••••••••••••";
  const previousBlock = document.getElementById("previous-block");
  const previousValue = document.getElementById("previous-secret-value");
  let previousSecret = null;

  /** The secret as it is now, read each time it is shown or copied: another tab or the CLI
      may have rotated it since the page loaded. */
  async function loadSecret() {
    const webhook = await api("GET", base);
    secret = webhook.secret;
    showPrevious(webhook);
    return secret;
  }

  /** The log's refresh brings the webhook: a secret shown on the page follows its changes. */
  function followSecret(webhook) {
    if (secret === null || webhook.secret === secret) return;
    secret = webhook.secret;
    showPrevious(webhook);
    showSecret(secretValue.dataset.hidden === "false");
  }

  function showSecret(visible) {
    secretValue.dataset.hidden = visible ? "false" : "true";
    secretValue.textContent = visible ? secret : MASK;
    previousValue.dataset.hidden = visible ? "false" : "true";
    previousValue.textContent = visible && previousSecret ? previousSecret : MASK;
    secretToggle.textContent = visible ? "Hide" : "Show";
  }

  /** The previous secret's block: shown while it still signs, with when it stops. */
  function showPrevious(webhook) {
    previousSecret = webhook.previous_secret || null;
    previousBlock.hidden = !webhook.previous_secret_expires_at;
    const expires = document.getElementById("previous-expires");
    if (webhook.previous_secret_expires_at) {
      expires.setAttribute("datetime", webhook.previous_secret_expires_at);
      expires.textContent = formatTime(new Date(webhook.previous_secret_expires_at));
    }
    const publicKey = document.getElementById("public-key");
    publicKey.textContent = webhook.public_key || "";
    document.getElementById("public-key-block").hidden = !webhook.public_key;
    document.getElementById("previous-public-key").textContent = webhook.previous_public_key || "";
    document.getElementById("previous-public-key-line").hidden = !webhook.previous_public_key;
  }

  function graceText(seconds) {
    if (seconds >= 3600) return `${+(seconds / 3600).toFixed(1)} h`;
    if (seconds >= 60) return `${+(seconds / 60).toFixed(1)} min`;
    return `${+seconds.toFixed(1)} s`;
  }

  {
    // The server writes the expiry as ISO; show it in the reader's own time.
    const expires = document.getElementById("previous-expires");
    const when = new Date(expires.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) expires.textContent = formatTime(when);
  }

  function secretFailed(err) {
    secretError.textContent = err.message;
    secretError.hidden = false;
  }

  secretToggle.addEventListener("click", async () => {
    secretError.hidden = true;
    try {
      const show = secretValue.dataset.hidden === "true";
      if (show) await loadSecret();
      showSecret(show);
    } catch (err) {
      secretFailed(err);
    }
  });

  document.getElementById("secret-copy").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    try {
      const ok = await copyText(await loadSecret());
      if (secretValue.dataset.hidden === "false") showSecret(true); // what is shown, is copied
      toast(ok ? "Secret copied" : "Copying failed: show the secret and copy it",
            ok ? "ok" : "error");
      if (ok) flash(button, "Copied");
    } catch (err) {
      secretFailed(err);
    }
  });

  const rotateButton = document.getElementById("secret-rotate");
  rotateButton.addEventListener("click", async () => {
    const grace = graceText(Number(rotateButton.dataset.graceS));
    const yes = await confirmDialog(
      "Rotate the secret?",
      `A new secret signs deliveries from now on. The current one keeps signing them too for ` +
        `${grace}, so receivers can switch over; after that only the new one does.`,
      "Rotate"
    );
    if (!yes) return;
    secretError.hidden = true;
    try {
      const rotated = await api("POST", `${base}/rotate`);
      secret = rotated.secret;
      showPrevious(rotated.webhook);
      showSecret(true);
      toast(`Secret rotated; the previous one still signs for ${grace}`, "ok");
    } catch (err) {
      secretFailed(err);
    }
  });

  document.getElementById("secret-regenerate").addEventListener("click", async () => {
    const yes = await confirmDialog(
      "Regenerate the secret?",
      "Receivers that check signatures with the old secret will reject deliveries until " +
        "they get the new one.",
      "Regenerate"
    );
    if (!yes) return;
    try {
      const regenerated = await api("POST", `${base}/regenerate-secret`);
      secret = regenerated.secret;
      showPrevious(regenerated);
      showSecret(true);
      toast("New secret made; the old one no longer signs anything", "ok");
    } catch (err) {
      secretFailed(err);
    }
  });

  // ---- Probe the receiver ---------------------------------------------------------------

  const probeButton = document.getElementById("probe-run");
  const probeSummary = document.getElementById("probe-summary");

  function probeRow(check) {
    const status = check.status_code === null ? "–" : String(check.status_code);
    const what = el("td", {}, el("span", { text: check.expected }));
    if (!check.ok) what.append(el("div", { className: "probe-error", text: `Got: ${check.error}` }));
    return el(
      "tr",
      { dataset: { check: check.name, ok: check.ok ? "true" : "false" } },
      el("th", { scope: "row" }, el("code", { text: check.name })),
      el("td", {}, el("span", {
        className: check.ok ? "badge ok" : "badge bad",
        text: check.ok ? "✓ pass" : "✗ fail",
      })),
      el("td", { text: status }),
      el("td", { text: `${check.duration_ms} ms` }),
      what
    );
  }

  function showProbe(report) {
    const failed = report.checks.filter((check) => !check.ok).length;
    probeSummary.dataset.ok = report.ok ? "true" : "false";
    probeSummary.textContent = report.ok
      ? `✓ All ${report.checks.length} checks passed (${report.event} to ${report.url}).`
      : `✗ ${failed} of ${report.checks.length} checks failed (${report.event} to ${report.url}).`;
    probeSummary.hidden = false;
    document.getElementById("probe-checks").replaceChildren(...report.checks.map(probeRow));
    document.getElementById("probe-report").hidden = false;
    document.getElementById("probe-note").hidden = false;
  }

  probeButton.addEventListener("click", async () => {
    probeButton.disabled = true;
    const label = probeButton.textContent;
    probeButton.textContent = "Probing…";
    probeSummary.hidden = false;
    probeSummary.dataset.ok = "";
    probeSummary.textContent = "Sending the checks; a slow receiver takes up to its timeout each.";
    try {
      showProbe(await api("POST", `${base}/probe`));
    } catch (err) {
      probeSummary.dataset.ok = "false";
      probeSummary.textContent = `Could not probe: ${err.message}`;
    } finally {
      probeButton.disabled = false;
      probeButton.textContent = label;
    }
  });

  // ---- delete ------------------------------------------------------------------------------

  const deleteForm = document.getElementById("delete-form");
  deleteForm.addEventListener("submit", async (event) => {
    if (deleteForm.dataset.confirmed) return;
    event.preventDefault();
    const yes = await confirmDialog(
      "Delete this webhook?", "Its settings and its whole delivery log are deleted.", "Delete"
    );
    if (yes) {
      deleteForm.dataset.confirmed = "yes";
      deleteForm.requestSubmit();
    }
  });

  // ---- Send Test Event -----------------------------------------------------------------------

  const testButton = document.getElementById("send-test");
  const testDialog = document.getElementById("test-dialog");

  function headerRows(headers) {
    return headers.map(([name, value]) =>
      el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: value }))
    );
  }

  function showTestResult(result) {
    const outcome = document.getElementById("test-outcome");
    const took = result.duration_ms === null ? "" : ` in ${result.duration_ms} ms`;
    // On a failure the time goes first: "… listening at 127.0.0.1:9 in 1 ms" reads as the address.
    const after = result.duration_ms === null ? "" : ` after ${result.duration_ms} ms`;
    outcome.replaceChildren();
    outcome.dataset.ok = result.ok ? "true" : "false";
    if (result.ok) {
      outcome.append(
        el("span", { className: "badge ok", text: String(result.status_code) }),
        ` Delivered: the receiver answered ${result.status_code}${took}.`
      );
    } else if (result.status_code !== null) {
      outcome.append(
        el("span", { className: "badge bad", text: String(result.status_code) }),
        ` Not delivered${after}: ${result.error}.`
      );
      if (result.status_code === 410 && result.webhook_active === false) {
        outcome.append(" The webhook is now disabled.");
      }
    } else {
      outcome.append(
        el("span", { className: "badge bad", text: result.error_kind || "error" }),
        ` Not delivered${after}: ${result.error}.`
      );
    }
    const details = document.getElementById("test-details");
    details.hidden = result.status_code === null;
    document.getElementById("test-headers").replaceChildren(...headerRows(result.response_headers));
    const body = document.getElementById("test-body");
    body.classList.toggle("empty-body", !result.response_body);
    setText(
      body,
      result.response_body
        ? result.response_body + (result.response_truncated ? "\n… (cut at the size limit)" : "")
        : "(empty body)"
    );
    testDialog.showModal();
  }

  testButton.addEventListener("click", async () => {
    testButton.disabled = true;
    const label = testButton.textContent;
    testButton.textContent = "Sending…";
    try {
      showTestResult(await api("POST", `${base}/test`));
    } catch (err) {
      toast(`The test could not be sent: ${err.message}`, "error");
    } finally {
      testButton.disabled = false;
      testButton.textContent = label;
      // Disabled while sending, the button lost focus to <body>; with no dialog open, give it back.
      if (!testDialog.open && document.activeElement === document.body) testButton.focus();
      loadLog();
    }
  });
  // The dialog gives focus back to what had it when it opened: <body>, as the button was
  // disabled then. Escape or Close leads back to the button instead.
  testDialog.addEventListener("close", () => {
    if (!testButton.disabled) testButton.focus();
  });

  // ---- the delivery log ----------------------------------------------------------------------

  const log = document.getElementById("delivery-log");
  const logEmpty = document.getElementById("log-empty");
  const logStatus = document.getElementById("log-status");
  const moreButton = document.getElementById("log-more");
  const openDeliveries = new Set();
  const openAttempts = new Set();
  const shownDeliveries = new Map(); // delivery id -> {data (its JSON), node}
  let pendingFocus = null; // where focus goes once the log is read again (see focusKey)
  let shown = PAGE;
  let pollTimer = null;
  let deleted = false;

  const STATUS_BADGE = {
    succeeded: "ok", failed: "bad", cancelled: "bad", pending: "warn", sending: "warn",
  };

  function when(iso) {
    if (!iso) return el("span", { className: "muted", text: "—" });
    return el("time", { datetime: iso, "data-ago": "", title: formatTime(new Date(iso)) }, iso);
  }

  function attemptAnswer(attempt) {
    if (attempt.in_progress) return "in progress…";
    if (attempt.status_code !== null) {
      return attempt.ok ? `${attempt.status_code}` : attempt.error || `${attempt.status_code}`;
    }
    return attempt.error || attempt.error_kind || "no answer";
  }

  function pairsTable(headers) {
    if (!headers.length) return el("p", { className: "muted", text: "none" });
    return el(
      "div", { className: "table-wrap" },
      el("table", { className: "table pairs" }, el("tbody", {}, ...headerRows(headers)))
    );
  }

  function renderAttempt(delivery, attempt) {
    const key = `${delivery.id}:${attempt.number}`;
    const badge = attempt.in_progress ? "warn" : attempt.ok ? "ok" : "bad";
    const summary = el(
      "summary", {},
      el("span", { className: "attempt-number", text: `Attempt ${attempt.number}` }),
      el("span", { className: `trigger trigger-${attempt.trigger}`, text: attempt.trigger }),
      el("span", { className: `badge ${badge}`, text: attemptAnswer(attempt) }),
      attempt.duration_ms === null ? null
        : el("span", { className: "muted", text: `${attempt.duration_ms} ms` }),
      when(attempt.started_at)
    );
    const body = el(
      "div", { className: "attempt-body" },
      el("p", {}, el("strong", { text: "POST " }), el("code", { className: "wrap", text: attempt.request.url })),
      attempt.error ? el("p", { className: "attempt-error", text: attempt.error }) : null,
      attempt.retry_after_s !== null
        ? el("p", { className: "muted", text: `Retry-After: ${attempt.retry_after_s} s` }) : null,
      el("h4", { text: "Request headers" }),
      pairsTable(attempt.request.headers),
      el("h4", { text: "Response headers" }),
      pairsTable(attempt.response.headers),
      el("h4", { text: "Response body" }),
      el("pre", {
        className: "code response-body",
        text: attempt.response.body
          ? attempt.response.body + (attempt.response.truncated ? "\n… (cut at the size limit)" : "")
          : "(empty body)",
      })
    );
    const details = el("details", { className: "attempt", dataset: { key } }, summary, body);
    details.open = openAttempts.has(key);
    details.addEventListener("toggle", () => {
      if (details.open) openAttempts.add(key); else openAttempts.delete(key);
    });
    return el("li", {}, details);
  }

  function renderDelivery(delivery) {
    const last = delivery.attempts[delivery.attempts.length - 1];
    const summary = el(
      "summary", {},
      el("span", { className: `badge ${STATUS_BADGE[delivery.status] || "warn"}`, text: delivery.status }),
      el("span", { className: "delivery-event", text: delivery.event_name }),
      delivery.test ? el("span", { className: "tag", text: "test" }) : null,
      el("span", { className: "muted", text: `#${delivery.id}` }),
      el("span", { className: "muted",
        text: `${delivery.attempt_count} attempt${delivery.attempt_count === 1 ? "" : "s"}` }),
      last ? el("span", { className: "delivery-answer", text: attemptAnswer(last) }) : null,
      when(delivery.created_at)
    );
    const redeliver = el("button", { type: "button", className: "button small", text: "Redeliver" });
    redeliver.addEventListener("click", () => redeliverNow(delivery, redeliver));
    const facts = el(
      "p", { className: "delivery-facts" },
      "webhook-id ", el("code", { text: delivery.message_id }),
      delivery.next_attempt_at ? " · next attempt " : null,
      delivery.next_attempt_at ? when(delivery.next_attempt_at) : null
    );
    const body = el(
      "div", { className: "delivery-body" },
      el("div", { className: "delivery-tools" }, facts, redeliver),
      el("h4", { text: "Payload" }),
      el("pre", { className: "code payload", text: JSON.stringify(delivery.payload, null, 2) }),
      el("h4", { text: "Attempts" }),
      delivery.attempts.length
        ? el("ol", { className: "attempts" }, ...delivery.attempts.map((a) => renderAttempt(delivery, a)))
        : el("p", { className: "muted", text: "None yet: the first attempt is on its way." })
    );
    const details = el(
      "details", { className: "delivery", dataset: { deliveryId: String(delivery.id) } }, summary, body
    );
    details.open = openDeliveries.has(delivery.id);
    details.addEventListener("toggle", () => {
      if (details.open) openDeliveries.add(delivery.id); else openDeliveries.delete(delivery.id);
    });
    return details;
  }

  async function redeliverNow(delivery, button) {
    // The log is read again below: focus goes to this delivery's new Redeliver button.
    if (document.activeElement === button) pendingFocus = focusKey(button);
    button.disabled = true;
    button.textContent = "Sending…";
    try {
      const result = await api("POST", `/api/deliveries/${delivery.id}/redeliver`);
      const attempt = result.attempt;
      openDeliveries.add(delivery.id);
      toast(attempt.ok ? `Redelivered: ${attempt.status_code}` : `Redelivery failed: ${attemptAnswer(attempt)}`,
            attempt.ok ? "ok" : "error");
    } catch (err) {
      toast(`Could not redeliver: ${err.message}`, "error");
    } finally {
      loadLog();
    }
  }

  // ---- the webhook's own state, kept current with the log --------------------------------

  const stateBadge = document.getElementById("webhook-state");
  const stateForm = document.getElementById("state-form");
  const stateChange = document.getElementById("state-change");
  const disabledBanner = document.getElementById("disabled-reason");

  function showWebhook(webhook) {
    // Deliveries made since the page loaded (Send Test Event, fired events, retries) count here too.
    document.getElementById("detail-deliveries").textContent = String(webhook.delivery_count);
    document.getElementById("detail-failures").textContent = String(webhook.consecutive_failures);
    const active = webhook.active ? "true" : "false";
    if (root.dataset.active === active) return;
    // Disabled by a 410 or by failures in a row (or switched elsewhere) since the page loaded.
    root.dataset.active = active;
    stateBadge.textContent = webhook.active ? "Active" : "Disabled";
    stateBadge.className = `badge ${webhook.active ? "ok" : "bad"}`;
    stateForm.action = `/webhooks/${encodeURIComponent(webhookId)}/${webhook.active ? "disable" : "enable"}`;
    stateForm.querySelector("button").textContent = webhook.active ? "Disable" : "Enable";
    if (disabledBanner) disabledBanner.hidden = webhook.active;
    stateChange.textContent = webhook.active
      ? "This webhook was enabled again."
      : `${webhook.disabled_reason || "This webhook was disabled."} Fired events do not reach it ` +
        "while it is disabled; test events still do.";
    stateChange.hidden = false;
  }

  function webhookGone() {
    // Deleted in another tab or from the CLI: say so once, instead of an error every 10 s.
    deleted = true;
    stateChange.textContent = "This webhook has been deleted (in another tab or from the CLI).";
    stateChange.hidden = false;
    logStatus.textContent = "";
    testButton.disabled = true;
    moreButton.hidden = true;
  }

  /** Where focus is in the log, in words that outlive its nodes: which delivery, which control. */
  function focusKey(node) {
    const delivery = node && node.closest && node.closest("#delivery-log .delivery");
    if (!delivery) return null;
    const attempt = node.closest(".attempt");
    let control = null;
    if (node.matches(".delivery-tools button")) control = "redeliver";
    else if (node.matches("summary")) control = "summary";
    return { delivery: delivery.dataset.deliveryId, attempt: attempt && attempt.dataset.key, control };
  }

  function restoreFocus(key) {
    const delivery = [...log.children].find((node) => node.dataset.deliveryId === key.delivery);
    if (!delivery) return;
    let target = null;
    if (key.control === "redeliver") {
      target = delivery.querySelector(".delivery-tools button");
    } else if (key.attempt) {
      const attempt = [...delivery.querySelectorAll(".attempt")].find((a) => a.dataset.key === key.attempt);
      target = attempt && attempt.querySelector(":scope > summary");
    }
    target = target || delivery.querySelector(":scope > summary");
    target.focus({ preventScroll: true });
  }

  /** Show the deliveries, rebuilding only those whose data changed: the others keep their
      nodes, so focus and a text selection in them survive the poll. Where a rebuilt delivery
      had focus, its new node gets it back. */
  function showDeliveries(deliveries) {
    const focus = focusKey(document.activeElement) || pendingFocus;
    pendingFocus = null;
    const wanted = deliveries.map((delivery) => {
      const data = JSON.stringify(delivery);
      const known = shownDeliveries.get(delivery.id);
      if (known && known.data === data) return known.node;
      const node = renderDelivery(delivery);
      shownDeliveries.set(delivery.id, { data, node });
      return node;
    });
    const keep = new Set(wanted);
    for (const [id, known] of shownDeliveries) if (!keep.has(known.node)) shownDeliveries.delete(id);
    for (const node of [...log.children]) if (!keep.has(node)) node.remove();
    // New nodes go in at their place; kept ones are not moved (moving a node drops its focus).
    let cursor = log.firstElementChild;
    for (const node of wanted) {
      if (node === cursor) cursor = cursor.nextElementSibling;
      else log.insertBefore(node, cursor);
    }
    // Only where focus was lost with a removed node: never taken from elsewhere on the page.
    const lost = !document.activeElement || document.activeElement === document.body;
    if (focus && lost) restoreFocus(focus);
  }

  async function loadLog() {
    if (deleted) return;
    clearTimeout(pollTimer);
    let deliveries = [];
    try {
      const [list, webhook] = await Promise.all([
        api("GET", `${base}/deliveries?limit=${shown + 1}`),
        api("GET", base),
      ]);
      deliveries = list;
      showWebhook(webhook);
      followSecret(webhook);
      logStatus.textContent = "";
    } catch (err) {
      if (err.status === 404) {
        webhookGone();
        return;
      }
      logStatus.textContent = `Could not load the log: ${err.message}`;
      pollTimer = setTimeout(loadLog, SLOW_POLL_MS);
      return;
    }
    moreButton.hidden = deliveries.length <= shown;
    deliveries = deliveries.slice(0, shown);
    showDeliveries(deliveries);
    logEmpty.hidden = deliveries.length > 0;
    refreshTimes(log);
    const busy = deliveries.some((d) => d.status === "pending" || d.status === "sending");
    if (!document.hidden) pollTimer = setTimeout(loadLog, busy ? FAST_POLL_MS : SLOW_POLL_MS);
  }

  /** Show older deliveries. While more remain, focus stays on the button; once it hides,
      focus goes to the first newly shown delivery instead of falling to <body>. */
  async function showMore() {
    const before = new Set([...log.children].map((node) => node.dataset.deliveryId));
    shown += PAGE;
    await loadLog();
    if (!moreButton.hidden) return;
    const active = document.activeElement;
    if (active && active !== document.body && active !== moreButton) return;
    const rows = [...log.children];
    let lastOld = -1;
    rows.forEach((node, index) => {
      if (before.has(node.dataset.deliveryId)) lastOld = index;
    });
    const target = rows[lastOld + 1] || rows[rows.length - 1];
    if (target) target.querySelector(":scope > summary").focus();
  }

  moreButton.addEventListener("click", showMore);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) loadLog();
  });
  loadLog();
})();
