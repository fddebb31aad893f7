// Shipyard dashboard: draws the Plotly figures embedded in pages and runs the action buttons.
// Actions call the JSON API with the session cookie plus the X-Shipyard-CSRF header; the server
// authorizes every call, so a button is a convenience, never the gate.
(function () {
  "use strict";

  function flash(message, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = "flash " + (kind || "error");
    box.hidden = false;
  }

  async function call(method, url, body) {
    const options = { method: method, credentials: "same-origin",
      headers: { "x-shipyard-csrf": "1", "accept": "application/json" } };
    if (body !== undefined && body !== null) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const text = await response.text();
    let payload = null;
    try { payload = text ? JSON.parse(text) : null; } catch (e) { payload = text; }
    if (!response.ok) {
      const error = (payload && payload.error) || {};
      throw new Error(error.message || (response.status + " " + response.statusText));
    }
    return payload;
  }

  function drawCharts(root) {
    if (typeof Plotly === "undefined") return;
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.dataset.drawn) return;
      const figure = JSON.parse(el.dataset.figure);
      Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
      el.dataset.drawn = "1";
    });
  }

  async function runAction(button) {
    const method = button.dataset.method || "POST";
    let body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    if (button.dataset.prompt) {
      const field = button.dataset.promptField || "comment";
      const answer = window.prompt(button.dataset.prompt, "");
      if (answer === null) return;
      body = Object.assign({}, body || {}, { [field]: answer });
    }
    button.disabled = true;
    try {
      await call(method, button.dataset.action, body);
      flash(button.dataset.done || "Done.", "ok");
      window.setTimeout(function () { window.location.reload(); }, 400);
    } catch (error) {
      flash(error.message, "error");
      button.disabled = false;
    }
  }

  function filterTables() {
    document.querySelectorAll("input[data-filter-table]").forEach(function (input) {
      const table = document.querySelector(input.dataset.filterTable);
      if (!table) return;
      input.addEventListener("input", function () {
        const needle = input.value.toLowerCase();
        table.querySelectorAll("tbody tr").forEach(function (row) {
          row.hidden = needle && row.textContent.toLowerCase().indexOf(needle) < 0;
        });
      });
    });
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-action]");
    if (button) { event.preventDefault(); runAction(button); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    filterTables();
    // A page may refresh itself (a canary in progress): data-refresh on <main> in seconds.
    const refresh = document.querySelector("[data-refresh]");
    if (refresh) window.setTimeout(function () { window.location.reload(); }, 1000 * Number(refresh.dataset.refresh));
  });
  window.shipyard = { call: call, flash: flash, drawCharts: drawCharts };
})();
