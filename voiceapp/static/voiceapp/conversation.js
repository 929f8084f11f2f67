/* Rendering a call's events as a conversation, shared by the live page and the test-call panel. */
(function () {
  "use strict";
  const el = (...args) => window.Voice.el(...args);
  const SPEAKER_LABEL = { agent: "Agent", caller: "Caller", system: "System" };

  /**
   * A conversation view fed with bus events ({event, data, sequence}). Turns are keyed by their
   * turn_number, so an event delivered twice renders once; interim caller text is one grey bubble
   * that the stored caller turn replaces.
   */
  class Conversation {
    constructor(container, options) {
      this.container = container;
      this.options = options || {};
      this.turns = new Map();
      this.interim = null;
    }

    handle(message) {
      const data = message.data || {};
      if (message.event === "transcript.turn") this.turn(data);
      else if (message.event === "transcript.partial") this.partial(data);
      else if (message.event === "tool.called" && this.options.tools) this.tool(data, message.sequence);
      this.refreshEmpty();
    }

    turn(data) {
      const key = String(data.turn_number);
      if (this.turns.has(key)) return;
      if (data.speaker === "caller" && this.interim) {
        this.interim.remove();
        this.interim = null;
      }
      const bubble = el(
        "div",
        {
          class: "turn speaker-" + data.speaker + (data.interrupted ? " interrupted" : ""),
          "data-turn": key,
          "data-speaker": data.speaker,
        },
        el("span", { class: "who" }, (SPEAKER_LABEL[data.speaker] || data.speaker) + " · " + window.Voice.time(data.timestamp)),
        el("span", { class: "text" }, data.text)
      );
      // Keep turn order even if a late turn arrives after a newer one.
      const after = [...this.turns.entries()].filter(([n]) => Number(n) > Number(key)).sort((a, b) => a[0] - b[0])[0];
      if (after) this.container.insertBefore(bubble, after[1]);
      else if (this.interim) this.container.insertBefore(bubble, this.interim);
      else this.container.append(bubble);
      this.turns.set(key, bubble);
      this.scroll();
    }

    partial(data) {
      if (!data.text) return;
      if (!this.interim) {
        this.interim = el("div", { class: "turn speaker-caller interim", "data-speaker": "caller", "data-interim": "1" },
          el("span", { class: "who" }, "Caller · speaking…"), el("span", { class: "text" }, ""));
        this.container.append(this.interim);
      }
      this.interim.querySelector(".text").textContent = data.text;
      this.scroll();
    }

    tool(data, sequence) {
      const box = this.options.tools;
      if (box.querySelector('[data-sequence="' + sequence + '"]')) return;
      const ok = data.status === "succeeded";
      box.append(
        el("details", { "data-sequence": sequence, class: "tool-call" },
          el("summary", {}, data.tool_name + " ", el("span", { class: "badge status-" + data.status }, data.status),
            data.duration_ms != null ? " " + data.duration_ms + " ms" : ""),
          el("p", {}, el("small", {}, "Input")), el("pre", { class: "json" }, JSON.stringify(data.input, null, 2)),
          el("p", {}, el("small", {}, ok ? "Output" : "Error")), el("pre", { class: "json" }, JSON.stringify(data.output, null, 2)))
      );
    }

    refreshEmpty() {
      if (this.options.emptyTurns) this.options.emptyTurns.hidden = this.turns.size > 0 || !!this.interim;
      if (this.options.emptyTools && this.options.tools) this.options.emptyTools.hidden = this.options.tools.children.length > 0;
    }

    scroll() {
      const last = this.container.lastElementChild;
      if (last && this.options.autoscroll !== false) last.scrollIntoView({ block: "nearest" });
    }
  }

  /**
   * A websocket that reconnects with backoff; `path()` is called on every (re)connect, so it can
   * carry the last sequence seen (?after=N) and the server sends only what was missed.
   */
  class ReconnectingSocket {
    constructor(path, handlers) {
      this.path = path;
      this.handlers = handlers;
      this.delay = 1000;
      this.closed = false;
      this.open();
    }

    open() {
      const socket = new WebSocket(window.Voice.wsUrl(this.path()));
      this.socket = socket;
      socket.onopen = () => {
        this.delay = 1000;
        this.handlers.onState && this.handlers.onState("open");
      };
      socket.onmessage = (event) => this.handlers.onMessage(JSON.parse(event.data));
      socket.onclose = (event) => {
        if (this.closed) return;
        // 44xx: refused (signed out, not ours, bad request): retrying will not help.
        if (event.code >= 4400 && event.code < 4500) {
          this.handlers.onState && this.handlers.onState("refused", event.code);
          return;
        }
        this.handlers.onState && this.handlers.onState("reconnecting");
        setTimeout(() => this.open(), this.delay);
        this.delay = Math.min(this.delay * 2, 15000);
      };
    }

    send(message) {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify(message));
        return true;
      }
      return false;
    }

    close() {
      this.closed = true;
      if (this.socket) this.socket.close();
    }
  }

  window.Voice.Conversation = Conversation;
  window.Voice.ReconnectingSocket = ReconnectingSocket;
})();
