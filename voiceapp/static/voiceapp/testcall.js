/* The agent page's test call: microphone -> WebRTC -> the agent, signalled over /ws/v1/test-calls. */
(function () {
  "use strict";
  const panel = document.getElementById("test-call");
  if (!panel) return;
  const startButton = panel.querySelector("[data-testid=test-call-start]");
  if (!startButton) return; // read-only role
  const hangupButton = panel.querySelector("[data-testid=test-call-hangup]");
  const status = panel.querySelector("[data-testid=test-call-status]");
  const errorBox = panel.querySelector("[data-test-call-error]");
  const audio = panel.querySelector("[data-test-call-audio]");
  const link = panel.querySelector("[data-test-call-link]");
  const transcript = panel.querySelector("[data-testid=test-call-transcript]");
  const speaker = panel.querySelector("[data-testid=test-call-speaker]");
  const tools = panel.querySelector("[data-testid=test-call-tool-calls]");
  let call = null;

  // Who is speaking, from the audio itself: the agent's track (what the caller hears) and the microphone.
  const SPEAKING_LEVEL = 0.01; // RMS of the samples, -40 dBFS
  const HOLD_MS = 400; // a pause between words is not a change of speaker
  const SPEAKER_LABEL = { agent: "Agent speaking", caller: "You are speaking", listening: "Listening" };
  function levelMeter(context, stream) {
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    return () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      return Math.sqrt(sum / samples.length);
    };
  }
  function watchSpeakers(current, microphone) {
    const context = new AudioContext();
    const meters = { caller: levelMeter(context, microphone), agent: null };
    const heard = { caller: -Infinity, agent: -Infinity };
    current.attachAgent = (stream) => { meters.agent = levelMeter(context, stream); };
    const timer = setInterval(() => {
      const now = performance.now();
      for (const who of ["agent", "caller"]) if (meters[who] && meters[who]() > SPEAKING_LEVEL) heard[who] = now;
      const state = now - heard.agent < HOLD_MS ? "agent" : now - heard.caller < HOLD_MS ? "caller" : "listening";
      if (speaker.dataset.state !== state) {
        speaker.dataset.state = state;
        speaker.textContent = SPEAKER_LABEL[state];
        speaker.className = "badge speaker-state " + (state === "listening" ? "tone-neutral" : "tone-live");
      }
    }, 100);
    current.stopSpeakers = () => { clearInterval(timer); context.close(); speaker.hidden = true; delete speaker.dataset.state; };
  }

  // When a test call ends, the page's "Latest calls" shows it: the section is fetched again from this page.
  async function refreshLatestCalls() {
    const section = document.getElementById("latest-calls");
    if (!section) return;
    const response = await fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("latest-calls");
    if (fresh) section.replaceWith(fresh);
  }

  // What the call's carrier did that no turn shows (a transfer, one that failed, our hang-up): a centred note
  // in the timeline, its lines stacked so that it reads on a phone's narrow screen.
  function note(kind, title, lines) {
    const el = window.Voice.el;
    const box = el("div", { class: "turn system test-call-note", role: "note", "data-testid": "test-call-note", "data-note": kind },
      el("span", { class: "who" }, title), ...lines.filter(Boolean).map((line) => el("div", { class: "text" }, line)));
    transcript.append(box);
    const empty = panel.querySelector("[data-test-call-empty]");
    if (empty) empty.hidden = true;
    box.scrollIntoView({ block: "nearest" });
  }
  const TRANSFER_LABEL = { blind: "Blind transfer", warm: "Warm transfer" };
  function showTransfer(message) {
    const briefing = message.briefing ? "The target would hear: \u201c" + message.briefing + "\u201d" : "";
    note("transfer", (TRANSFER_LABEL[message.transfer_type] || "Transfer") + " to " + message.target, [message.message, briefing]);
    setStatus("Transferred", "ended");
  }
  function showEvent(message) {
    const data = message.data || {};
    if (message.event === "call.transfer_failed") {
      note("transfer-failed", "Transfer to " + data.target + " failed", [data.reason, "You are still talking to the agent."]);
    }
  }

  function setStatus(text, kind) {
    status.textContent = text;
    status.className = "badge" + (kind ? " status-" + kind : "");
  }
  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  // The server (aiortc) does not trickle ICE: offer once every local candidate is in the SDP.
  function iceGathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 3000); // enough candidates for localhost and a LAN
    });
  }

  function finish(message, kind) {
    if (!call) return;
    const { pc, socket, stream } = call;
    if (call.stopSpeakers) call.stopSpeakers();
    call = null;
    stream.getTracks().forEach((track) => track.stop());
    pc.close();
    if (socket.readyState <= WebSocket.OPEN) socket.close();
    setStatus(message, kind);
    startButton.disabled = false;
    hangupButton.disabled = true;
  }

  async function start() {
    showError("");
    startButton.disabled = true;
    transcript.replaceChildren();
    tools.replaceChildren();
    link.hidden = true;
    setStatus("Asking for the microphone…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (err) {
      showError("The microphone is not available: " + err.message + ". Allow microphone access for this site and try again.");
      setStatus("Not started");
      startButton.disabled = false;
      return;
    }
    const pc = new RTCPeerConnection();
    const current = { pc, stream };
    stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    pc.addEventListener("track", (event) => {
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      if (current.attachAgent) current.attachAgent(audio.srcObject);
    });
    watchSpeakers(current, stream);
    const conversation = new window.Voice.Conversation(transcript, { emptyTurns: panel.querySelector("[data-test-call-empty]"), tools });
    setStatus("Connecting…");
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    const socket = new WebSocket(window.Voice.wsUrl(panel.dataset.wsPath));
    current.socket = socket;
    call = current;
    socket.onopen = () => socket.send(JSON.stringify({ type: "start", agent_id: panel.dataset.agentId, sdp: pc.localDescription.sdp }));
    socket.onmessage = async (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "answer") {
        transcript.dataset.callId = message.call_id;
        link.href = panel.dataset.callUrl + message.call_id + "/";
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        setStatus("Connected", "connected");
        speaker.hidden = false;
        hangupButton.disabled = false;
      } else if (message.type === "event") {
        conversation.handle(message);
        showEvent(message);
      } else if (message.type === "transfer") {
        showTransfer(message);
      } else if (message.type === "hangup") {
        note("hangup", "Hung up", ["The call was hung up on the agent's side."]);
        setStatus("Hanging up…");
      } else if (message.type === "ended") {
        link.hidden = false;
        finish(message.end_reason === "transferred" ? "Ended · transferred" : "Ended", "ended");
        refreshLatestCalls().catch(() => {});
      } else if (message.type === "error") {
        showError(message.message);
        finish("Failed", "failed");
      }
    };
    socket.onclose = () => { if (call && call.socket === socket) finish(status.textContent === "Connected" ? "Ended" : "Failed", "ended"); };
  }

  startButton.addEventListener("click", () => { start().catch((err) => { showError(err.message); finish("Failed", "failed"); startButton.disabled = false; }); });
  hangupButton.addEventListener("click", () => {
    if (!call) return;
    setStatus("Hanging up…");
    call.socket.send(JSON.stringify({ type: "hangup" }));
  });
  window.addEventListener("beforeunload", () => { if (call) call.socket.close(); });
})();
