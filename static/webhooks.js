/* The webhook form: "Create a bin for me" makes a request bin and fills the URL field.
   Used by /webhooks, /webhooks/new and /webhooks/<id>. Text only, never innerHTML. */
"use strict";

(() => {
  const { api, el, toast } = Hooklab;
  const MAX_BIN_NAME = 190;

  async function createBin(button) {
    const form = button.closest("form");
    const url = form.querySelector('input[name="url"]');
    const name = form.querySelector('input[name="name"]');
    const slot = form.querySelector("[data-bin-error]");
    slot.hidden = true;
    button.disabled = true;
    try {
      const label = (name.value.trim() || "Webhook").slice(0, MAX_BIN_NAME);
      const bin = await api("POST", "/api/bins", { name: `${label} bin` });
      url.value = bin.url;
      url.removeAttribute("aria-invalid");
      if (url.getAttribute("aria-describedby") === "url-error") url.removeAttribute("aria-describedby");
      // The URL the last submit was refused for is gone: so is its message.
      form.querySelector("#url-error")?.remove();
      for (const old of form.querySelectorAll(".bin-link")) old.remove();
      const link = el(
        "p", { className: "bin-link hint" },
        "Bin created. ",
        el("a", { href: bin.inspect_url, target: "_blank", rel: "noopener" },
           "Open its inspector in a new tab"),
        " to watch deliveries arrive."
      );
      slot.after(link);
      toast("Bin created and its URL filled in", "ok");
    } catch (err) {
      slot.textContent = `Could not create a bin: ${err.message}`;
      slot.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-create-bin]");
    if (button) createBin(button);
  });

  // One click, one webhook: a form already sent is not sent again (a new page follows).
  document.addEventListener("submit", (event) => {
    const form = event.target.closest(".webhook-form");
    if (!form) return;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    const submit = form.querySelector('button[type="submit"]');
    if (submit) submit.disabled = true;
  });
  // ... and it may be sent again when the browser shows this page from its history (Back).
  window.addEventListener("pageshow", () => {
    for (const form of document.querySelectorAll(".webhook-form")) {
      delete form.dataset.sent;
      const submit = form.querySelector('button[type="submit"]');
      if (submit) submit.disabled = false;
    }
  });
})();
