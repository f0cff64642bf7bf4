/* Home page: "Create a bin" in one click, then straight to its inspector. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("create-bin");
  const error = document.getElementById("create-error");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    error.hidden = true;
    try {
      const bin = await Hooklab.api("POST", "/api/bins", {});
      // Same origin as this page, whatever public_url says the capture URL is.
      window.location.assign(`/bins/${encodeURIComponent(bin.id)}`);
    } catch (err) {
      error.textContent = `Could not create a bin: ${err.message}`;
      error.hidden = false;
      button.disabled = false;
    }
  });
});
