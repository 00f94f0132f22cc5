// The status grid refreshes itself (issue 17): every N seconds (data-refresh on the
// grid's section) it reads this same page again and swaps in the new grid, without a
// reload, so scroll position and focus stay. It waits while the tab is hidden. Same-origin
// script: the CSP allows no inline script.
(function () {
  "use strict";
  var grid = document.querySelector("[data-refresh]");
  if (!grid) return;
  var every = Math.max(10, parseInt(grid.getAttribute("data-refresh"), 10) || 30) * 1000;
  var status = document.querySelector("[data-refresh-status]");
  function tick() {
    if (document.hidden) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-refresh]");
        if (!fresh) return;
        grid.innerHTML = fresh.innerHTML;
        if (status) status.textContent = "Updated " + new Date().toISOString().slice(11, 19) + " UTC.";
      })
      .catch(function () {
        if (status) status.textContent = "Could not refresh; retrying.";
      });
  }
  window.setInterval(tick, every);
})();
