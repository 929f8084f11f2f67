/* The agent pages' knowledge documents: while any is waiting or being embedded, ask the page's status
   endpoint (agents:document-status, JSON) again and update each document's badge, progress bar, detail
   and "Try again" button. Stops when none is left to embed; backs off when a request fails. */
(function () {
  "use strict";

  const list = document.querySelector("[data-knowledge-status]");
  if (!list || !window.Voice) return;
  const url = list.dataset.knowledgeStatus;
  const MAX_WAIT = 60;

  function render(doc) {
    const box = list.querySelector('[data-document-id="' + doc.id + '"]');
    if (!box) return;
    const badge = box.querySelector("[data-role=badge]");
    badge.className = "badge tone-" + doc.tone;
    badge.textContent = doc.label;
    const progress = box.querySelector("[data-role=progress]");
    progress.value = doc.percent;
    progress.textContent = doc.percent + "%";
    progress.hidden = doc.status === "ready" || doc.status === "failed";
    box.querySelector("[data-role=detail]").textContent = doc.detail;
    const retry = box.querySelector("[data-role=retry]");
    if (retry) retry.hidden = !doc.retryable;
  }

  function later(seconds) {
    if (seconds > 0) window.setTimeout(poll, seconds * 1000);
  }

  let failures = 0;
  async function poll() {
    try {
      const data = await window.Voice.api(url);
      failures = 0;
      data.documents.forEach(render);
      later(data.poll_seconds);
    } catch (error) {
      failures += 1;
      later(Math.min(MAX_WAIT, 2 ** failures));
    }
  }

  later(Number(list.dataset.pollSeconds || 0));
})();
