/* The Live calls page: the tenant's active calls, and one call turn by turn (calls.consumers). */
(function () {
  "use strict";
  const { el } = window.Voice;
  const STATUS_LABEL = { initial: "Initial", ringing: "Ringing (inbound)", dialing: "Dialing (outbound)", connected: "Connected",
    conversing: "Conversing", on_hold: "On hold", transferring: "Transferring", error: "Error", ended: "Ended" };
  const LIVE_TONE = { error: "attention", transferring: "attention", on_hold: "attention" };
  const STATUS_OF_EVENT = { "call.ringing": "ringing", "call.dialing": "dialing", "call.connected": "connected", "call.ended": "ended" };

  const dot = document.querySelector("[data-testid=live-connection]");
  const dotText = document.querySelector("[data-live-connection-text]");
  function connection(state) {
    const text = { open: "Live", reconnecting: "Reconnecting…", refused: "Disconnected: reload the page" }[state] || state;
    dot.classList.toggle("on", state === "open");
    dotText.textContent = text;
  }

  // --- the list of active calls --------------------------------------------------------------
  const table = document.querySelector("[data-testid=live-calls]");
  const body = table.querySelector("tbody");
  const emptyList = document.querySelector("[data-live-empty]");
  const watchedId = (document.getElementById("live-call") || {}).dataset?.callId;
  let onWatchedCall = null; // set below when the page watches one call

  function row(call) {
    const link = table.dataset.liveUrl + call.id + "/";
    return el("tr", { "data-call-id": call.id },
      el("td", {}, el("a", { href: link }, window.Voice.time(call.started_at))),
      el("td", {}, call.agent_name),
      el("td", {}, call.counterpart || call.from_number || "browser"),
      el("td", {}, window.Voice.outcomeBadge(call.outcome, { reason: false })));
  }
  function upsert(call) {
    if (call.id === watchedId) return; // "Other calls": the watched call is shown above
    const existing = body.querySelector('tr[data-call-id="' + call.id + '"]');
    if (call.status === "ended") {
      if (existing) existing.remove();
    } else if (existing) {
      existing.replaceWith(row(call));
    } else {
      body.prepend(row(call));
    }
    showEmpty();
  }
  function showEmpty() {
    emptyList.hidden = body.children.length > 0;
    table.hidden = !emptyList.hidden;
  }
  const listSocket = new window.Voice.ReconnectingSocket(() => table.dataset.wsPath, {
    onState: watchedId ? null : connection,
    onMessage(message) {
      if (message.type === "snapshot") {
        body.replaceChildren(...message.calls.filter((call) => call.id !== watchedId).map(row));
        showEmpty();
      } else if (message.type === "call") {
        upsert(message.call);
        if (message.call.id === watchedId && onWatchedCall) onWatchedCall(message.call);
      }
    },
  });

  // --- one call --------------------------------------------------------------------------------
  const section = document.getElementById("live-call");
  if (!section) return;
  const outcomeBox = section.querySelector("[data-live-outcome]");
  const duration = section.querySelector("[data-live-duration]");
  const controls = section.querySelector("[data-live-controls]");
  const actionError = section.querySelector("[data-live-action-error]");
  const timeline = section.querySelector("[data-testid=live-events]");
  const conversation = new window.Voice.Conversation(section.querySelector("[data-testid=live-transcript]"), {
    tools: section.querySelector("[data-testid=live-tool-calls]"),
    emptyTurns: section.querySelector("[data-live-empty-transcript]"),
    emptyTools: section.querySelector("[data-live-empty-tools]"),
  });
  let lastSequence = 0;
  let answeredAt = null;
  let ended = false;

  // The badge: the live status while the call runs; once it ends, the server's outcome (Ended, Failed with
  // the reason in words, Not connected), which arrives with the call's summary on either socket.
  function showOutcome(outcome) {
    const badge = window.Voice.outcomeBadge(outcome, { testid: "live-call-outcome" });
    outcomeBox.replaceChildren(...badge, " ", duration);
  }
  function setStatus(status) {
    section.dataset.status = status;
    if (status !== "ended") {
      showOutcome({ label: STATUS_LABEL[status] || status, tone: LIVE_TONE[status] || "live", reason: "" });
      return;
    }
    ended = true;
    if (controls) controls.hidden = true;
  }
  function setCall(call) {
    setStatus(call.status);
    if (call.status === "ended") {
      showOutcome(call.outcome);
      duration.textContent = call.duration_text || "";
    }
    if (call.answered_at) answeredAt = Date.parse(call.answered_at);
  }
  onWatchedCall = setCall;
  setInterval(() => {
    if (!answeredAt || ended) return;
    const seconds = Math.max(0, Math.round((Date.now() - answeredAt) / 1000));
    duration.textContent = window.Voice.duration(seconds);
  }, 1000);

  function onEvent(message) {
    if (message.sequence != null) {
      if (message.sequence <= lastSequence) return; // already shown
      lastSequence = message.sequence;
      timeline.append(el("li", {}, el("small", { class: "muted" }, "#" + message.sequence + " " + window.Voice.time(message.timestamp) + " "), message.event));
    }
    const data = message.data || {};
    if (STATUS_OF_EVENT[message.event]) setStatus(STATUS_OF_EVENT[message.event]);
    if (message.event === "call.status_changed" && data.to_status) setStatus(data.to_status);
    if (message.event === "call.connected" && data.answered_at) answeredAt = Date.parse(data.answered_at);
    if (message.event === "call.ended" && data.duration != null) duration.textContent = answeredAt ? window.Voice.duration(data.duration) : "";
    conversation.handle(message);
  }

  const callSocket = new window.Voice.ReconnectingSocket(() => section.dataset.wsPath + "?after=" + lastSequence, {
    onState: connection,
    onMessage(message) {
      if (message.type === "call") {
        setCall(message.call);
      } else if (message.type === "event") {
        onEvent(message);
      } else if (message.type === "caught_up") {
        section.dataset.caughtUp = String(message.sequence);
      } else if (message.type === "error") {
        actionError.textContent = message.message;
        actionError.hidden = false;
      } else if (message.type === "ack") {
        actionError.hidden = true;
      }
    },
  });

  if (controls) {
    controls.querySelector("[data-live-end]").addEventListener("click", () => {
      if (window.confirm("End this call now? The caller will be disconnected.")) callSocket.send({ type: "end" });
    });
    controls.querySelector("[data-live-transfer]").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = new FormData(event.target);
      const transfer = { type: form.get("type"), target: form.get("target"), context: form.get("context") };
      callSocket.send({ type: "transfer", transfer });
    });
  }
  window.addEventListener("beforeunload", () => { listSocket.close(); callSocket.close(); });
})();
