// Video in the meeting room: join with camera and microphone, see every site (điểm cầu), main speaker view.
//
// Talks to /ws/meetings/{id}/media (see web/routes/media.py): two peer connections per session, "pub" (we offer
// our camera and microphone) and "sub" (the server offers the others' media, one slot per track; a "tracks" map
// says which site each slot carries). Both use bundlePolicy "max-bundle". ICE restart: the server (aiortc) cannot
// restart ICE on a live connection, so when the media path fails (a new address, a path that stopped working) and
// the socket is still up we send {"type": "restart"} and, on "restarted" (with fresh TURN credentials), make new
// peer connections in the same session: same participant, place, mutes and floor. After ICE_RESTARTS_MAX failed
// tries, or when the socket itself dropped, we start a new session: new socket, new connections, same camera.
//
// The main view follows, newest first: the chair's "give the floor" (video.floor), the speakers' queue
// (speakers.changed), the voice (active-speaker from the server's audio levels).
//
// Recording (issue 19): a red "Đang ghi hình" badge on every page of the room while the meeting is recorded (the
// recording.started / recording.stopped events and the media state's "recording"), and the chair's button (the
// secretary's too when the chair allows it) to start and stop it.
//
// For tests: window.eofficeVideo exposes the current peer connections.

import { api, fail, h, readState } from "./meeting-common.js";
import { connect } from "./live.js";

const TEXT = {
  idle: "Video chưa bật. Bấm «Tham gia video» để dùng camera và micrô.",
  preparing: "Đang mở camera và micrô…",
  connecting: "Đang kết nối video…",
  live: "Đã kết nối video",
  reconnecting: "Mất kết nối video, đang kết nối lại…",
  replaced: "Video của bạn đang mở ở một thẻ hoặc thiết bị khác.",
  closed: "Cuộc họp chưa mở hoặc đã kết thúc: không có truyền hình trực tuyến.",
  refused: "Bạn không tham dự cuộc họp này nên không xem được video.",
  login: "Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.",
};
const FATAL = { 4401: "login", 4403: "refused" };
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 15000;
const DISCONNECTED_GRACE_MS = 5000; // ICE "disconnected" often recovers by itself; "failed" never does here
const ICE_RESTARTS_MAX = 3; // ICE restarts in a row without getting connected, then a new session
const RESTARTED_WAIT_MS = 10000; // no "restarted" from the server by then: a new session
const SILENCE_MS = 70000; // the server pings every 20 s

function deviceError(err) {
  const name = err && err.name;
  if (!navigator.mediaDevices || name === "SecurityError" || (name === "TypeError" && !window.isSecureContext)) {
    return "Trình duyệt chỉ cho dùng camera và micrô trên trang HTTPS. Hãy mở hệ thống qua địa chỉ https://.";
  }
  if (name === "NotAllowedError" || name === "PermissionDeniedError") {
    return "Trình duyệt chưa được phép dùng camera và micrô. Bấm biểu tượng ổ khóa cạnh thanh địa chỉ, chọn "
      + "«Cho phép» với Camera và Micrô, rồi bấm «Tham gia video» lại.";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError") {
    return "Không tìm thấy camera hoặc micrô. Kiểm tra thiết bị đã cắm và bật, rồi thử lại. "
      + "Bạn vẫn xem và nghe được các điểm cầu khác.";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "Camera hoặc micrô đang được ứng dụng khác sử dụng (Zoom, Teams…). Đóng ứng dụng đó rồi thử lại.";
  }
  if (name === "OverconstrainedError") {
    return "Thiết bị đã chọn không còn dùng được. Hãy chọn camera hoặc micrô khác.";
  }
  return `Không mở được camera hoặc micrô (${name || err}).`;
}

function wsUrl(path) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}

function mediaIdOfSpeaker(speaking, roster) {
  if (!speaking) return null;
  if (speaking.site_id) return `site:${speaking.site_id}`;
  if (!speaking.user_id) return null;
  const direct = `user:${speaking.user_id}`;
  if (roster.some((r) => r.id === direct)) return direct;
  const other = roster.find((r) => r.user_id === speaking.user_id); // an operator speaking for its site
  return other ? other.id : direct;
}

class VideoRoom {
  constructor(root, meetingId, snapshot) {
    this.root = root;
    this.meetingId = meetingId;
    this.local = null; // MediaStream from the camera and microphone
    this.session = null;
    this.want = false; // the user asked to be in the video
    this.attempt = 0;
    this.retryTimer = null;
    this.me = null;
    this.controller = false;
    this.roster = [];
    this.tracks = new Map(); // mid -> {kind, participant, name, muted}
    this.streams = new Map(); // mid -> MediaStream (one remote track)
    this.forwarded = null; // Set of ids whose video the server forwards to us (null: not told yet, all)
    this.levels = {}; // id -> audio level 0-100 for the tiles
    this.activeSpeaker = null;
    this.floor = null;
    this.serverFloor = null;
    this.lastSpeaking = mediaIdOfSpeaker(snapshot?.speakers?.speaking, []);
    this.floor = this.lastSpeaking;
    this.speakingRaw = snapshot?.speakers?.speaking || null;
    this.meRole = snapshot?.me || {};
    this.recording = false;
    this.recordPolicy = "chair";
    this.build();
    this.setStatus("idle");
    this.loadRecording();
    this.live = connect({ topics: [`meeting:${meetingId}`], onEvent: (ev) => this.onEvent(ev) });
  }

  // ------------------------------------------------------------------------------------------------ DOM ---

  build() {
    const r = this.root;
    r.replaceChildren();
    this.statusEl = h("p", { class: "video-status", role: "status", "aria-live": "polite" });
    this.joinBtn = h("button", { class: "btn btn-primary", type: "button", onclick: () => this.join() },
      "Tham gia video");
    this.leaveBtn = h("button", { class: "btn", type: "button", hidden: true, onclick: () => this.leave() },
      "Rời video");
    this.micBtn = h("button", { class: "btn video-toggle", type: "button", hidden: true, "aria-pressed": "false",
      onclick: () => this.toggleOwn("audio") }, "Tắt micrô");
    this.camBtn = h("button", { class: "btn video-toggle", type: "button", hidden: true, "aria-pressed": "false",
      onclick: () => this.toggleOwn("video") }, "Tắt camera");
    this.camSel = h("select", { "aria-label": "Chọn camera", onchange: () => this.changeDevice() });
    this.micSel = h("select", { "aria-label": "Chọn micrô", onchange: () => this.changeDevice() });
    this.devices = h("details", { class: "video-devices" }, h("summary", {}, "Thiết bị"),
      h("label", {}, "Camera ", this.camSel), h("label", {}, "Micrô ", this.micSel));
    this.errorEl = h("p", { class: "video-error", role: "alert", hidden: true });
    this.recBtn = h("button", { class: "btn video-rec", type: "button", hidden: true,
      onclick: () => this.toggleRecording() }, "Ghi hình");
    // over every layout of the room page (document, video, both), not inside the video panel that may be hidden
    this.recBadge = h("div", { class: "rec-badge", role: "status", "aria-live": "polite", hidden: true },
      h("span", { class: "rec-dot", "aria-hidden": "true" }), "Đang ghi hình");
    document.body.append(this.recBadge);
    this.mainVideo = h("video", { class: "video-main-el", autoplay: true, playsinline: true, muted: true });
    this.mainVideo.muted = true;
    this.mainName = h("span", { class: "video-name" });
    this.main = h("div", { class: "video-main", hidden: true }, this.mainVideo, this.mainName);
    this.previewVideo = h("video", { autoplay: true, playsinline: true, muted: true });
    this.previewVideo.muted = true;
    this.preview = h("figure", { class: "video-tile video-self", hidden: true }, this.previewVideo,
      h("figcaption", { class: "video-name" }, "Bạn"));
    this.grid = h("div", { class: "video-grid", "aria-label": "Các điểm cầu" });
    this.audioBox = h("div", { hidden: true });
    this.sitesList = h("ul", { class: "video-sites-list" });
    this.sitesCount = h("summary", {}, "Điều khiển các điểm cầu");
    this.muteAllBtn = h("button", { class: "btn btn-small", type: "button", onclick: () => this.muteAll() },
      "Tắt micrô tất cả");
    this.sites = h("details", { class: "video-sites", open: true, hidden: true }, this.sitesCount,
      h("p", { class: "video-sites-all" }, this.muteAllBtn), this.sitesList);
    r.append(
      h("div", { class: "video-bar" }, this.statusEl, this.joinBtn, this.micBtn, this.camBtn, this.devices,
        this.recBtn, this.leaveBtn),
      this.errorEl, this.main, h("div", { class: "video-grid-wrap" }, this.preview, this.grid), this.sites, this.audioBox);
  }

  setStatus(state) {
    this.state = state;
    this.root.dataset.video = state;
    this.statusEl.textContent = TEXT[state] || state;
  }

  showError(text) {
    this.errorEl.hidden = !text;
    this.errorEl.textContent = text || "";
  }

  // ---------------------------------------------------------------------------------------- devices ---

  async openDevices() {
    if (!navigator.mediaDevices?.getUserMedia) throw Object.assign(new Error("insecure"), { name: "SecurityError" });
    const cam = this.camSel.value;
    const mic = this.micSel.value;
    // 640x360 at 15 fps is plenty for a site's room camera over provincial links (tests ask for less)
    const video = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 30 },
      ...(window.EOFFICE_VIDEO_CONSTRAINTS || {}) };
    if (cam) video.deviceId = { exact: cam };
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (mic) audio.deviceId = { exact: mic };
    try {
      return await navigator.mediaDevices.getUserMedia({ video, audio });
    } catch (err) {
      if (err.name !== "NotFoundError" && err.name !== "OverconstrainedError") throw err;
      for (const only of [{ audio }, { video }]) { // a site with only a microphone, or only a camera
        try { return await navigator.mediaDevices.getUserMedia(only); } catch { /* next */ }
      }
      throw err;
    }
  }

  async listDevices() {
    let list = [];
    try { list = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
    const fill = (sel, kind, current) => {
      const options = list.filter((d) => d.kind === kind)
        .map((d, i) => h("option", { value: d.deviceId }, d.label || `${kind === "videoinput" ? "Camera" : "Micrô"} ${i + 1}`));
      sel.replaceChildren(...options);
      if (current) sel.value = current;
    };
    fill(this.camSel, "videoinput", this.local?.getVideoTracks()[0]?.getSettings().deviceId);
    fill(this.micSel, "audioinput", this.local?.getAudioTracks()[0]?.getSettings().deviceId);
  }

  async changeDevice() {
    if (!this.want) return;
    try {
      const fresh = await this.openDevices();
      for (const t of this.local?.getTracks() || []) t.stop();
      this.local = fresh;
      this.previewVideo.srcObject = fresh;
      this.applyOwnMutes();
      if (this.session) {
        for (const tr of this.session.pub.getTransceivers()) {
          const kind = tr.receiver.track?.kind;
          const track = fresh.getTracks().find((t) => t.kind === kind);
          if (track) await tr.sender.replaceTrack(track);
        }
      }
      this.showError("");
    } catch (err) {
      this.showError(deviceError(err));
    }
  }

  // ------------------------------------------------------------------------------------------ session ---

  async join() {
    if (this.want) return;
    this.want = true;
    this.joinBtn.hidden = true;
    this.leaveBtn.hidden = false;
    this.setStatus("preparing");
    this.showError("");
    try {
      this.local = await this.openDevices();
      await this.listDevices();
    } catch (err) {
      this.local = null; // join anyway: see and hear the others
      this.showError(deviceError(err));
    }
    this.previewVideo.srcObject = this.local;
    this.preview.hidden = !this.local?.getVideoTracks().length;
    this.micBtn.hidden = !this.local?.getAudioTracks().length;
    this.camBtn.hidden = !this.local?.getVideoTracks().length;
    this.start();
  }

  leave() {
    this.want = false;
    clearTimeout(this.retryTimer);
    this.stopSession();
    for (const t of this.local?.getTracks() || []) t.stop();
    this.local = null;
    this.previewVideo.srcObject = null;
    this.preview.hidden = true;
    this.micBtn.hidden = this.camBtn.hidden = true;
    this.joinBtn.hidden = false;
    this.leaveBtn.hidden = true;
    this.roster = [];
    this.render();
    this.setStatus("idle");
  }

  start() {
    if (!this.want) return;
    this.setStatus(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(wsUrl(`/ws/meetings/${this.meetingId}/media`));
    const s = { ws, pub: null, sub: null, heard: Date.now(), timers: [], closed: false };
    this.session = s;
    this.tracks.clear();
    this.streams.clear();
    ws.onmessage = (e) => {
      s.heard = Date.now();
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      this.onMessage(s, msg).catch((err) => { console.error("video:", err); this.restart(s); });
    };
    ws.onclose = (e) => {
      if (s.closed) return;
      const fatal = e.code === 4409 ? (s.replaced ? "replaced" : "closed") : FATAL[e.code];
      if (fatal) { this.stopSession(); this.setStatus(fatal); this.offerRejoin(); return; }
      this.restart(s);
    };
    s.timers.push(setInterval(() => {
      if (Date.now() - s.heard > SILENCE_MS) this.restart(s);
    }, 5000));
  }

  offerRejoin() {
    this.want = false;
    for (const t of this.local?.getTracks() || []) t.stop();
    this.local = null;
    this.preview.hidden = true;
    this.micBtn.hidden = this.camBtn.hidden = true;
    this.joinBtn.hidden = false;
    this.leaveBtn.hidden = true;
  }

  send(s, msg) {
    if (s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify(msg));
  }

  newPc(s, name) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle" });
    pc.onicecandidate = (e) => {
      const c = e.candidate;
      this.send(s, c && c.candidate
        ? { type: "candidate", pc: name, candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex }
        : { type: "candidate", pc: name, candidate: null });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== s.pub && pc !== s.sub) return; // replaced by an ICE restart
      const st = pc.connectionState;
      if (st === "connected") {
        if (s.pub?.connectionState !== "failed" && s === this.session) {
          this.attempt = 0;
          s.iceRestarts = 0;
          this.setStatus("live");
        }
      } else if (st === "failed") {
        this.iceRestart(s);
      } else if (st === "disconnected") {
        s.timers.push(setTimeout(() => {
          if ((pc === s.pub || pc === s.sub) && pc.connectionState === "disconnected") this.iceRestart(s);
        }, DISCONNECTED_GRACE_MS));
      }
    };
    return pc;
  }

  // New peer connections for this session: at the welcome, and after an ICE restart.
  async openPcs(s) {
    s.sub = this.newPc(s, "sub");
    s.sub.ontrack = (e) => this.onTrack(e);
    s.pub = this.newPc(s, "pub");
    const stream = this.local || new MediaStream();
    for (const track of stream.getTracks()) s.pub.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    this.applyOwnMutes();
    if (stream.getTracks().length) {
      await s.pub.setLocalDescription(await s.pub.createOffer());
      this.send(s, { type: "offer", pc: "pub", sdp: s.pub.localDescription.sdp });
    } else if (s.sub) {
      this.setStatus("live"); // receive only
    }
  }

  // The media path failed but the socket may be fine: ask the server for new connections (see the top).
  iceRestart(s) {
    if (s !== this.session || s.closed || s.restarting) return;
    if (s.ws.readyState !== WebSocket.OPEN || (s.iceRestarts || 0) >= ICE_RESTARTS_MAX) { this.restart(s); return; }
    s.restarting = true;
    s.iceRestarts = (s.iceRestarts || 0) + 1;
    this.iceRestarts = (this.iceRestarts || 0) + 1;
    this.setStatus("reconnecting");
    this.send(s, { type: "restart" });
    s.timers.push(setTimeout(() => { if (s.restarting) this.restart(s); }, RESTARTED_WAIT_MS));
  }

  async onMessage(s, msg) {
    if (s !== this.session) return;
    if (s.restarting && msg.type !== "restarted" && (msg.pc || msg.type === "tracks")) return; // for the old pair
    switch (msg.type) {
      case "welcome": {
        s.welcomed = true;
        this.me = msg.you;
        this.controller = !!msg.controller;
        this.iceServers = msg.ice_servers || [];
        await this.openPcs(s);
        break;
      }
      case "restarted": {
        s.restarting = false;
        const old = [s.pub, s.sub];
        s.pub = s.sub = null;
        for (const pc of old) { try { pc?.close(); } catch { /* closed */ } }
        this.tracks.clear();
        this.streams.clear();
        this.audioBox.replaceChildren();
        if (msg.ice_servers) this.iceServers = msg.ice_servers; // fresh TURN credentials
        await this.openPcs(s);
        this.render();
        break;
      }
      case "answer":
        if (msg.pc === "pub") await s.pub.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        break;
      case "offer":
        if (msg.pc !== "sub") break;
        this.setTracks(msg.tracks || []);
        await s.sub.setRemoteDescription({ type: "offer", sdp: msg.sdp });
        await s.sub.setLocalDescription(await s.sub.createAnswer());
        this.send(s, { type: "answer", pc: "sub", sdp: s.sub.localDescription.sdp });
        break;
      case "tracks":
        this.setTracks(msg.tracks || []);
        break;
      case "floor": // the chair gave us the floor: our microphone is open (the server lifted its mute)
        this.cue();
        break;
      case "state":
        if (typeof msg.recording === "boolean") this.setRecording(msg.recording);
        this.roster = msg.roster || [];
        this.activeSpeaker = msg.active_speaker ?? this.activeSpeaker;
        if (msg.floor !== this.serverFloor) { this.serverFloor = msg.floor; this.floor = msg.floor; }
        if (this.speakingRaw && !this.floor) this.floor = mediaIdOfSpeaker(this.speakingRaw, this.roster);
        this.applyOwnMutes();
        this.render();
        break;
      case "active-speaker":
        this.activeSpeaker = msg.participant;
        this.render();
        break;
      case "muted":
        this.render();
        break;
      case "forwarding": // what the server sends us within our link (Last-N): the others are named tiles
        this.forwarded = new Set(msg.video || []);
        this.levels = msg.levels || {};
        this.render();
        break;
      case "ping":
        this.send(s, { type: "pong" });
        break;
      case "replaced":
        s.replaced = true;
        break;
      case "error":
        // a refused restart (too soon) leaves s.restarting set: RESTARTED_WAIT_MS later, a new session
        if (msg.op === "mute") fail(new Error(msg.reason));
        else console.warn("video:", msg.reason);
        if (msg.fatal) this.showError(msg.reason);
        break;
      default:
        break;
    }
  }

  stopSession() {
    const s = this.session;
    if (!s) return;
    s.closed = true;
    this.session = null;
    for (const t of s.timers) { clearInterval(t); clearTimeout(t); }
    try { s.ws.close(1000); } catch { /* already closed */ }
    for (const pc of [s.pub, s.sub]) { try { pc?.close(); } catch { /* closed */ } }
    this.tracks.clear();
    this.streams.clear();
    this.audioBox.replaceChildren();
  }

  restart(s) {
    if (s !== this.session || s.closed) return;
    this.stopSession();
    if (!this.want) return;
    this.setStatus("reconnecting");
    this.render();
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), delay);
  }

  // ------------------------------------------------------------------------------------ remote media ---

  setTracks(list) {
    this.tracks = new Map(list.map((t) => [t.mid, t]));
    this.render();
  }

  onTrack(e) {
    const mid = e.transceiver.mid;
    const stream = new MediaStream([e.track]);
    this.streams.set(mid, stream);
    if (e.track.kind === "audio") {
      const el = h("audio", { autoplay: true, dataset: { mid } });
      el.srcObject = stream;
      this.audioBox.append(el);
    }
    this.render();
  }

  videoOf(participant) {
    for (const [mid, t] of this.tracks) {
      if (t.participant === participant && t.kind === "video" && this.streams.has(mid)) return this.streams.get(mid);
    }
    return null;
  }

  mainParticipant() {
    const present = new Set(this.roster.map((r) => r.id).filter((id) => id !== this.me));
    for (const candidate of [this.floor, this.activeSpeaker]) {
      if (candidate && present.has(candidate)) return candidate;
    }
    return [...present][0] || null;
  }

  render() {
    const others = this.roster.filter((r) => r.id !== this.me);
    const main = this.session ? this.mainParticipant() : null;
    const mainStream = main ? this.videoOf(main) : null;
    this.main.hidden = !main;
    if (this.mainVideo.srcObject !== mainStream) this.mainVideo.srcObject = mainStream;
    const mainEntry = others.find((r) => r.id === main);
    this.mainName.textContent = mainEntry ? mainEntry.name : "";
    this.main.dataset.participant = main || "";
    const tiles = new Map([...this.grid.children].map((el) => [el.dataset.participant, el]));
    const keep = new Set();
    for (const r of others) {
      keep.add(r.id);
      let tile = tiles.get(r.id);
      if (!tile) {
        tile = this.makeTile(r);
        this.grid.append(tile);
      }
      this.updateTile(tile, r, r.id === main, r.id === this.activeSpeaker);
    }
    for (const [id, el] of tiles) if (!keep.has(id)) { el.siteRow?.remove(); el.remove(); }
    this.sites.hidden = !this.controller || !this.sitesList.children.length;
    this.sitesCount.textContent = `Điều khiển các điểm cầu (${this.sitesList.children.length})`;
    const mine = this.roster.find((r) => r.id === this.me);
    for (const [btn, kind, on, off] of [[this.micBtn, "audio", "Bật micrô", "Tắt micrô"],
      [this.camBtn, "video", "Bật camera", "Tắt camera"]]) {
      const muted = !!mine?.muted?.[kind];
      btn.textContent = muted ? on : off;
      btn.setAttribute("aria-pressed", String(muted));
      btn.disabled = muted && !!mine?.imposed?.[kind] && !this.controller;
      btn.title = btn.disabled ? "Chủ trì đã tắt; chỉ chủ trì hoặc thư ký bật lại được." : "";
    }
    this.root.classList.toggle("video-has-main", !this.main.hidden);
  }

  makeTile(r) {
    const video = h("video", { autoplay: true, playsinline: true, muted: true });
    video.muted = true;
    const tile = h("figure", { class: "video-tile", dataset: { participant: r.id } }, video,
      h("figcaption", { class: "video-name" }), h("span", { class: "video-flags", "aria-hidden": "true" }),
      h("meter", { class: "video-level", min: 0, max: 100, value: 0, "aria-label": `Âm lượng ${r.name}` }));
    if (this.controller) {
      // the chair's per-site controls: a row in the list under the pictures (issue 22), not on a 200 px thumbnail
      // where "Trao lời" was clipped
      const actions = h("li", { class: "video-actions", dataset: { participant: r.id } }, h("span", { class: "video-site-name" }, r.name),
        h("button", { class: "btn btn-small", type: "button", dataset: { kind: "audio" },
          onclick: () => this.chairMute(r.id, "audio") }, "Tắt micrô"),
        h("button", { class: "btn btn-small", type: "button", dataset: { kind: "video" },
          onclick: () => this.chairMute(r.id, "video") }, "Tắt camera"),
        h("button", { class: "btn btn-small btn-primary", type: "button", dataset: { floor: "1" },
          "aria-label": `Trao lời cho ${r.name}`, onclick: () => this.giveFloor(r.id) }, "Trao lời"));
      tile.siteRow = actions;
      this.sitesList.append(actions);
    }
    tile.addEventListener("click", (e) => { // a tap on the picture shows that site on the main view
      if (e.target.closest("button")) return;
      this.floor = r.id; this.render();
    });
    return tile;
  }

  updateTile(tile, r, isMain, speaking) {
    const stream = this.videoOf(r.id);
    const video = tile.querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
    tile.querySelector("figcaption").textContent = r.name;
    tile.classList.toggle("is-main", isMain);
    tile.classList.toggle("is-speaking", speaking);
    const leftOut = !!this.forwarded && !this.forwarded.has(r.id); // not in our Last-N: a named tile
    tile.classList.toggle("no-video", !stream || r.muted?.video || leftOut);
    tile.querySelector(".video-level").value = this.levels?.[r.id] ?? 0;
    tile.querySelector(".video-flags").textContent =
      `${r.muted?.audio ? "🔇" : ""}${r.muted?.video ? " 📷✕" : ""}`;
    tile.setAttribute("aria-label", `${r.name}${r.muted?.audio ? ", đã tắt micrô" : ""}${r.muted?.video ? ", đã tắt camera" : ""}`);
    if (tile.siteRow) {
      tile.siteRow.querySelector(".video-site-name").textContent =
        `${r.name}${r.muted?.audio ? " · đã tắt micrô" : ""}${r.muted?.video ? " · đã tắt camera" : ""}`;
      tile.siteRow.classList.toggle("is-speaking", speaking);
    }
    for (const btn of tile.siteRow ? tile.siteRow.querySelectorAll("button[data-kind]") : []) {
      const muted = !!r.muted?.[btn.dataset.kind];
      const what = btn.dataset.kind === "audio" ? "micrô" : "camera";
      btn.textContent = `${muted ? "Bật" : "Tắt"} ${what}`;
      btn.setAttribute("aria-pressed", String(muted));
      btn.setAttribute("aria-label", `${muted ? "Bật" : "Tắt"} ${what} của ${r.name}`);
    }
  }

  // ---------------------------------------------------------------------------------------- controls ---

  toggleOwn(kind) {
    const mine = this.roster.find((r) => r.id === this.me);
    const muted = !mine?.muted?.[kind];
    if (this.session) this.send(this.session, { type: "mute", kind, muted });
    for (const t of this.local?.getTracks() || []) if (t.kind === kind) t.enabled = !muted;
  }

  applyOwnMutes() {
    const mine = this.roster.find((r) => r.id === this.me);
    for (const t of this.local?.getTracks() || []) t.enabled = !mine?.muted?.[t.kind];
  }

  async chairMute(participant, kind) {
    const entry = this.roster.find((r) => r.id === participant);
    try {
      await api("POST", `/api/meetings/${this.meetingId}/video/mute`,
        { participant, kind, muted: !entry?.muted?.[kind] });
    } catch (err) { fail(err); }
  }

  async muteAll() {
    try {
      await api("POST", `/api/meetings/${this.meetingId}/video/mute-all`);
    } catch (err) { fail(err); }
  }

  cue() {
    const text = "Mời phát biểu: chủ trì đã trao lời cho bạn, micrô đã được bật.";
    if (window.eoRoom?.showAlert) window.eoRoom.showAlert(text);
    else this.showError(text);
  }

  async giveFloor(participant) {
    try {
      await api("POST", `/api/meetings/${this.meetingId}/video/floor`, { participant });
    } catch (err) { fail(err); }
  }

  // --------------------------------------------------------------------------------------- recording ---

  async loadRecording() {
    try {
      const st = await api("GET", `/api/meetings/${this.meetingId}/video/recording`);
      this.recordPolicy = st.policy || "chair";
      this.setRecording(!!st.recording);
    } catch { /* the badge follows the events anyway */ }
  }

  setRecording(on) {
    this.recording = on;
    this.recBadge.hidden = !on;
    document.body.classList.toggle("is-recording", on);
    const may = !!this.meRole.chair || (!!this.meRole.secretary && this.recordPolicy === "chair_secretary");
    this.recBtn.hidden = !may;
    this.recBtn.textContent = on ? "Dừng ghi hình" : "Ghi hình";
    this.recBtn.setAttribute("aria-pressed", String(on));
  }

  async toggleRecording() {
    this.recBtn.disabled = true;
    try {
      const st = await api("POST", `/api/meetings/${this.meetingId}/video/recording/${this.recording ? "stop" : "start"}`);
      this.setRecording(!!st.recording);
    } catch (err) { fail(err); } finally { this.recBtn.disabled = false; }
  }

  onEvent(ev) {
    if (ev.type === "recording.started" || ev.type === "recording.stopped") {
      this.setRecording(ev.type === "recording.started");
    } else if (ev.type === "recording.policy") {
      this.recordPolicy = ev.data.who;
      this.setRecording(this.recording);
    } else if (ev.type === "video.floor") {
      this.floor = ev.data.participant;
      this.render();
    } else if (ev.type === "speakers.changed") {
      this.speakingRaw = ev.data.speaking || null;
      const id = mediaIdOfSpeaker(this.speakingRaw, this.roster);
      if (id !== this.lastSpeaking) {
        this.lastSpeaking = id;
        this.floor = id;
        this.render();
      }
    }
  }
}

const root = document.getElementById("video");
if (root && typeof RTCPeerConnection !== "undefined") {
  const meetingId = Number(root.dataset.meeting || document.getElementById("room")?.dataset.meeting);
  let snapshot = null;
  try { snapshot = readState(); } catch { /* the page works without it */ }
  const room = new VideoRoom(root, meetingId, snapshot);
  window.eofficeVideo = {
    get pub() { return room.session?.pub || null; },
    get sub() { return room.session?.sub || null; },
    get state() { return room.state; },
    room,
  };
} else if (root) {
  root.textContent = "Trình duyệt này không hỗ trợ truyền hình trực tuyến (WebRTC). Hãy dùng Chrome, Edge hoặc Firefox bản mới.";
}
