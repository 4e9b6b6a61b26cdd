// Meeting preparation page: life-cycle actions, answering the invitation, participants, sites,
// agenda items and PDF documents. The page is rendered by the server; after a change (ours or,
// through the live topic, someone else's) it reloads.
import { connect } from "./live.js";
import { api, ask, fail, fillSelects, readState, toast, uploadFile } from "./meeting-common.js";

const S = readState();
const mid = S.meeting.id;
const base = `/api/meetings/${mid}`;
const reload = () => location.reload();

fillSelects().catch(() => {});

document.getElementById("actions")?.addEventListener("click", async (e) => {
  const btn = e.target.closest("button[data-action]");
  if (!btn) return;
  const action = btn.dataset.action;
  let body;
  if (action === "cancel") {
    const reason = prompt("Lý do hủy cuộc họp:");
    if (reason === null) return;
    body = { reason };
  }
  btn.disabled = true;
  try {
    await api("POST", `${base}/${action}`, body);
    if (action === "start") location.assign(`/meetings/${mid}/room`); else reload();
  } catch (err) { fail(err); btn.disabled = false; }
});

// The room screen's link and the default speaking time (issue 20): chair and secretary.
document.getElementById("screen-card")?.addEventListener("click", async (e) => {
  const btn = e.target.closest("button[data-screen]");
  if (!btn) return;
  const what = btn.dataset.screen;
  if (what === "copy") {
    const input = document.getElementById("screen-url");
    input.select();
    try { await navigator.clipboard.writeText(input.value); } catch { document.execCommand("copy"); }
    toast("Đã sao chép đường dẫn.");
    return;
  }
  if (what === "reset" && document.getElementById("screen-url") && !await ask(
    "Tạo đường dẫn mới? Màn hình đang mở bằng đường dẫn cũ sẽ ngừng hiển thị ngay.", { ok: "Tạo đường dẫn mới" })) return;
  if (what === "revoke" && !await ask("Tắt đường dẫn màn hình phòng họp?", { ok: "Tắt", danger: true })) return;
  try { await api(what === "reset" ? "POST" : "DELETE", `${base}/screen`, what === "reset" ? {} : undefined); reload(); }
  catch (err) { fail(err); }
});

document.getElementById("speaking-time-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const minutes = e.target.elements.minutes.value;
  try {
    await api("PATCH", base, { speaking_time: minutes ? Math.round(Number(minutes) * 60) : null });
    toast("Đã lưu thời gian phát biểu.");
  } catch (err) { fail(err); }
});

// Registering to speak, with a question, before the meeting (issue 20); the chair reads them on this page.
document.getElementById("register-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  try {
    await api("POST", `${base}/speakers`, { item_id: f.item_id.value ? Number(f.item_id.value) : null, note: f.note.value });
    reload();
  } catch (err) { fail(err); }
});
document.querySelector("[data-withdraw-request]")?.addEventListener("click", async (e) => {
  try { await api("POST", `${base}/speakers/${e.currentTarget.dataset.withdrawRequest}/withdraw`); reload(); }
  catch (err) { fail(err); }
});

for (const form of document.querySelectorAll(".respond-form")) {
  form.addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-response]");
    if (!btn) return;
    const f = new FormData(form);
    const body = { response: btn.dataset.response, note: f.get("note") || "" };
    if (body.response === "substitute") {
      if (!f.get("substitute_id")) { toast("Hãy chọn người dự thay.", "error"); return; }
      body.substitute_id = Number(f.get("substitute_id"));
    }
    try { await api("POST", `${base}/participants/${form.dataset.participant}/response`, body); reload(); }
    catch (err) { fail(err); }
  });
}

// a council's delegations and their speaking budgets (issue 20)
document.getElementById("delegation-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const minutes = f.minutes.value ? Number(f.minutes.value) : null;
  try {
    await api("POST", `${base}/delegations`, { name: f.name.value, budget: minutes ? minutes * 60 : null });
    reload();
  } catch (err) { fail(err); }
});
document.getElementById("seat-delegations")?.addEventListener("change", async (e) => {
  const select = e.target.closest("select[data-seat-delegation]");
  if (!select) return;
  try {
    await api("POST", `${base}/participants/${select.dataset.seatDelegation}/delegation`,
      { delegation_id: select.value ? Number(select.value) : null });
    toast("Đã xếp đại biểu vào tổ.");
  } catch (err) { fail(err); }
});

function formJson(form) {
  const f = new FormData(form);
  const out = {};
  for (const [k, v] of f.entries()) if (v !== "") out[k] = v;
  return out;
}

document.getElementById("person-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = formJson(e.target);
  for (const k of ["user_id", "unit_id"]) if (body[k]) body[k] = Number(body[k]);
  try { await api("POST", `${base}/participants`, body); reload(); } catch (err) { fail(err); }
});

document.getElementById("site-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = formJson(e.target);
  for (const k of ["unit_id", "operator_id"]) if (body[k]) body[k] = Number(body[k]);
  try { await api("POST", `${base}/sites`, body); reload(); } catch (err) { fail(err); }
});

document.getElementById("item-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const body = formJson(form);
  body.confidential = form.confidential.checked;
  body.allowed_user_ids = [...form.querySelectorAll('input[name="allowed_user_ids"]:checked')].map((o) => Number(o.value));
  if (body.presenter_id) body.presenter_id = Number(body.presenter_id);
  if (body.planned_minutes) body.planned_minutes = Number(body.planned_minutes);
  try { await api("POST", `${base}/items`, body); reload(); } catch (err) { fail(err); }
});

document.addEventListener("click", async (e) => {
  const btn = e.target.closest("button[data-remove]");
  if (!btn || !await ask("Bỏ người này khỏi danh sách mời?", { ok: "Bỏ khỏi danh sách", danger: true })) return;
  try { await api("DELETE", `${base}/participants/${btn.dataset.remove}`); reload(); } catch (err) { fail(err); }
});

document.addEventListener("change", async (e) => {
  const input = e.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.files.length) return;
  const file = input.files[0];
  toast(`Đang tải lên «${file.name}»…`);
  try {
    const up = await uploadFile(file);
    if (input.dataset.versionOf) {
      const note = prompt("Ghi chú cho phiên bản mới (không bắt buộc):") || "";
      await api("POST", `${base}/documents/${input.dataset.versionOf}/versions`, { upload_id: up.id, note });
    } else {
      const itemId = input.dataset.uploadItem ? Number(input.dataset.uploadItem) : null;
      await api("POST", `${base}/documents`, { upload_id: up.id, item_id: itemId });
    }
    reload();
  } catch (err) { fail(err); input.value = ""; }
});

// Someone else changed the meeting (responses, agenda, documents, state): show it.
if (S.meeting.state !== "draft" || S.me.manager) {
  let timer = null;
  const busy = () => document.activeElement?.closest("form") || document.querySelector("details[open] form");
  const later = () => {
    if (!busy()) { reload(); return; }
    toast("Cuộc họp vừa có cập nhật; trang sẽ tải lại khi bạn lưu hoặc đóng biểu mẫu.");
    timer = setTimeout(later, 5000);
  };
  connect({ topics: [`meeting:${mid}`], onEvent: () => { clearTimeout(timer); timer = setTimeout(later, 800); } });
}

// the chair or the secretary signs the approved minutes with their own certificate (passphrase typed each time)
document.getElementById("sign-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const btn = form.querySelector("button[type=submit]");
  btn.disabled = true;
  try {
    await api("POST", `${base}/minutes/sign`, { passphrase: form.passphrase.value });
    toast("Đã ký số biên bản.");
    reload();
  } catch (err) { fail(err); btn.disabled = false; form.passphrase.value = ""; }
});
