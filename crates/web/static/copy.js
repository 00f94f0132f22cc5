// "Copy" buttons for a value shown once (a new key's secret) or meant to be handed on
// (an invite link): <button data-copy="ID" hidden> copies the value of the input #ID.
// The button stays hidden without JavaScript; the input is readonly and selectable, so
// copying by hand always works. Same-origin script: no inline script under the CSP.
(function () {
  "use strict";
  function status(id, text) {
    const el = document.querySelector('[data-copy-status="' + id + '"]');
    if (el) el.textContent = text;
  }
  async function copy(id) {
    const input = document.getElementById(id);
    if (!input) return;
    input.focus();
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      status(id, "Copied.");
    } catch (e) {
      // No clipboard access (an insecure origin, a denied permission): the value is
      // selected, so Ctrl+C / Cmd+C copies it.
      status(id, "Selected: press Ctrl+C (Cmd+C on a Mac) to copy.");
    }
  }
  function init() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        copy(button.getAttribute("data-copy"));
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
