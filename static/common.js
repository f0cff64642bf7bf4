/* Helpers shared by every page. Captured data is hostile: everything here puts text into
   the page with textContent and createElement, never innerHTML. */
"use strict";

const Hooklab = (() => {
  /** An error answered by /api: {error: {code, message, field?, errors?}}; `errors` lists
      every bad field of a form ([{field, message}, ...]) when there are several. */
  class ApiError extends Error {
    constructor(status, code, message, field, errors) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field || "";
      this.errors = Array.isArray(errors) ? errors : [];
    }
  }

  /** Call the JSON API; resolves to the parsed body (null for an empty one), or throws ApiError. */
  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      throw new ApiError(0, "network", "The server cannot be reached. Is Hooklab still running?");
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        data = null;
      }
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(
        response.status,
        error.code || "http_" + response.status,
        error.message || `The server answered ${response.status}.`,
        error.field,
        error.errors
      );
    }
    return data;
  }

  // Bidirectional controls reorder the text after them: "fdp.exe" after U+202E reads
  // "exe.pdf". In what a captured request, a receiver or a user wrote, each one is shown as a
  // visible mark instead of being applied, so the text reads in the order it was sent.
  // The list of shared/bidi.py. One group: split() keeps each control between the parts.
  const BIDI_CONTROLS = /([\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069])/;

  /** A text as DOM nodes: one text node, or a fragment when it holds bidi controls. */
  function textNodes(value) {
    const text = String(value);
    if (!BIDI_CONTROLS.test(text)) return document.createTextNode(text);
    const fragment = document.createDocumentFragment();
    text.split(BIDI_CONTROLS).forEach((part, index) => {
      if (index % 2 === 0) {
        if (part) fragment.append(part);
        return;
      }
      const code = "U+" + part.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      const mark = document.createElement("span");
      mark.className = "control-char";
      mark.title = `${code}, a bidirectional control character: shown, not applied`;
      mark.textContent = code;
      fragment.append(mark);
    });
    return fragment;
  }

  /** Put a text into a node (replacing what it held), bidi controls shown as marks. */
  function setText(node, value) {
    node.replaceChildren(textNodes(value));
    return node;
  }

  /** Create an element: el("td", {className: "num", text: "3"}, child, ...). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") setText(node, value);
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : textNodes(child));
    }
    return node;
  }

  /** A size in bytes as people read it: 512 B, 1.5 KiB, 2.0 MiB. */
  function formatSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  }

  /** How long ago a time was, in words: "just now", "5 s ago", "3 min ago", "2 h ago". */
  function timeAgo(date, now) {
    const seconds = Math.max(0, Math.round(((now || Date.now()) - date.getTime()) / 1000));
    if (seconds < 5) return "just now";
    if (seconds < 60) return `${seconds} s ago`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `${hours} h ago`;
    return `${Math.floor(hours / 24)} days ago`;
  }

  /** A local, readable date and time with seconds, and its time zone (beside UTC ones). */
  function formatTime(date) {
    return date.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    });
  }

  /** Refresh every <time data-ago datetime="..."> to its "... ago" text. */
  function refreshTimes(root) {
    const now = Date.now();
    for (const node of (root || document).querySelectorAll("time[data-ago]")) {
      const date = new Date(node.getAttribute("datetime"));
      if (Number.isNaN(date.getTime())) continue;
      node.textContent = timeAgo(date, now);
      if (!node.title) node.title = formatTime(date);
    }
  }

  /** Quote a string for a POSIX shell: 'it'\''s' (safe for any text without NUL bytes). */
  function shellQuote(text) {
    return "'" + String(text).replace(/'/g, "'\\''") + "'";
  }

  let toastTimer = null;
  /** Show a short message at the bottom of the page. */
  function toast(message, kind) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.dataset.kind = kind || "info";
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 2500);
  }

  /** Copy text to the clipboard; falls back to a hidden textarea where the API is missing. */
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (err) {
        /* fall through to the old way (headless browsers, denied permission) */
      }
    }
    const area = el("textarea", { className: "offscreen", readonly: "" });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (err) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  /** Buttons with data-copy="text" or data-copy-target="#selector" copy that text. */
  function bindCopyButtons() {
    document.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-copy], [data-copy-target]");
      if (!button) return;
      let text = button.dataset.copy;
      if (text === undefined) {
        const target = document.querySelector(button.dataset.copyTarget);
        text = target ? target.textContent : "";
      }
      const ok = await copyText(text);
      toast(ok ? "Copied to the clipboard" : "Copying failed: select the text and copy it",
            ok ? "ok" : "error");
      if (ok) flash(button, "Copied");
    });
  }

  /** Change a button's label for a moment ("Copied"), then put it back. */
  function flash(button, label) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = label;
    clearTimeout(button._flashTimer);
    button._flashTimer = setTimeout(() => {
      button.textContent = button.dataset.label;
    }, 1500);
  }

  /** Show API errors next to their fields: elements with data-error-for="<field>". Every
      bad field of the answer is shown at once; the first of them on the page takes the focus. */
  function showFieldError(form, error) {
    clearFieldErrors(form);
    const items = error.errors && error.errors.length ? error.errors : [error];
    for (const item of items) {
      if (!placeFieldError(form, item.field || "", item.message || error.message)) {
        toast(item.message || error.message, "error");
      }
    }
    form.querySelector('[aria-invalid="true"]')?.focus();
  }

  /** Put one message in its field's slot (or the form's catch-all slot) and mark the field's
      input; false when the form has no slot for it. */
  function placeFieldError(form, field, text) {
    let slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot) slot = form.querySelector('[data-error-for=""]');
    if (!slot) return false;
    // The API names a field by its path ("response.status must be ..."); next to the field,
    // its label says it better ("Status must be ...").
    let message = text;
    const label = slot.closest(".field, .inline-form")?.querySelector("label");
    // The label's own words, without a hint in it ("Headers (one Name: value per line)").
    const first = label?.firstChild;
    const labelText = (first && first.nodeType === Node.TEXT_NODE ? first.textContent : "").trim();
    const own = slot.dataset.errorFor === field; // not a form's catch-all slot
    if (own && field && labelText && (message.startsWith(`${field} `) || message.startsWith(`${field}:`))) {
      message = labelText + message.slice(field.length);
    }
    // Several messages may land in the catch-all slot: each is kept, one per line.
    slot.textContent = slot.hidden || !slot.textContent ? message : `${slot.textContent}\n${message}`;
    slot.hidden = false;
    const input = slot.closest(".field, .inline-form")?.querySelector("input, textarea, select");
    if (input) input.setAttribute("aria-invalid", "true");
    return true;
  }

  /** Hide every field error of a form. */
  function clearFieldErrors(form) {
    for (const slot of form.querySelectorAll("[data-error-for]")) {
      slot.textContent = "";
      slot.hidden = true;
    }
    for (const input of form.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
    }
  }

  /** Ask a yes/no question in the page's <dialog id="confirm-dialog">; resolves to true on yes. */
  function confirmDialog(title, text, okLabel) {
    const dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.confirm(`${title}\n\n${text}`));
    }
    dialog.querySelector("#confirm-title").textContent = title;
    dialog.querySelector("#confirm-text").textContent = text;
    dialog.querySelector("#confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    // A form the server sent back with errors (422): the first field in error has the focus,
    // as in the forms checked on the page, so a keyboard user lands on what to fix.
    const invalid = document.querySelector('form [aria-invalid="true"]');
    if (invalid) invalid.focus();
    bindCopyButtons();
    refreshTimes();
    setInterval(() => refreshTimes(), 15000);
  });

  return {
    ApiError, api, el, setText, textNodes, formatSize, timeAgo, formatTime, refreshTimes, shellQuote, toast,
    copyText, flash, showFieldError, clearFieldErrors, confirmDialog,
  };
})();
