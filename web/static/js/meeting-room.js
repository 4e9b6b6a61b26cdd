// The live meeting room on a tablet: agenda with the current item, documents in the reader (following
// the presenter), check-in and quorum, speakers' queue with timer, live minutes for the secretary.
//
// State comes from the server: the page embeds a snapshot; live events on meeting:{id} either carry
// absolute values (current item, presenter view, speakers' queue, quorum) or say "this changed" and
// the page refetches the snapshot. A snapshot older than the events already applied is refetched,
// so the screen never goes back in time. After a dropped connection live.js resumes from the last
// seq, and the page refetches once in case the log no longer had everything.

import { connect, STATUS_TEXT } from "./live.js";
import { PdfReader } from "./pdfreader.js";
import { clockLabel, clockText, delegationLeft, delegationText, speakingClock } from "./speaking-clock.js";
import { api, ask, fail, fmtDate, fmtDuration, fmtTime, h, readState, toast } from "./meeting-common.js";
import { enhance as dateInput, toIso } from "./office/dates.js";

const root = document.getElementById("room");
const meetingId = Number(root.dataset.meeting);
const topic = `meeting:${meetingId}`;
let S = readState();
let serverOffset = 0;
let following = true;
let selectedItem = null;
let openDocId = null;
let live = null;
const minutesDraft = new Map(); // item id -> {text, revision, dirty, timer}
// item id -> what is typed in the new-conclusion form: a live event redraws the panel, which emptied the form
const conclusionDraft = new Map();

const $ = (id) => document.getElementById(id);
const me = () => S.me;
const isPresenter = () => S.presenter && S.presenter.presenter_id === S.me.user_id;
const state = () => S.meeting.state;

// ------------------------------------------------------------------ reader and follow mode

const followBtn = h("button", { class: "btn btn-small", type: "button", "aria-pressed": "true", id: "follow-btn",
  onclick: () => setFollowing(!following) }, "Theo người trình bày");
const presentBtn = h("button", { class: "btn btn-small", type: "button", id: "present-btn", onclick: togglePresent }, "Trình chiếu");
const fullBtn = h("button", { class: "btn btn-small", type: "button", id: "fullscreen-btn", "aria-pressed": "false",
  title: "Đọc toàn màn hình", "aria-label": "Đọc toàn màn hình", onclick: () => setFullscreen(!isFullscreen()) }, "⛶");
const reader = new PdfReader($("reader"), {
  meetingId,
  compact: true,
  toolbarExtra: [followBtn, presentBtn],
  toolbarEnd: [fullBtn],
  onView: (view, { user }) => { if (isPresenter() && (user || view)) broadcastView(view); },
  onUserMove: () => { if (following && !isPresenter()) setFollowing(false); },
});
window.eoReader = reader;

// ------------------------------------------------------------------ layout (issue 22)
// Side panels fold away and the choice stays on this device; three layouts of the centre column; full-screen
// reading through the Fullscreen API, or a class that does the same where the API is refused.

const PANELS_KEY = "eo.room.panels";
const LAYOUT_KEY = "eo.room.layout";
const stored = (key) => { try { return JSON.parse(localStorage.getItem(key) || "null"); } catch { return null; } };
const store = (key, value) => { try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode */ } };

function defaultPanels() {
  // a landscape tablet: the agenda folds so the document has two thirds of the width; a wide screen keeps both
  const landscape = window.matchMedia("(orientation: landscape) and (min-width: 1001px)").matches;
  return { agenda: !(landscape && window.innerWidth < 1400), side: true };
}
const panels = { ...defaultPanels(), ...(stored(PANELS_KEY) || {}) };

function renderPanels() {
  for (const [name, id] of [["agenda", "toggle-agenda"], ["side", "toggle-side"]]) {
    root.dataset[name] = panels[name] ? "open" : "closed";
    $(id).setAttribute("aria-expanded", String(panels[name]));
  }
}

function setPanel(name, open, { remember = true } = {}) {
  panels[name] = open;
  if (remember) store(PANELS_KEY, { agenda: panels.agenda, side: panels.side });
  renderPanels();
}
$("toggle-agenda").addEventListener("click", () => setPanel("agenda", !panels.agenda));
$("toggle-side").addEventListener("click", () => setPanel("side", !panels.side));

function setLayout(mode) {
  if (!["document", "video", "split"].includes(mode)) mode = "document";
  root.dataset.layout = mode;
  $("room-layout").value = mode;
}
$("room-layout").addEventListener("change", (e) => { setLayout(e.target.value); store(LAYOUT_KEY, root.dataset.layout); });

const isFullscreen = () => root.classList.contains("is-fullscreen");
async function setFullscreen(on) {
  const main = $("room-main");
  root.classList.toggle("is-fullscreen", on);
  fullBtn.setAttribute("aria-pressed", String(on));
  fullBtn.title = on ? "Thoát toàn màn hình" : "Đọc toàn màn hình";
  fullBtn.setAttribute("aria-label", fullBtn.title);
  try {
    if (on && main.requestFullscreen && !document.fullscreenElement) await main.requestFullscreen({ navigationUI: "hide" });
    else if (!on && document.fullscreenElement) await document.exitFullscreen();
  } catch { /* refused (no user gesture, an iframe, an old browser): the class alone fills the window */ }
}
document.addEventListener("fullscreenchange", () => { if (!document.fullscreenElement && isFullscreen()) setFullscreen(false); });
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && isFullscreen() && !document.fullscreenElement) setFullscreen(false); });

// ------------------------------------------------------------------ alerts over the reader (issue 22)

let alertAction = null;
function showAlert(text, { action = null, label = "" } = {}) {
  $("room-alert-text").textContent = text;
  const go = $("room-alert-go");
  go.hidden = !action;
  go.textContent = label;
  alertAction = action;
  $("room-alert").hidden = false;
}
function hideAlert() { $("room-alert").hidden = true; alertAction = null; }
$("room-alert-close").addEventListener("click", hideAlert);
$("room-alert-go").addEventListener("click", () => { const act = alertAction; hideAlert(); if (act) act(); });

function openBallot() {
  if (isFullscreen()) setFullscreen(false);
  if (!panels.side) setPanel("side", true, { remember: false });
  const tab = $("tab-voting");
  if (tab.getAttribute("aria-selected") !== "true") tab.click();
  const panel = $("panel-voting");
  panel.scrollIntoView({ block: "start" });
  (panel.querySelector("button:not([disabled])") || tab).focus({ preventScroll: true });
}

function openSpeakers() {
  if (isFullscreen()) setFullscreen(false);
  if (!panels.side) setPanel("side", true, { remember: false });
  $("tab-speakers").click();
  $("panel-speakers").scrollIntoView({ block: "start" });
}

let sendTimer = null;
let lastSent = "";
function broadcastView(view) {
  if (state() !== "in_progress") return;
  const key = JSON.stringify(view);
  if (key === lastSent) return;
  clearTimeout(sendTimer);
  sendTimer = setTimeout(() => {
    lastSent = key;
    api("PUT", `/api/meetings/${meetingId}/presenter`, view).catch((err) => {
      if (err.status !== 409) fail(err); // 409: someone else presents now; the event tells us
    });
  }, 120);
}

function setFollowing(on) {
  following = on;
  followBtn.setAttribute("aria-pressed", String(on));
  followBtn.textContent = on ? "Đang theo người trình bày" : "Theo người trình bày";
  if (on) catchUpWithRoom();
}

function catchUpWithRoom() {
  const p = S.presenter || {};
  if (p.version_id && p.presenter_id !== S.me.user_id) {
    reader.applyView(p);
    const doc = S.documents.find((d) => d.versions.some((v) => v.id === p.version_id));
    if (doc) { openDocId = doc.id; if (doc.item_id) selectedItem = doc.item_id; renderDocs(); renderAgenda(); }
    return;
  }
  const current = S.meeting.current_item_id;
  if (current) selectItem(current, { openFirst: true });
}

async function togglePresent() {
  try {
    if (isPresenter()) await api("DELETE", `/api/meetings/${meetingId}/presenter`);
    else {
      await api("POST", `/api/meetings/${meetingId}/presenter`);
      S.presenter = { presenter_id: S.me.user_id };
      lastSent = "";
      const view = reader.view();
      if (view) broadcastView(view);
    }
  } catch (err) { fail(err); }
}

// ------------------------------------------------------------------ rendering

function renderBar() {
  const m = S.meeting;
  $("room-title").textContent = m.title;
  const st = $("room-state");
  st.dataset.state = m.state;
  st.textContent = m.state_label;
  const q = S.quorum;
  const qEl = $("quorum");
  qEl.dataset.met = String(q.met);
  qEl.textContent = `Có mặt ${q.present}/${q.entitled} · ${q.met ? "Đủ túc số" : `Chưa đủ túc số (cần ${q.needed})`}`;
  const controls = $("chair-controls");
  controls.hidden = !me().controller;
  window.eoRoomInfo = { presenterId: S.presenter?.presenter_id ?? null, controller: Boolean(me().controller) };
  window.eoAnnotate?.setRoom(window.eoRoomInfo); // the annotator starts later reads eoRoomInfo itself
  const live_ = m.state === "in_progress";
  controls.querySelector('[data-action="start"]').hidden = !(me().chair && m.state === "invited");
  controls.querySelector('[data-action="end"]').hidden = !(me().chair && live_);
  controls.querySelector('[data-action="message"]').hidden = !(me().controller && live_);
  for (const b of controls.querySelectorAll("[data-step]")) b.hidden = !live_;
  const canPresent = live_ && (me().controller || currentItem()?.presenter_id === me().user_id);
  presentBtn.hidden = !canPresent && !isPresenter();
  presentBtn.textContent = isPresenter() ? "Dừng trình chiếu" : "Trình chiếu";
  presentBtn.setAttribute("aria-pressed", String(isPresenter()));
  followBtn.hidden = isPresenter();
  $("tab-minutes").hidden = !(S.minutes.readable || me().chair || me().secretary);
}

function currentItem() {
  return S.agenda.find((i) => i.id === S.meeting.current_item_id) || null;
}

function renderAgenda() {
  const list = $("agenda");
  list.replaceChildren(...S.agenda.map((item, n) => {
    // "Đang thảo luận" only while the meeting runs (it stayed on the last item after the end)
    const isCurrent = item.id === S.meeting.current_item_id && state() === "in_progress";
    const li = h("li", { dataset: { item: item.id, current: String(isCurrent), selected: String(item.id === selectedItem) } },
      h("button", { type: "button", onclick: () => { selectItem(item.id, { openFirst: true, user: true }); } },
        isCurrent ? h("span", { class: "now" }, "● Đang thảo luận") : null,
        h("strong", {}, `${n + 1}. ${item.title}`, item.confidential ? h("span", { class: "lock" }, "Mật") : null),
        item.restricted ? null : h("span", { class: "meta" },
          [item.presenter_name, item.planned_minutes ? `${item.planned_minutes} phút` : ""].filter(Boolean).join(" · "))));
    if (me().controller && state() === "in_progress" && !isCurrent) {
      li.append(h("button", { type: "button", class: "btn btn-small agenda-goto",
        onclick: () => api("POST", `/api/meetings/${meetingId}/current`, { item_id: item.id }).catch(fail) },
        "Chuyển tới nội dung này"));
    }
    return li;
  }));
}

function docsFor(itemId) {
  return S.documents.filter((d) => d.item_id === itemId || d.item_id === null);
}

function renderDocs() {
  const docs = docsFor(selectedItem);
  const item = S.agenda.find((i) => i.id === selectedItem);
  const list = $("docs");
  if (item && item.restricted) {
    list.replaceChildren(h("li", { class: "muted" }, "Nội dung mật: bạn không có quyền xem tài liệu."));
    return;
  }
  list.replaceChildren(...(docs.length ? docs.map((d) => h("li", {},
    h("button", { type: "button", "aria-pressed": String(d.id === openDocId), dataset: { doc: d.id },
      onclick: () => openDoc(d, { user: true }) },
      d.item_id === null ? "Tài liệu chung: " : "", d.title,
      h("small", { class: "muted" }, ` · ${d.versions[0].page_count} trang${d.versions[0].number > 1 ? `, bản ${d.versions[0].number}` : ""}`))))
    : [h("li", { class: "muted" }, "Nội dung này chưa có tài liệu.")]));
}

async function openDoc(doc, { user = false, page = 1 } = {}) {
  openDocId = doc.id;
  if (user && following && !isPresenter()) setFollowing(false);
  renderDocs();
  await reader.openVersion(doc.current_version_id, page);
  if (isPresenter()) { lastSent = ""; broadcastView(reader.view()); }
}

function selectItem(itemId, { openFirst = false, user = false } = {}) {
  selectedItem = itemId;
  if (user && following && !isPresenter()) setFollowing(false);
  renderAgenda();
  renderDocs();
  renderMinutes();
  const item = S.agenda.find((i) => i.id === itemId);
  if (!openFirst || !item) return;
  if (item.restricted) { reader.empty("Nội dung mật: bạn không có quyền xem tài liệu của nội dung này."); openDocId = null; return; }
  const first = S.documents.find((d) => d.item_id === itemId);
  if (first) openDoc(first);
  else { openDocId = null; reader.empty("Nội dung này chưa có tài liệu."); }
}

function seatActions(p) {
  const m = me();
  const mine = m.seats.includes(p.id);
  const operator = p.site_id !== null && m.sites.includes(p.site_id);
  if (!(m.controller || mine || operator) || !["invited", "in_progress"].includes(state())) return null;
  if (p.kind === "unit" && !p.attendee_id) return null;
  const action = p.present ? "check-out" : "check-in";
  return h("button", { type: "button", class: `btn btn-small${p.present ? "" : " btn-ok"}`,
    onclick: async () => {
      // leaving changes the quorum: asked first (one tap checked out)
      if (p.present && !await ask(mine ? "Rời cuộc họp? Bạn sẽ được ghi nhận là vắng mặt từ lúc này." : `Ghi nhận ${p.name} rời cuộc họp?`,
        { ok: "Rời họp", danger: true, detail: "Túc số sẽ được tính lại." })) return;
      api("POST", `/api/meetings/${meetingId}/participants/${p.id}/${action}`).catch(fail);
    } },
    p.present ? "Rời họp" : "Điểm danh");
}

function renderPeople() {
  const mine = S.participants.filter((p) => me().seats.includes(p.id));
  const box = $("my-checkin");
  box.replaceChildren(...mine.filter((p) => !p.present && ["invited", "in_progress"].includes(state())).map((p) =>
    h("button", { type: "button", class: "btn btn-primary btn-block", style: "margin-bottom:10px;min-height:56px",
      onclick: () => api("POST", `/api/meetings/${meetingId}/participants/${p.id}/check-in`)
        .then(() => toast("Đã điểm danh.")).catch(fail) }, "Điểm danh: tôi có mặt")));
  $("people").replaceChildren(...S.participants.map((p) => h("li", { dataset: { participant: p.id } },
    h("span", { class: "dot", dataset: { present: String(p.present) }, "aria-hidden": "true" }),
    h("span", { class: "who" }, p.substitute ? `${p.substitute.name} (dự thay ${p.name})` : p.name,
      h("small", {}, [p.role_label, p.present ? `có mặt ${fmtTime(p.checked_in_at)}` : p.response_label].join(" · "))),
    seatActions(p))));
}

function renderSpeakers() {
  const sp = S.speakers;
  const m = me();
  const speaking = sp.speaking;
  const box = $("speaking");
  if (speaking) {
    // the countdown (issue 20): the speaker, the chair and the room screen see the same clock; over time in red
    const timer = h("div", { class: "timer", id: "speaker-timer", role: "timer", "aria-live": "off" });
    const chair = m.controller ? h("div", { class: "speaker-clock-controls" },
      speaking.paused_at
        ? h("button", { type: "button", class: "btn btn-small", id: "speaker-resume", onclick: () => speakerAction(speaking.id, "resume") }, "▶ Tiếp tục")
        : h("button", { type: "button", class: "btn btn-small", id: "speaker-pause", onclick: () => speakerAction(speaking.id, "pause") }, "⏸ Tạm dừng"),
      h("button", { type: "button", class: "btn btn-small", id: "speaker-extend",
        onclick: () => speakerAction(speaking.id, "extend", { seconds: 60 }) }, "+1 phút")) : null;
    box.replaceChildren(h("div", { class: "speaking" }, h("div", {}, "Đang phát biểu"),
      h("strong", { style: "font-size:20px" }, speaking.name), h("div", { class: "muted", id: "speaker-clock-label" }), timer,
      speaking.delegation ? h("div", { class: "speaker-delegation", id: "speaker-delegation" }) : null,
      m.controller && questions[speaking.id] ? h("p", { class: "speaker-question", id: "speaker-question" },
        h("span", { class: "muted" }, "Câu hỏi đăng ký: "), questions[speaking.id]) : null,
      chair,
      (m.controller || speaking.user_id === m.user_id)
        ? h("button", { type: "button", class: "btn btn-small", onclick: () => speakerAction(speaking.id, "finish") }, "Kết thúc lượt")
        : null));
    tick();
  } else box.replaceChildren();
  const mineWaiting = sp.queue.some((r) => r.user_id === m.user_id && r.site_id === null);
  const ask = $("ask-floor");
  ask.hidden = !(state() === "in_progress" && (m.seats.length || m.controller)) || mineWaiting;
  $("queue").replaceChildren(...(sp.queue.length ? sp.queue.map((r, i) => h("li", { dataset: { request: r.id } },
    h("span", { class: "name" }, `${i + 1}. ${r.name}`),
    m.controller && questions[r.id] ? h("small", { class: "speaker-question muted" }, `Câu hỏi: ${questions[r.id]}`) : null,
    m.controller ? h("button", { type: "button", class: "btn btn-small btn-ok", onclick: () => speakerAction(r.id, "grant") }, "Mời phát biểu") : null,
    m.controller ? limitPicker(r) : null,
    m.controller && i > 0 ? h("button", { type: "button", class: "btn btn-small", "aria-label": "Đưa lên trước",
      onclick: () => moveUp(r.id) }, "▲") : null,
    (m.controller || r.user_id === m.user_id) ? h("button", { type: "button", class: "btn btn-small",
      onclick: () => speakerAction(r.id, "withdraw") }, "Rút") : null))
    : [h("li", { class: "muted" }, "Chưa có ai đăng ký." +
      (["invited", "draft"].includes(state()) ? " Đăng ký phát biểu được khi cuộc họp bắt đầu." : ""))]));
  $("history").replaceChildren(...(sp.history.length ? sp.history.slice().reverse().map((r) => h("li", {},
    h("span", { class: "name" }, r.name), h("span", { class: "muted" }, fmtDuration(r.duration || 0))))
    : [h("li", { class: "muted" }, "Chưa có ai phát biểu.")]));
}

// the questions registered with the turns (issue 20): for the chair and the secretary only, read from the API
// (the room's events never carry them) whenever the queue changes
let questions = {};
async function loadQuestions() {
  if (!me().controller) return;
  try {
    questions = (await api("GET", `/api/meetings/${meetingId}/speakers/questions`)).questions || {};
    renderSpeakers();
  } catch { /* offline: the names still show; the next change loads them again */ }
}

function moveUp(id) {
  const ids = S.speakers.queue.map((r) => r.id);
  const i = ids.indexOf(id);
  if (i > 0) [ids[i - 1], ids[i]] = [ids[i], ids[i - 1]];
  api("POST", `/api/meetings/${meetingId}/speakers/order`, { request_ids: ids }).catch(fail);
}

function speakerAction(id, action, body) {
  const withBody = ["grant", "limit", "extend"].includes(action);
  api("POST", `/api/meetings/${meetingId}/speakers/${id}/${action}`, withBody ? (body || {}) : undefined).catch(fail);
}

const LIMIT_CHOICES = [60, 120, 180, 300, 600, 900];
function limitPicker(r) {
  // the chair gives this request its own time (else the meeting's default)
  const fallback = S.meeting.speaking_time ? `Mặc định (${fmtDuration(S.meeting.speaking_time)})` : "Không giới hạn";
  const values = new Set([...LIMIT_CHOICES, ...(r.time_limit ? [r.time_limit] : [])]);
  return h("select", { class: "speaker-limit", "aria-label": `Thời gian phát biểu của ${r.name}`,
    onchange: (e) => speakerAction(r.id, "limit", { time_limit: e.target.value ? Number(e.target.value) : null }) },
  h("option", { value: "" }, fallback),
  ...[...values].sort((a, b) => a - b).map((v) => h("option", { value: v, selected: v === r.time_limit },
    `${Math.floor(v / 60)} phút${v % 60 ? ` ${v % 60} giây` : ""}`)));
}

function tick() {
  const el = $("speaker-timer");
  const speaking = S.speakers.speaking;
  if (!el || !speaking) return;
  const c = speakingClock(speaking, Date.now() + serverOffset);
  el.textContent = clockText(c);
  el.dataset.over = String(c.over);
  el.dataset.paused = String(c.paused);
  $("speaker-clock-label").textContent = clockLabel(c) + (c.limit ? ` · ${fmtDuration(c.limit)}` : "");
  const d = $("speaker-delegation");
  if (d) {
    d.textContent = delegationText(speaking, c);
    d.dataset.over = String((delegationLeft(speaking, c) ?? 0) < 0);
  }
}
setInterval(tick, 1000);

// ------------------------------------------------------------------ minutes

function canWrite() {
  return (me().secretary || me().chair) && ["in_progress", "ended"].includes(state()) && S.minutes.state !== "approved";
}

function canAssign() {
  return (me().secretary || me().chair) && ["in_progress", "ended", "archived"].includes(state());
}

function renderMinutes() {
  const box = $("minutes");
  if (!box || $("panel-minutes").hidden) return;
  const itemId = selectedItem || S.meeting.current_item_id;
  const item = S.agenda.find((i) => i.id === itemId);
  const parts = [];
  let newForm = null;
  parts.push(h("p", { class: "muted" }, S.minutes.state === "approved"
    ? `Biên bản đã được phê duyệt${S.minutes.approved_at ? ` lúc ${fmtTime(S.minutes.approved_at)} ${fmtDate(S.minutes.approved_at)}` : ""}.`
    : "Biên bản dự thảo."));
  if (!item || item.restricted) {
    parts.push(h("p", { class: "muted" }, item ? "Nội dung mật." : "Chọn một nội dung trong chương trình."));
  } else {
    const data = S.minutes.items?.[String(item.id)] || { discussion: "", revision: 0, conclusions: [] };
    parts.push(h("h3", { style: "font-size:16px" }, item.title));
    const draft = minutesDraft.get(item.id);
    const text = draft && draft.dirty ? draft.text : data.discussion;
    const area = h("textarea", { class: "minutes-area", id: "minutes-text", "aria-label": "Ý kiến thảo luận",
      placeholder: "Ghi ý kiến thảo luận…", readonly: !canWrite() });
    area.value = text;
    // the save state stays after a redraw (issue 22): it was lost whenever a live event redrew the panel
    const saved = h("div", { class: "saved", id: "minutes-saved", "aria-live": "polite" },
      draft?.dirty ? "Đang soạn…" : draft?.savedAt ? `Đã lưu lúc ${fmtTime(draft.savedAt)}` : "");
    area.addEventListener("input", () => queueSave(item.id, area.value, saved));
    parts.push(area, saved);
    parts.push(h("h4", {}, "Kết luận"));
    parts.push(h("ol", { class: "queue" }, ...data.conclusions.map((c) => h("li", {},
      h("span", { class: "name" }, c.text),
      c.assignee ? h("small", { class: "muted" }, `Giao: ${c.assignee}${c.deadline ? `, hạn ${fmtDate(c.deadline)}` : ""}`) : null,
      c.task ? h("small", { class: "muted" }, `Nhiệm vụ: ${c.task.status_label || c.task.status} (${c.task.progress ?? 0}%)`) : null,
      canAssign() && !c.task_id && (c.assignee_id || c.assignee_unit_id) ? h("button", { type: "button", class: "btn btn-small btn-ok", onclick: () =>
        api("POST", `/api/meetings/${meetingId}/conclusions/${c.id}/task`, {})
          .then(() => toast("Đã giao nhiệm vụ.")).catch(fail) }, "Giao nhiệm vụ") : null,
      canWrite() && !c.task_id ? h("button", { type: "button", class: "btn btn-small", onclick: () =>
        api("DELETE", `/api/meetings/${meetingId}/conclusions/${c.id}`).catch(fail) }, "Xóa") : null))));
    if (canWrite()) {
      const deadline = h("input", { type: "text", name: "deadline", inputmode: "numeric", placeholder: "dd/mm/yyyy",
        autocomplete: "off", "data-date": "", title: "Ngày dạng dd/mm/yyyy, ví dụ 05/01/2027" });
      const form = h("form", { class: "mt-form", style: "margin-top:8px" },
        h("label", { class: "wide" }, "Kết luận mới", h("textarea", { name: "text", rows: 2, required: true })),
        h("label", {}, "Giao cho", h("select", { name: "assignee_id" }, h("option", { value: "" }, "— Không giao —"),
          ...S.participants.filter((p) => p.attendee_id).map((p) => h("option", { value: p.attendee_id }, p.substitute ? p.substitute.name : p.name)))),
        // dd/mm/yyyy whatever the tablet's language (a date input showed mm/dd/yyyy on an English one)
        h("label", {}, "Hạn xử lý", h("span", { class: "of-date" }, deadline)),
        h("div", { class: "wide" }, h("button", { class: "btn btn-primary", type: "submit" }, "Thêm kết luận")));
      dateInput(deadline);
      const typed0 = conclusionDraft.get(item.id);
      if (typed0) for (const [name, value] of Object.entries(typed0.values)) form.elements[name].value = value;
      const remember = () => conclusionDraft.set(item.id, {
        values: Object.fromEntries(["text", "assignee_id", "deadline"].map((n) => [n, form.elements[n].value])),
      });
      form.addEventListener("input", remember);
      form.addEventListener("change", remember);
      newForm = form;
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const f = new FormData(form);
        const typed = String(f.get("deadline") || "").trim();
        if (typed && !toIso(typed)) { toast("Hạn xử lý: nhập ngày dạng dd/mm/yyyy, ví dụ 05/01/2027.", "error"); return; }
        // forgotten now, not on success: the "conclusion added" event may redraw the panel before the answer
        const kept = conclusionDraft.get(item.id);
        conclusionDraft.delete(item.id);
        api("POST", `/api/meetings/${meetingId}/items/${item.id}/conclusions`, {
          text: f.get("text"), assignee_id: f.get("assignee_id") || null, deadline: toIso(typed) || null,
        }).then(() => form.reset()).catch((err) => {
          if (kept && !conclusionDraft.has(item.id)) conclusionDraft.set(item.id, kept); // still there to retry
          fail(err);
        });
      });
      parts.push(form);
    }
  }
  const actions = h("div", { class: "mt-actions", style: "margin-top:12px" });
  if (canWrite()) actions.append(h("a", { class: "btn", href: `/meetings/${meetingId}/minutes`, target: "_blank" },
    "Soạn toàn màn hình"));
  if (me().chair && state() === "ended" && S.minutes.state !== "approved") {
    actions.append(h("button", { type: "button", class: "btn btn-primary", onclick: () =>
      api("POST", `/api/meetings/${meetingId}/minutes/approve`).then(() => toast("Đã phê duyệt biên bản.")).catch(fail) }, "Phê duyệt biên bản"));
  }
  if (me().chair && S.minutes.state === "approved" && state() === "ended") {
    actions.append(h("button", { type: "button", class: "btn", onclick: () =>
      api("POST", `/api/meetings/${meetingId}/minutes/reopen`, { reason: "" }).catch(fail) }, "Mở lại để sửa"));
  }
  // No minutes before the meeting has started: the PDF would be an empty form.
  if (S.minutes.readable && ["in_progress", "ended", "archived"].includes(state())) actions.append(h("a", { class: "btn", href: `/api/meetings/${meetingId}/minutes.pdf` }, "Tải biên bản PDF"));
  parts.push(actions);
  const focused = document.activeElement && document.activeElement.id === "minutes-text";
  if (focused && minutesDraft.get(itemId)?.dirty) return; // never pull the text from under the secretary's fingers
  // the conclusion field being typed in keeps the focus across the redraw
  const active = document.activeElement;
  const typing = active && active.name && active.form && box.contains(active.form) ? active.name : "";
  box.replaceChildren(...parts);
  if (typing && newForm) newForm.elements[typing]?.focus();
}

function queueSave(itemId, text, savedEl) {
  const d = minutesDraft.get(itemId) || { revision: S.minutes.items?.[String(itemId)]?.revision || 0 };
  d.text = text;
  d.dirty = true;
  minutesDraft.set(itemId, d);
  savedEl.textContent = "Đang soạn…";
  clearTimeout(d.timer);
  d.timer = setTimeout(() => saveMinutes(itemId, savedEl), 1000);
}

async function saveMinutes(itemId, savedEl) {
  const d = minutesDraft.get(itemId);
  if (!d || d.saving) return;
  d.saving = true;
  const text = d.text;
  try {
    const res = await api("PUT", `/api/meetings/${meetingId}/items/${itemId}/minutes`, { text, revision: d.revision });
    d.revision = res.revision;
    if (S.minutes.items?.[String(itemId)]) Object.assign(S.minutes.items[String(itemId)], { discussion: text, revision: res.revision });
    if (d.text === text) d.dirty = false;
    d.savedAt = new Date().toISOString();
    savedEl.textContent = `Đã lưu lúc ${fmtTime(d.savedAt)}`;
  } catch (err) {
    if (err.status === 409 && err.body.revision !== undefined) {
      d.revision = err.body.revision;
      d.dirty = false;
      toast(err.message, "error");
      if (S.minutes.items?.[String(itemId)]) Object.assign(S.minutes.items[String(itemId)], { discussion: err.body.discussion, revision: err.body.revision });
      const area = $("minutes-text");
      if (area) area.value = err.body.discussion;
    } else fail(err);
  } finally {
    d.saving = false;
    if (d.dirty && d.text !== text) saveMinutes(itemId, savedEl);
  }
}

function renderAll() {
  if (selectedItem === null || !S.agenda.some((i) => i.id === selectedItem)) selectedItem = S.meeting.current_item_id ?? S.agenda[0]?.id ?? null;
  renderBar();
  renderAgenda();
  renderDocs();
  renderPeople();
  renderSpeakers();
  renderMinutes();
}

// ------------------------------------------------------------------ live state

let refreshTimer = null;
let refreshing = false;
function refreshSoon(delay = 150) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, delay);
}

async function refresh(attempt = 0) {
  if (refreshing) { refreshSoon(200); return; }
  refreshing = true;
  try {
    const data = await api("GET", `/api/meetings/${meetingId}`);
    const seen = live?.lastSeq(topic);
    if (seen !== undefined && data.seq < seen && attempt < 3) { refreshing = false; refresh(attempt + 1); return; }
    applySnapshot(data);
  } catch (err) {
    if (err.status === 403 || err.status === 404) toast(err.message, "error");
  } finally {
    refreshing = false;
  }
}

function applySnapshot(data) {
  const itemBefore = S.meeting.current_item_id;
  S = data;
  serverOffset = Date.parse(data.server_time) - Date.now();
  renderAll();
  loadQuestions();
  if (following && S.meeting.current_item_id !== itemBefore) catchUpWithRoom();
}

const openPolls = new Set();
function onEvent(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case "agenda.current": {
      S.meeting.current_item_id = d.item_id;
      for (const item of S.agenda) {
        if (item.id === d.item_id) item.status = "current";
        else if (item.id === d.previous_id) item.status = "done";
      }
      S.presenter = { presenter_id: d.presenter_id };
      if (following || isPresenter()) selectItem(d.item_id, { openFirst: true }); // a presenter opens their own item
      else renderAgenda();
      renderBar();
      break;
    }
    case "presenter":
      S.presenter = d;
      renderBar();
      if (following && d.version_id && d.presenter_id !== S.me.user_id) {
        reader.applyView(d);
        const doc = S.documents.find((x) => x.versions.some((v) => v.id === d.version_id));
        if (doc) { openDocId = doc.id; renderDocs(); }
      }
      break;
    case "chair.message":
      showAlert(`${d.sender || "Chủ tọa"}: ${d.text}`); // textContent: a message is text, never markup
      break;
    case "speakers.changed": {
      const before = S.speakers.speaking;
      if (d.speaking && d.speaking.user_id === S.me.user_id && (!before || before.id !== d.speaking.id)) {
        showAlert("Chủ trì đã mời bạn phát biểu.", { action: openSpeakers, label: "Xem lượt phát biểu" });
      }
      S.speakers = { queue: d.queue, speaking: d.speaking, history: d.history };
      renderSpeakers();
      loadQuestions();
      break;
    }
    case "poll.changed":
      if (d.state === "open" && !openPolls.has(d.poll_id)) {
        const poll = d.poll || {};
        // a poll on a confidential item: only those who may see the item are called to it
        const hidden = poll.restricted && S.agenda.find((i) => i.id === poll.item_id)?.restricted !== false;
        if (!hidden) {
          showAlert(`Biểu quyết đã mở${!poll.restricted && poll.title ? `: ${poll.title}` : ""}`,
            { action: openBallot, label: "Bỏ phiếu" });
        }
      }
      if (d.state === "open") openPolls.add(d.poll_id); else openPolls.delete(d.poll_id);
      refreshSoon();
      break;
    case "attendance.changed": {
      const p = S.participants.find((x) => x.id === d.participant_id);
      if (p) { p.present = d.present; p.checked_in_at = d.present ? ev.at : p.checked_in_at; }
      S.quorum = d.quorum;
      renderBar();
      renderPeople();
      break;
    }
    case "minutes.changed": {
      const local = minutesDraft.get(d.item_id);
      if (local && local.revision >= d.revision) break; // our own save
      refreshSoon();
      break;
    }
    default:
      refreshSoon();
  }
}

function setStatus(status) {
  const badge = document.getElementById("live-status");
  if (badge) { badge.dataset.state = status; badge.textContent = STATUS_TEXT[status] || status; }
  $("offline-banner").dataset.show = String(status !== "online");
  root.dataset.live = status;
  if (status === "online") refreshSoon(0); // whatever the log could not replay
}

// ------------------------------------------------------------------ controls

$("chair-controls").addEventListener("click", (e) => {
  const btn = e.target.closest("button");
  if (!btn) return;
  if (btn.dataset.step) {
    api("POST", `/api/meetings/${meetingId}/current`, { step: Number(btn.dataset.step) }).catch(fail);
  } else if (btn.dataset.action === "message") {
    sendMessage();
  } else if (btn.dataset.action === "start" || btn.dataset.action === "end") {
    const action = btn.dataset.action;
    if (action === "end") {
      endMeeting();
      return;
    }
    api("POST", `/api/meetings/${meetingId}/${action}`).catch(fail);
  }
});

// The chair's message to every tablet (issue 22): a banner over the reader, whatever the layout.
function sendMessage() {
  const text = h("textarea", { name: "text", rows: 3, maxlength: 500, required: true, "aria-label": "Nội dung tin nhắn",
    placeholder: "Ví dụ: Nghỉ giải lao 15 phút, 10 giờ 30 họp tiếp." });
  const dlg = h("dialog", { class: "ask-dialog", "aria-label": "Nhắn cả phòng họp" },
    h("form", { method: "dialog" },
      h("p", { class: "ask-text" }, "Tin nhắn tới mọi máy tính bảng và điểm cầu"), text,
      h("div", { class: "ask-actions" },
        h("button", { type: "submit", value: "cancel", class: "btn", formnovalidate: true }, "Hủy"),
        h("button", { type: "submit", value: "ok", class: "btn btn-primary" }, "Gửi"))));
  (document.fullscreenElement || document.body).append(dlg);
  dlg.addEventListener("close", () => {
    if (dlg.returnValue === "ok" && text.value.trim()) {
      api("POST", `/api/meetings/${meetingId}/messages`, { text: text.value }).then(() => toast("Đã gửi tin nhắn."))
        .catch(fail);
    }
    dlg.remove();
  }, { once: true });
  dlg.showModal();
  text.focus();
}

async function endMeeting() {
  // a confidential item not reached: the chair is told by name before the meeting closes (issue 22)
  const left = S.agenda.filter((i) => i.confidential && i.status !== "done" && i.id !== S.meeting.current_item_id);
  const ok = left.length
    ? await ask("Còn nội dung mật chưa thảo luận. Vẫn kết thúc cuộc họp?", { ok: "Vẫn kết thúc", danger: true,
      detail: `Chưa thảo luận: ${left.map((i) => `«${i.title}»`).join(", ")}.` })
    : await ask("Kết thúc cuộc họp?", { ok: "Kết thúc họp" });
  if (ok) api("POST", `/api/meetings/${meetingId}/end`).catch(fail);
}

$("ask-floor").addEventListener("click", () =>
  api("POST", `/api/meetings/${meetingId}/speakers`, {}).then(() => toast("Đã đăng ký phát biểu.")).catch(fail));

for (const tab of document.querySelectorAll('.tabs [role="tab"]')) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll('.tabs [role="tab"]')) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    renderMinutes();
  });
}

document.addEventListener("keydown", (e) => {
  if (!me().controller || e.target.closest("input, textarea, select, .reader-scroll")) return;
  if (e.key === "n" || e.key === "N") api("POST", `/api/meetings/${meetingId}/current`, { step: 1 }).catch(fail);
  if (e.key === "p" || e.key === "P") api("POST", `/api/meetings/${meetingId}/current`, { step: -1 }).catch(fail);
});

// ------------------------------------------------------------------ start

serverOffset = Date.parse(S.server_time) - Date.now();
renderPanels();
setLayout(stored(LAYOUT_KEY) || "document");
renderAll();
setFollowing(true);
live = connect({ topics: [topic], onEvent, onSnapshot: () => refreshSoon(0), onStatus: setStatus });
window.eoRoom = { get state() { return S; }, reader, live, get following() { return following; }, showAlert, ask };
