/* Small helpers every dashboard page shares (no framework). */
(function () {
  "use strict";

  function cookie(name) {
    const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  const Voice = {
    /** The CSRF token for fetch() calls the page makes to its own API (Django's csrftoken cookie). */
    csrfToken() {
      const input = document.querySelector("input[name=csrfmiddlewaretoken]");
      return input ? input.value : cookie("csrftoken");
    },
    /** ws:// or wss:// URL on this host for a websocket path such as "/ws/v1/test-calls". */
    wsUrl(path) {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return scheme + "//" + window.location.host + path;
    },
    /** JSON fetch against the same origin, with the session cookie and CSRF token. */
    async api(path, options) {
      const init = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
      init.headers = Object.assign({ Accept: "application/json", "X-CSRFToken": Voice.csrfToken() }, init.headers);
      if (init.body && typeof init.body !== "string") {
        init.body = JSON.stringify(init.body);
        init.headers["Content-Type"] = "application/json";
      }
      const response = await fetch(path, init);
      const data = response.status === 204 ? null : await response.json().catch(() => null);
      if (!response.ok) {
        const message = data && data.error ? data.error.message : response.statusText;
        throw new Error(message);
      }
      return data;
    },
    /** Element builder: el("p", {class: "x"}, "text", child). */
    el(tag, attrs, ...children) {
      const node = document.createElement(tag);
      Object.entries(attrs || {}).forEach(([key, value]) => {
        if (value === null || value === undefined || value === false) return;
        if (key === "dataset") Object.assign(node.dataset, value);
        else node.setAttribute(key, value === true ? "" : value);
      });
      children.flat().forEach((child) => {
        if (child === null || child === undefined) return;
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      });
      return node;
    },
    /** The dashboard's one duration format (calls.presentation.duration_text): 82 -> "1:22". */
    duration(seconds) {
      if (seconds === null || seconds === undefined) return "";
      const total = Math.round(Number(seconds));
      const hours = Math.floor(total / 3600);
      const minutes = Math.floor((total % 3600) / 60);
      const rest = String(total % 60).padStart(2, "0");
      return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + rest : minutes + ":" + rest;
    },
    /** A call's badge from its outcome {label, tone, reason} (calls.presentation), plus the reason in words. */
    outcomeBadge(outcome, options) {
      const opts = Object.assign({ reason: true, testid: "call-outcome" }, options || {});
      const badge = Voice.el("span", { class: "badge tone-" + outcome.tone, "data-testid": opts.testid, "data-tone": outcome.tone, title: outcome.reason || null },
        outcome.tone === "live" ? Voice.el("span", { class: "live-dot on", "aria-hidden": "true" }) : null, outcome.label);
      if (!opts.reason || !outcome.reason) return [badge];
      return [badge, " ", Voice.el("small", { class: "outcome-reason", "data-testid": opts.testid + "-reason" }, outcome.reason)];
    },
    time(iso) {
      if (!iso) return "";
      return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    },
  };

  // Phones: the main navigation is a menu behind one button (CSS hides the list until it is opened).
  document.documentElement.classList.add("js");
  const navToggle = document.querySelector(".nav-toggle");
  if (navToggle) {
    navToggle.addEventListener("click", () => {
      const open = navToggle.getAttribute("aria-expanded") !== "true";
      navToggle.setAttribute("aria-expanded", String(open));
      document.getElementById(navToggle.getAttribute("aria-controls")).classList.toggle("open", open);
    });
  }

  // Tables marked "cards" become one card per row on phones: each cell is labelled with its column's header
  // (CSS shows the label), rows added later by a page's script included.
  function labelCells(table) {
    const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim() || th.getAttribute("aria-label") || "");
    table.querySelectorAll("tbody tr").forEach((row) => {
      [...row.children].forEach((cell, index) => {
        if (headers[index] && !cell.dataset.label) cell.dataset.label = headers[index];
      });
    });
  }
  document.querySelectorAll("table.cards").forEach((table) => {
    labelCells(table);
    const body = table.querySelector("tbody");
    if (body) new MutationObserver(() => labelCells(table)).observe(body, { childList: true });
  });
  Voice.labelCells = labelCells;

  // Forms marked data-autosubmit submit when a field changes (the tenant switcher).
  document.addEventListener("change", (event) => {
    const form = event.target.closest("form[data-autosubmit]");
    if (form) form.submit();
  });
  // Buttons with data-confirm ask first (revoke a key, end a call...).
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  window.Voice = Voice;
})();
