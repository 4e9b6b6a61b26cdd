// The secretary's full-width minutes editor (issue 22 item 5): every agenda item as a section with its
// discussion and conclusions, saved as one types (per item, with the item's revision), a save state that stays
// on screen ("Đã lưu lúc 19:05") for each section and for the whole page, live updates from the room for the
// sections nobody is typing in, and a warning before leaving with unsaved text.
//
// Same API as the room's minutes tab: PUT /api/meetings/{m}/items/{i}/minutes {text, revision} (409: someone
// else saved first; their text is shown and ours kept beside it), POST .../items/{i}/conclusions.

import { connect, STATUS_TEXT } from "./live.js";
import { api, fail, fmtDate, fmtTime, h, readState, toast } from "./meeting-common.js";
import { enhance as dateInput, toIso } from "./office/dates.js";

const root = document.getElementById("minutes-editor");
const meetingId = Number(root.dataset.meeting);
const topic = `meeting:${meetingId}`;
let S = readState();
const sections = new Map(); // item id -> {area, status, text, revision, dirty, saving, savedAt, timer, error}
const $ = (id) => document.getElementById(id);
// agencies and units a conclusion can be assigned to (issue 20), besides the people in the meeting
let unitsReady = null;
const units = () => (unitsReady ||= api("GET", "/api/meetings/directory").then((d) => d.units).catch(() => []));

const writable = () => (S.me.secretary || S.me.chair) && ["in_progress", "ended"].includes(S.meeting.state)
  && S.minutes.state !== "approved";

function itemData(id) {
  return S.minutes.items?.[String(id)] || { discussion: "", revision: 0, conclusions: [] };
}

// ------------------------------------------------------------------ save state

function sectionState(s) {
  if (s.error) return ["error", s.error];
  if (s.saving) return ["saving", "Đang lưu…"];
  if (s.dirty) return ["dirty", "Chưa lưu — đang soạn…"];
  if (s.savedAt) return ["saved", `Đã lưu lúc ${fmtTime(s.savedAt)}`];
  return ["idle", s.revision ? "Đã lưu" : "Chưa có nội dung"];
}

function showState(s) {
  const [state, text] = sectionState(s);
  s.status.dataset.state = state;
  s.status.textContent = text;
  const all = [...sections.values()];
  const pending = all.filter((x) => x.dirty || x.saving).length;
  const failed = all.filter((x) => x.error).length;
  const last = all.map((x) => x.savedAt).filter(Boolean).sort().pop();
  const bar = $("minutes-save-state");
  bar.dataset.state = failed ? "error" : pending ? "dirty" : "saved";
  bar.textContent = failed ? `${failed} mục chưa lưu được — sẽ thử lại`
    : pending ? `Còn ${pending} mục đang lưu…`
      : last ? `Mọi thay đổi đã được lưu (lần cuối lúc ${fmtTime(last)})` : "Chưa có thay đổi";
}

function queueSave(s) {
  s.dirty = true;
  s.error = "";
  clearTimeout(s.timer);
  s.timer = setTimeout(() => save(s), 800);
  showState(s);
}

async function save(s, attempt = 0) {
  if (s.saving) return;
  s.saving = true;
  const text = s.area.value;
  showState(s);
  try {
    const res = await api("PUT", `/api/meetings/${meetingId}/items/${s.id}/minutes`, { text, revision: s.revision });
    s.revision = res.revision;
    s.savedAt = new Date().toISOString();
    s.error = "";
    if (s.area.value === text) s.dirty = false;
  } catch (err) {
    if (err.status === 409 && err.body && err.body.revision !== undefined) {
      // someone else (the chair, the secretary's other tablet) saved first: theirs on screen, ours kept beside
      s.revision = err.body.revision;
      s.dirty = false;
      s.kept.hidden = false;
      s.kept.querySelector("pre").textContent = text;
      s.area.value = err.body.discussion;
      toast(err.message, "error");
    } else if (!err.status || err.status >= 500) {
      s.error = "Mất kết nối — chưa lưu, sẽ thử lại";
      clearTimeout(s.timer);
      s.timer = setTimeout(() => save(s, attempt + 1), Math.min(15000, 1000 * 2 ** attempt));
    } else {
      s.error = err.message || "Không lưu được";
      fail(err);
    }
  } finally {
    s.saving = false;
    showState(s);
    if (s.dirty && !s.error && s.area.value !== text) save(s);
  }
}

// ------------------------------------------------------------------ sections

function conclusionList(item, data) {
  return h("ol", { class: "minutes-conclusions" }, ...data.conclusions.map((c) => h("li", {},
    h("span", {}, c.text),
    c.assignee ? h("small", { class: "muted" }, ` — Giao: ${c.assignee}${c.deadline ? `, hạn ${fmtDate(c.deadline)}` : ""}`) : null,
    writable() && !c.task_id ? h("button", { type: "button", class: "btn btn-small", onclick: () =>
      api("DELETE", `/api/meetings/${meetingId}/conclusions/${c.id}`).then(refresh).catch(fail) }, "Xóa") : null)));
}

function conclusionForm(item) {
  const unitGroup = h("optgroup", { label: "Cơ quan, đơn vị" });
  units().then((list) => unitGroup.append(...list.map((u) => h("option", { value: `unit:${u.id}` }, u.name))));
  const deadline = h("input", { type: "text", name: "deadline", inputmode: "numeric", placeholder: "dd/mm/yyyy",
    autocomplete: "off", "data-date": "", title: "Ngày dạng dd/mm/yyyy" });
  const form = h("form", { class: "mt-form minutes-new-conclusion" },
    h("label", { class: "wide" }, "Kết luận mới", h("textarea", { name: "text", rows: 2, required: true })),
    h("label", {}, "Giao cho", h("select", { name: "assignee" }, h("option", { value: "" }, "— Không giao —"),
      h("optgroup", { label: "Người dự họp" },
        ...S.participants.filter((p) => p.attendee_id).map((p) => h("option", { value: `user:${p.attendee_id}` },
          p.substitute ? p.substitute.name : p.name))),
      unitGroup)),
    h("label", {}, "Hạn xử lý", h("span", { class: "of-date" }, deadline)),
    h("div", { class: "wide" }, h("button", { class: "btn btn-primary", type: "submit" }, "Thêm kết luận")));
  dateInput(deadline);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const typed = String(f.get("deadline") || "").trim();
    if (typed && !toIso(typed)) { toast("Hạn xử lý: nhập ngày dạng dd/mm/yyyy.", "error"); return; }
    const [kind, id] = String(f.get("assignee") || ":").split(":");
    api("POST", `/api/meetings/${meetingId}/items/${item.id}/conclusions`, {
      text: f.get("text"), assignee_id: kind === "user" ? Number(id) : null,
      assignee_unit_id: kind === "unit" ? Number(id) : null, deadline: toIso(typed) || null,
    }).then(() => { form.reset(); refresh(); }).catch(fail);
  });
  return form;
}

function section(item, n) {
  const data = itemData(item.id);
  const head = h("h2", {}, `${n}. ${item.title}`);
  if (item.restricted) {
    return h("section", { class: "minutes-section", dataset: { item: item.id } }, head,
      h("p", { class: "muted" }, "Nội dung mật: bạn không có trong danh sách được xem."));
  }
  const area = h("textarea", { class: "minutes-full-area", "aria-label": `Ý kiến thảo luận: ${item.title}`,
    placeholder: "Ghi ý kiến thảo luận…", readonly: !writable(), rows: 8 });
  area.value = data.discussion;
  const status = h("span", { class: "minutes-status", role: "status", "aria-live": "polite" });
  const kept = h("details", { class: "minutes-kept", hidden: true },
    h("summary", {}, "Bản bạn vừa soạn (người khác đã lưu trước) — sao chép lại nếu cần"), h("pre", {}));
  const s = { id: item.id, area, status, kept, revision: data.revision, dirty: false, saving: false, savedAt: null,
    error: "", timer: null };
  sections.set(item.id, s);
  area.addEventListener("input", () => queueSave(s));
  area.addEventListener("blur", () => { if (s.dirty) { clearTimeout(s.timer); save(s); } });
  const parts = [h("div", { class: "minutes-section-head" }, head, status), area, kept,
    h("h3", {}, "Kết luận"), conclusionList(item, data)];
  if (writable()) parts.push(conclusionForm(item));
  const el = h("section", { class: "minutes-section", dataset: { item: item.id } }, ...parts);
  showState(s);
  return el;
}

function render() {
  sections.clear();
  $("minutes-state-line").textContent = S.minutes.state === "approved"
    ? "Biên bản đã được phê duyệt: chỉ xem." : writable() ? "Biên bản dự thảo: lưu tự động khi bạn gõ."
      : "Chỉ xem: thư ký hoặc chủ tọa soạn biên bản khi cuộc họp đang diễn ra hoặc vừa kết thúc.";
  $("minutes-sections").replaceChildren(...S.agenda.map((item, i) => section(item, i + 1)));
}

// A change from the room: sections being typed in are left alone, the others take the server's text.
function apply(data) {
  const before = writable();
  S = data;
  if (writable() !== before && ![...sections.values()].some((s) => s.dirty || s.saving)) { render(); return; }
  for (const item of S.agenda) {
    const s = sections.get(item.id);
    if (!s) { render(); return; }
    const d = itemData(item.id);
    if (!s.dirty && !s.saving && d.revision > s.revision) {
      s.area.value = d.discussion;
      s.revision = d.revision;
    }
    const list = s.area.closest("section").querySelector(".minutes-conclusions");
    list.replaceWith(conclusionList(item, d));
  }
}

async function refresh() {
  try { apply(await api("GET", `/api/meetings/${meetingId}`)); } catch (err) { if (err.status) fail(err); }
}

render();
window.addEventListener("beforeunload", (e) => {
  if ([...sections.values()].some((s) => s.dirty || s.saving || s.error)) { e.preventDefault(); e.returnValue = ""; }
});
connect({
  topics: [topic],
  onEvent: (ev) => {
    if (/^(minutes|conclusions|agenda)\./.test(ev.type) || ev.type === "meeting.state") refresh();
  },
  onSnapshot: () => refresh(),
  onStatus: (status) => {
    const badge = $("live-status");
    if (badge) { badge.dataset.state = status; badge.textContent = STATUS_TEXT[status] || status; }
    if (status === "online") {
      refresh();
      for (const s of sections.values()) if (s.error) save(s);
    }
  },
});
