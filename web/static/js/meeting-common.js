// Small helpers shared by the meeting pages: DOM building (text is always escaped), the JSON API
// with the CSRF header, uploads, toasts, Vietnamese date formats in the agency's time zone.

export const TZ = "Asia/Ho_Chi_Minh";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function csrf() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `Lỗi ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export async function api(method, url, body) {
  const init = { method, headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  let data = null;
  const type = res.headers.get("content-type") || "";
  if (type.includes("application/json")) data = await res.json();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export async function uploadFile(file) {
  const res = await fetch("/api/files", {
    method: "POST", credentials: "same-origin", body: file,
    headers: { "X-CSRF-Token": csrf(), "X-Filename": encodeURIComponent(file.name),
               "Content-Type": file.type || "application/octet-stream" },
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

let toastTimer = null;
export function toast(message, kind = "info") {
  let el = document.getElementById("toast");
  if (!el) {
    el = h("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite" });
    document.body.append(el);
  }
  el.dataset.kind = kind;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 6000 : 3000);
}

export function fail(err) {
  toast(err?.message || "Đã có lỗi, vui lòng thử lại.", "error");
}

const dateFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: TZ, day: "2-digit", month: "2-digit", year: "numeric" });
const timeFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false });

export function fmtDate(iso) { return iso ? dateFmt.format(new Date(iso)) : ""; }
export function fmtTime(iso) { return iso ? timeFmt.format(new Date(iso)) : ""; }
export function fmtDateTime(iso) { return iso ? `${fmtTime(iso)} ${fmtDate(iso)}` : ""; }

export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

export function readState(id = "meeting-state") {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

// Fill <select data-users> / <select data-units> from the directory, once per page.
let directory = null;
// A <div data-user-checks="name"> gets one check box (name=value: the user's id) per person.
export async function fillSelects(root = document) {
  const selects = root.querySelectorAll("select[data-users], select[data-units]");
  const checks = root.querySelectorAll("[data-user-checks]");
  if (!selects.length && !checks.length) return;
  directory = directory || await api("GET", "/api/meetings/directory");
  for (const box of checks) {
    box.replaceChildren(...directory.users.map((u) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: box.dataset.userChecks, value: u.id }),
      u.title ? `${u.full_name} — ${u.title}` : u.full_name)));
  }
  for (const sel of selects) {
    const multiple = sel.multiple;
    sel.replaceChildren();
    if (!multiple) sel.append(h("option", { value: "" }, sel.dataset.empty || "— Chọn —"));
    if (sel.hasAttribute("data-users")) {
      for (const u of directory.users) sel.append(h("option", { value: u.id }, u.title ? `${u.full_name} — ${u.title}` : u.full_name));
    } else {
      for (const u of directory.units) sel.append(h("option", { value: u.id }, u.name));
    }
  }
}

// An in-page confirmation (a modal <dialog>) instead of the browser's confirm(): it looks like the rest of the
// page, speaks Vietnamese on its buttons, works in full screen and can be driven by tests. Resolves true when
// the person confirms, false when they cancel, press Esc or tap outside.
export function ask(message, { ok = "Đồng ý", cancel = "Hủy", danger = false, detail = "" } = {}) {
  return new Promise((resolve) => {
    const okBtn = h("button", { type: "submit", value: "ok", class: `btn ${danger ? "btn-danger" : "btn-primary"}` }, ok);
    const dlg = h("dialog", { class: "ask-dialog", "aria-labelledby": "ask-dialog-text" },
      h("form", { method: "dialog" },
        h("p", { id: "ask-dialog-text", class: "ask-text" }, message),
        detail ? h("p", { class: "ask-detail" }, detail) : null,
        h("div", { class: "ask-actions" },
          h("button", { type: "submit", value: "cancel", class: "btn" }, cancel), okBtn)));
    // inside the element shown full screen, if any, so the question is not hidden behind it
    (document.fullscreenElement || document.body).append(dlg);
    dlg.addEventListener("click", (e) => { if (e.target === dlg) dlg.close("cancel"); }); // the backdrop
    dlg.addEventListener("close", () => { resolve(dlg.returnValue === "ok"); dlg.remove(); }, { once: true });
    dlg.showModal();
    okBtn.focus();
  });
}
