// Annotations on the tablet PDF reader: highlight (snapping to the words' boxes), freehand ink with a pen
// or a finger (smoothed, with the pen's pressure), notes pinned to a point, rectangles and arrows, in
// colours; erase; undo/redo; private by default, shared with the meeting or with chosen people.
//
// Coordinates are PDF points of the page as displayed (the server's word boxes use the same space), so
// an annotation sits on the same words at any zoom and on any screen. Each page gets an SVG layer whose
// viewBox is the page in points. Every change is applied on screen at once, then queued (localStorage)
// and sent in order; without a network the queue waits and is sent on reconnect. A change made on an
// old revision comes back as 409 with the current state, which replaces ours and is announced.
// Live: annot:v:{version} (shared with the meeting) and annot:u:{me} (mine on my other devices, and
// those shared with me by name). Text written by people is only ever put in the page with textContent.
//
// Hooks into the reader without changing it: the "reader:open" event on the reader's root, the
// reader's page elements, its words() and restore(). Loaded after the page sets window.eoReader.

import { CommandError, connect, STATUS_TEXT } from "./live.js";
import { ApiError, api, fail, h, toast } from "./meeting-common.js";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = [["#ffd400", "Vàng"], ["#d32f2f", "Đỏ"], ["#1565c0", "Xanh dương"], ["#2e7d32", "Xanh lá"],
  ["#8e24aa", "Tím"], ["#212121", "Đen"]];
const TOOLS = [["browse", "Xem, cuộn trang"], ["highlight", "Tô sáng chữ"], ["ink", "Vẽ tay"], ["note", "Ghi chú"],
  ["rect", "Khung chữ nhật"], ["arrow", "Mũi tên"], ["erase", "Tẩy"]];
// Icons as SVG paths (24 x 24): no icon font or emoji font needed on the agency's tablets.
const ICONS = {
  browse: "M12 2l3 3h-2v4h4V7l3 3-3 3v-2h-4v4h2l-3 3-3-3h2v-4H7v2l-3-3 3-3v2h4V5H9z",
  highlight: "M15.2 3.3l5.5 5.5-8.5 8.5H6.7v-5.5zM4 20h16v2H4z",
  ink: "M3 17.25V21h3.75L17.8 9.94l-3.75-3.75zM20.7 7.04a1 1 0 0 0 0-1.41l-2.34-2.34a1 1 0 0 0-1.41 0l-1.83 1.83 3.75 3.75z",
  note: "M4 3h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H9l-5 4V4a1 1 0 0 1 1-1zm3 4v2h10V7zm0 4v2h7v-2z",
  rect: "M3 5h18v14H3zm2 2v10h14V7z",
  arrow: "M5.4 20L4 18.6 15.6 7H9V5h10v10h-2V8.4z",
  erase: "M15.1 3.6l5.3 5.3a1.5 1.5 0 0 1 0 2.1L12.4 19H19v2H8.6l-4.9-4.9a1.5 1.5 0 0 1 0-2.1zM6.6 13.3l-1.5 1.5 3.9 3.9h2.5l2-2z",
  undo: "M12.5 8c-2.65 0-5.05 1-6.9 2.6L2 7v9h9l-3.6-3.6A8 8 0 0 1 20.1 16l2.4-.8A10.5 10.5 0 0 0 12.5 8z",
  redo: "M18.4 10.6A10.5 10.5 0 0 0 1.5 15.2l2.4.8a8 8 0 0 1 12.7-3.6L13 16h9V7z",
};

function icon(name) {
  const s = document.createElementNS(SVG, "svg");
  s.setAttribute("viewBox", "0 0 24 24");
  s.setAttribute("aria-hidden", "true");
  s.setAttribute("class", "annot-icon");
  const p = document.createElementNS(SVG, "path");
  p.setAttribute("d", ICONS[name]);
  s.append(p);
  return s;
}
const KIND_LABELS = { highlight: "Tô sáng", ink: "Nét vẽ", note: "Ghi chú", rect: "Khung", arrow: "Mũi tên" };
const VIS_LABELS = { private: "Riêng tôi", meeting: "Cả cuộc họp", people: "Người được chọn" };
const PALM_MS = 1500; // touches right after a pen stroke are the hand resting on the glass
const RETRY_MS = 5000;

function el(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  return node;
}

function newClientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes); // works on plain-http intranets too, unlike randomUUID
  return "t" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const round = (v) => Math.round(v * 100) / 100;

// Ramer–Douglas–Peucker on [x, y, (pressure)] points: fewer points, same line.
function simplify(points, eps) {
  if (points.length < 3) return points;
  const [ax, ay] = points[0]; const [bx, by] = points[points.length - 1];
  const len = Math.hypot(bx - ax, by - ay) || 1;
  let worst = 0; let index = 0;
  for (let i = 1; i < points.length - 1; i++) {
    const [px, py] = points[i];
    const d = Math.abs((by - ay) * px - (bx - ax) * py + bx * ay - by * ax) / len;
    if (d > worst) { worst = d; index = i; }
  }
  if (worst <= eps) return [points[0], points[points.length - 1]];
  return simplify(points.slice(0, index + 1), eps).slice(0, -1).concat(simplify(points.slice(index), eps));
}

function smoothPath(points) {
  if (points.length === 1) { const [x, y] = points[0]; return `M${x} ${y}l0.01 0`; }
  let d = `M${points[0][0]} ${points[0][1]}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [x, y] = points[i]; const [nx, ny] = points[i + 1];
    d += `Q${x} ${y} ${(x + nx) / 2} ${(y + ny) / 2}`;
  }
  const last = points[points.length - 1];
  return `${d}L${last[0]} ${last[1]}`;
}

// "Nguyễn Thị Lan" -> "Lan", "Trần Văn Hùng" -> "Hùng": a tag on the page must stay small
function shortName(name) {
  const parts = String(name || "").trim().split(/\s+/);
  return parts.length > 2 ? parts.slice(-1)[0] : parts.join(" ");
}

function bounds(a) {
  const s = a.shape;
  if (a.kind === "highlight") {
    return [Math.min(...s.rects.map((r) => r[0])), Math.min(...s.rects.map((r) => r[1])),
      Math.max(...s.rects.map((r) => r[2])), Math.max(...s.rects.map((r) => r[3]))];
  }
  if (a.kind === "ink") {
    const pts = s.strokes.flat();
    return [Math.min(...pts.map((p) => p[0])), Math.min(...pts.map((p) => p[1])),
      Math.max(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[1]))];
  }
  if (a.kind === "note") return [s.at[0], s.at[1], s.at[0], s.at[1]];
  if (a.kind === "rect") return s.rect.slice();
  return [Math.min(s.from[0], s.to[0]), Math.min(s.from[1], s.to[1]), Math.max(s.from[0], s.to[0]), Math.max(s.from[1], s.to[1])];
}

function distToSegment([px, py], [ax, ay], [bx, by]) {
  const dx = bx - ax; const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / ((dx * dx + dy * dy) || 1)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

function hits(a, pt, tol) {
  const s = a.shape;
  if (a.kind === "ink") {
    return s.strokes.some((st) => st.length === 1 ? Math.hypot(pt[0] - st[0][0], pt[1] - st[0][1]) < tol
      : st.slice(1).some((p, i) => distToSegment(pt, st[i], p) < tol));
  }
  if (a.kind === "arrow") return distToSegment(pt, s.from, s.to) < tol;
  const [x0, y0, x1, y1] = bounds(a);
  return pt[0] >= x0 - tol && pt[0] <= x1 + tol && pt[1] >= y0 - tol && pt[1] <= y1 + tol;
}

const snapshotOf = (a) => a && { version_id: a.version_id, page: a.page, kind: a.kind, shape: a.shape,
  color: a.color, text: a.text || "", visibility: a.visibility, recipient_ids: a.recipient_ids || [] };

export class Annotator {
  constructor(reader) {
    this.reader = reader;
    this.meetingId = reader.meetingId;
    this.me = Number(document.body.dataset.userId);
    this.anns = new Map(); // key "owner:client_id" -> annotation (server shape, id null until created)
    this.tombs = new Map(); // key -> revision at deletion: late events cannot bring it back
    this.words = new Map(); // page -> Promise of word boxes
    this.undoStack = [];
    this.redoStack = [];
    this.tool = "browse";
    this.color = COLORS[0][0];
    this.width = 2;
    this.visibility = "private";
    this.filter = "all";
    this.room = { presenterId: null, controller: false, ...(window.eoRoomInfo || {}) }; // the room's (setRoom)
    this.version = null;
    this.lastPen = 0;
    this.draft = null;
    this.queueKey = `eo-annot-queue:${this.me}`;
    this.queue = this.loadQueue();
    this.sending = false;
    this.online = true;
    this.buildUi();
    this.live = connect({
      topics: [`annot:u:${this.me}`],
      onEvent: (ev) => this.onEvent(ev),
      onSnapshot: (topic, data) => this.onSnapshot(topic, data),
      onStatus: (state) => this.onStatus(state),
      onError: (msg) => this.onLiveError(msg),
    });
    reader.root.addEventListener("reader:open", (e) => this.open(e.detail));
    if (reader.meta) this.open(reader.meta);
    window.addEventListener("online", () => this.flush());
    document.addEventListener("keydown", (e) => this.onKey(e));
  }

  key(a) { return `${a.owner_id}:${a.client_id}`; }
  // The room tells who presents and whether I chair: the presenter's marks get their own badge, the chair may
  // take someone's shared mark off everyone's page.
  setRoom({ presenterId = null, controller = false } = {}) {
    if (presenterId === this.room.presenterId && controller === this.room.controller) return;
    this.room = { presenterId, controller };
    this.renderAll();
  }
  mine(a) { return a.owner_id === this.me; }
  base() { return `/api/meetings/${this.meetingId}`; }

  // ---------------------------------------------------------------- UI

  buildUi() {
    const r = this.reader;
    this.toolButtons = new Map();
    const tools = TOOLS.map(([tool, label]) => {
      const b = h("button", { type: "button", class: "btn btn-small annot-tool", title: label, "aria-label": label,
        "aria-pressed": String(tool === this.tool), dataset: { tool }, onclick: () => this.setTool(tool) }, icon(tool));
      this.toolButtons.set(tool, b);
      return b;
    });
    this.swatches = COLORS.map(([c, name]) => h("button", { type: "button", class: "annot-swatch", title: name,
      "aria-label": `Màu ${name}`, "aria-pressed": String(c === this.color), style: `background:${c}`,
      dataset: { color: c }, onclick: () => { this.setColor(c); this.palette.hidden = true; } }));
    this.colorBtn = h("button", { type: "button", class: "btn btn-small annot-color", title: "Màu", "aria-label": "Chọn màu",
      "aria-expanded": "false", onclick: () => this.togglePalette() },
    h("span", { class: "annot-dot", style: `background:${this.color}` }));
    this.palette = h("div", { class: "annot-palette", role: "group", "aria-label": "Màu", hidden: true }, ...this.swatches);
    this.visSelect = h("select", { "aria-label": "Chế độ chia sẻ cho chú thích mới", class: "annot-vis" },
      h("option", { value: "private" }, "Chú thích mới: riêng tôi"),
      h("option", { value: "meeting" }, "Chú thích mới: chia sẻ cả cuộc họp"));
    this.visSelect.addEventListener("change", () => { this.visibility = this.visSelect.value; });
    this.undoBtn = h("button", { type: "button", class: "btn btn-small", title: "Hoàn tác (Ctrl+Z)", "aria-label": "Hoàn tác",
      onclick: () => this.undo(), disabled: true }, icon("undo"));
    this.redoBtn = h("button", { type: "button", class: "btn btn-small", title: "Làm lại (Ctrl+Y)", "aria-label": "Làm lại",
      onclick: () => this.redo(), disabled: true }, icon("redo"));
    this.listBtn = h("button", { type: "button", class: "btn btn-small", "aria-expanded": "false",
      "aria-controls": "annot-panel", onclick: () => this.togglePanel() }, "Ghi chú (0)");
    this.syncEl = h("span", { class: "annot-sync", role: "status", "aria-live": "polite" });
    if (r.compact) {
      // the room's compact bar (issue 22): who sees new notes and "redo" go to the reader's "⋯ Thêm" menu
      this.bar = h("div", { class: "annot-bar", role: "toolbar", "aria-label": "Công cụ ghi chú" },
        ...tools, this.colorBtn, this.undoBtn, this.listBtn, this.syncEl);
      r.addMore(this.redoBtn, this.visSelect);
    } else {
      this.bar = h("div", { class: "annot-bar", role: "toolbar", "aria-label": "Công cụ ghi chú" },
        ...tools, this.colorBtn, this.visSelect, this.undoBtn, this.redoBtn, this.listBtn, this.syncEl);
    }
    r.bar.after(this.bar);
    r.root.append(this.palette);

    this.filterButtons = [["all", "Tất cả"], ["mine", "Của tôi"], ["shared", "Được chia sẻ"]].map(([f, label]) =>
      h("button", { type: "button", class: "btn btn-small", "aria-pressed": String(f === this.filter),
        dataset: { filter: f }, onclick: () => this.setFilter(f) }, label));
    this.listEl = h("ol", { class: "annot-list" });
    this.copyLink = h("a", { class: "btn btn-small", href: "#", download: "" }, "Tải bản có ghi chú của tôi (PDF)");
    this.panel = h("aside", { class: "annot-panel", id: "annot-panel", hidden: true, "aria-label": "Danh sách ghi chú" },
      h("div", { class: "annot-panel-head" }, h("h2", {}, "Ghi chú trên tài liệu"),
        h("button", { type: "button", class: "btn btn-small", "aria-label": "Đóng", onclick: () => this.togglePanel(false) }, "✕")),
      h("div", { class: "annot-filters", role: "group", "aria-label": "Lọc" }, ...this.filterButtons),
      this.copyLink, this.listEl);
    r.root.style.position = r.root.style.position || "relative";
    r.root.append(this.panel);
    this.buildDialog();
    r.root.dataset.tool = this.tool;
  }

  buildDialog() {
    this.noteText = h("textarea", { rows: 5, maxlength: 4000, "aria-label": "Nội dung ghi chú" });
    this.dialog = h("dialog", { class: "annot-dialog", "aria-label": "Ghi chú" },
      h("form", { method: "dialog" },
        h("label", {}, "Ghi chú", this.noteText),
        h("div", { class: "annot-dialog-actions" },
          h("button", { class: "btn", value: "cancel", type: "submit" }, "Hủy"),
          h("button", { class: "btn btn-primary", value: "ok", type: "submit" }, "Lưu"))));
    document.body.append(this.dialog);
  }

  askText(initial = "") {
    return new Promise((resolve) => {
      this.noteText.value = initial;
      this.dialog.returnValue = "";
      this.dialog.addEventListener("close", () => {
        resolve(this.dialog.returnValue === "ok" ? this.noteText.value.trim() : null);
      }, { once: true });
      this.dialog.showModal();
      this.noteText.focus();
    });
  }

  setTool(tool) {
    this.tool = tool;
    this.reader.root.dataset.tool = tool;
    for (const [t, b] of this.toolButtons) b.setAttribute("aria-pressed", String(t === tool));
    this.cancelDraft();
  }

  togglePalette() {
    const show = this.palette.hidden;
    if (show) { // under the button, inside the reader (its root is positioned)
      const root = this.reader.root.getBoundingClientRect();
      const b = this.colorBtn.getBoundingClientRect();
      this.palette.style.top = `${b.bottom - root.top + 4}px`;
      this.palette.style.left = `${Math.max(4, b.left - root.left)}px`;
    }
    this.palette.hidden = !show;
    this.colorBtn.setAttribute("aria-expanded", String(show));
  }

  setColor(color) {
    this.color = color;
    for (const s of this.swatches) s.setAttribute("aria-pressed", String(s.dataset.color === color));
    this.colorBtn.firstChild.style.background = color;
    this.colorBtn.setAttribute("aria-expanded", "false");
  }

  setFilter(f) {
    this.filter = f;
    for (const b of this.filterButtons) b.setAttribute("aria-pressed", String(b.dataset.filter === f));
    this.renderAll();
  }

  togglePanel(show = this.panel.hidden) {
    this.panel.hidden = !show;
    this.listBtn.setAttribute("aria-expanded", String(show));
  }

  onKey(e) {
    if (e.target.closest && e.target.closest("input, textarea, select, dialog")) return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "z" && !e.shiftKey) { e.preventDefault(); this.undo(); }
    else if (mod && (e.key.toLowerCase() === "y" || (e.key.toLowerCase() === "z" && e.shiftKey))) { e.preventDefault(); this.redo(); }
    else if (e.key === "Escape" && this.tool !== "browse") this.setTool("browse");
  }

  // ---------------------------------------------------------------- opening a version

  open(meta) {
    const before = this.version;
    this.version = meta.id;
    this.pageSizes = meta.page_sizes;
    this.anns.clear();
    this.tombs.clear();
    this.words.clear();
    this.undoStack = [];
    this.redoStack = [];
    this.updateUndo();
    this.copyLink.href = `${this.base()}/versions/${meta.id}/annotated.pdf`;
    this.attachLayers();
    if (before && before !== meta.id) this.live.unsubscribe(`annot:v:${before}`);
    this.live.subscribe(`annot:v:${meta.id}`); // first: whatever happens after it reaches us
    this.refresh();
  }

  attachLayers() {
    this.reader.pages.forEach((p, i) => {
      const page = i + 1;
      const layer = el("svg", { class: "annot-layer", viewBox: `0 0 ${p.w} ${p.h}`, preserveAspectRatio: "none",
        "data-page": page });
      layer.addEventListener("pointerdown", (e) => this.down(e, page, layer));
      layer.addEventListener("pointermove", (e) => this.move(e, page));
      layer.addEventListener("pointerup", (e) => this.up(e, page));
      layer.addEventListener("pointercancel", () => this.cancelDraft());
      p.el.append(layer);
      p.layer = layer;
    });
  }

  async refresh() {
    const version = this.version;
    try {
      const data = await api("GET", `${this.base()}/versions/${version}/annotations`);
      if (version !== this.version) return;
      const seen = new Set();
      for (const a of data.annotations) { seen.add(this.key(a)); this.merge(a); }
      const pending = new Set(this.queue.map((q) => q.key));
      for (const [k, a] of this.anns) {
        if (a.id && !seen.has(k) && !pending.has(k)) this.anns.delete(k); // deleted or unshared while away
      }
      this.renderAll();
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) fail(err);
    }
  }

  merge(a) {
    if (a.version_id !== this.version) return false;
    const k = this.key(a);
    const tomb = this.tombs.get(k);
    if (tomb !== undefined && tomb >= a.revision) return false;
    const known = this.anns.get(k);
    if (known && known.revision > a.revision) return false; // ours is newer (sent, or still queued)
    this.anns.set(k, { ...known, ...a });
    return true;
  }

  // ---------------------------------------------------------------- live events

  onEvent(ev) {
    const d = ev.data || {};
    if (ev.type === "annotation.saved") {
      if (this.merge(d.annotation)) this.renderPage(d.annotation.page);
    } else if (ev.type === "annotation.withdrawn") {
      toast(`${d.by || "Chủ tọa"} đã ẩn một ghi chú chia sẻ của bạn khỏi trang chung; ghi chú vẫn còn, chỉ bạn thấy.`);
    } else if (ev.type === "annotation.deleted" || ev.type === "annotation.hidden") {
      if (d.version_id !== this.version) return;
      for (const [k, a] of this.anns) {
        if (a.id !== d.id) continue;
        if (ev.type === "annotation.hidden" && this.mine(a)) return; // my own stay with me
        // Its audience changed: "hidden" on one topic and "saved" (same revision) on another may come in
        // either order. Only an older copy is hidden; a "saved" arriving after the hide brings it back.
        if (ev.type === "annotation.hidden" && a.revision >= d.revision) return;
        this.anns.delete(k);
        if (ev.type === "annotation.deleted") this.tombs.set(k, d.revision);
        this.renderPage(a.page);
      }
    }
  }

  onSnapshot(topic, data) {
    if (data && Array.isArray(data.annotations) && data.version_id === this.version) {
      for (const a of data.annotations) this.merge(a);
      this.renderAll();
    }
    this.refresh();
  }

  onStatus(state) {
    this.online = state === "online";
    this.showSync();
    if (this.online) { this.flush(); if (this.version) this.refresh(); }
  }

  onLiveError(msg) {
    // After a server restart the hub learns our topics from the first API call: make one, then resubscribe.
    if (msg.op !== "subscribe" || typeof msg.topic !== "string" || !msg.topic.startsWith("annot:")) {
      console.warn("annotate:", msg.message);
      return;
    }
    this.refused = this.refused || new Set();
    this.refused.add(msg.topic);
    if (this.resubscribeTimer || (this.resubscribes || 0) >= 5) return;
    this.resubscribes = (this.resubscribes || 0) + 1;
    this.resubscribeTimer = setTimeout(async () => {
      await this.refresh();
      this.resubscribeTimer = null;
      for (const topic of this.refused) {
        if (topic === `annot:u:${this.me}` || topic === `annot:v:${this.version}`) this.live.subscribe(topic);
      }
      this.refused.clear();
    }, 300 * this.resubscribes);
  }

  // ---------------------------------------------------------------- drawing

  toPdf(e, page) {
    const p = this.reader.pages[page - 1];
    const r = p.el.getBoundingClientRect();
    const x = Math.min(p.w, Math.max(0, (e.clientX - r.left) / r.width * p.w));
    const y = Math.min(p.h, Math.max(0, (e.clientY - r.top) / r.height * p.h));
    return [round(x), round(y)];
  }

  pageWords(page) {
    if (!this.words.has(page)) this.words.set(page, this.reader.words(page).then((w) => w.words).catch(() => []));
    return this.words.get(page);
  }

  down(e, page, layer) {
    if (this.tool === "browse") return;
    if (e.pointerType === "touch" && Date.now() - this.lastPen < PALM_MS) return;
    if (e.pointerType === "pen") this.lastPen = Date.now();
    if (this.draft && this.draft.pointerId !== e.pointerId) { this.cancelDraft(); return; } // a second finger: a gesture
    e.preventDefault();
    try { layer.setPointerCapture(e.pointerId); } catch { /* synthetic events */ }
    const pt = this.toPdf(e, page);
    const pressure = e.pointerType === "pen" && e.pressure > 0 ? e.pressure : null;
    const d = this.draft = { pointerId: e.pointerId, page, tool: this.tool, start: pt, end: pt, layer, pressure };
    if (d.tool === "ink") {
      d.points = [pressure === null ? pt : [...pt, round(pressure)]];
      d.smooth = pt;
      d.el = el("path", { class: "annot-draft", fill: "none", stroke: this.color, "stroke-width": this.width,
        "stroke-linecap": "round", "stroke-linejoin": "round" });
      layer.append(d.el);
    } else if (d.tool === "erase") {
      this.eraseAt(page, pt);
    } else if (d.tool === "highlight") {
      d.words = null;
      this.pageWords(page).then((w) => { if (this.draft === d) { d.words = w; this.previewHighlight(); } });
    }
  }

  move(e, page) {
    const d = this.draft;
    if (!d || d.pointerId !== e.pointerId || d.page !== page) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ce of events.length ? events : [e]) {
      const pt = this.toPdf(ce, page);
      d.end = pt;
      if (d.tool === "ink") {
        // exponential smoothing against the hand's tremor; drop points closer than 0.4 pt
        const s = [round(d.smooth[0] + 0.5 * (pt[0] - d.smooth[0])), round(d.smooth[1] + 0.5 * (pt[1] - d.smooth[1]))];
        const last = d.points[d.points.length - 1];
        if (Math.hypot(s[0] - last[0], s[1] - last[1]) < 0.4) continue;
        d.smooth = s;
        d.points.push(d.pressure === null ? s : [...s, round(ce.pressure || d.pressure)]);
      } else if (d.tool === "erase") {
        this.eraseAt(page, pt);
      }
    }
    if (d.tool === "ink") d.el.setAttribute("d", smoothPath(d.points));
    else if (d.tool === "highlight") this.previewHighlight();
    else if (d.tool === "rect" || d.tool === "arrow") this.previewShape();
  }

  async up(e, page) {
    const d = this.draft;
    if (!d || d.pointerId !== e.pointerId) return;
    this.draft = null;
    if (d.el) d.el.remove();
    if (d.preview) d.preview.remove();
    const [x0, y0] = d.start; const [x1, y1] = d.end;
    if (d.tool === "ink") {
      const last = d.points[d.points.length - 1];
      if (Math.hypot(d.end[0] - last[0], d.end[1] - last[1]) > 0.4) d.points.push(d.pressure === null ? d.end : [...d.end, last[2] ?? 0.5]);
      const points = simplify(d.points, 0.35);
      this.create({ page, kind: "ink", shape: { strokes: [points], width: this.width } });
    } else if (d.tool === "rect") {
      if (Math.abs(x1 - x0) > 2 && Math.abs(y1 - y0) > 2) {
        this.create({ page, kind: "rect", shape: { rect: [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)], width: this.width } });
      }
    } else if (d.tool === "arrow") {
      if (Math.hypot(x1 - x0, y1 - y0) > 3) this.create({ page, kind: "arrow", shape: { from: d.start, to: d.end, width: this.width } });
    } else if (d.tool === "highlight") {
      d.words = d.words || await this.pageWords(page);
      const sel = this.selection(d);
      if (sel) this.create({ page, kind: "highlight", shape: sel });
    } else if (d.tool === "note") {
      const text = await this.askText("");
      if (text) this.create({ page, kind: "note", shape: { at: d.start }, text });
    }
  }

  cancelDraft() {
    if (!this.draft) return;
    this.draft.el?.remove();
    this.draft.preview?.remove();
    this.draft = null;
  }

  previewShape() {
    const d = this.draft;
    d.preview?.remove();
    d.preview = this.shapeEl({ kind: d.tool, color: this.color, owner_id: this.me, visibility: "private",
      shape: d.tool === "rect"
        ? { rect: [Math.min(d.start[0], d.end[0]), Math.min(d.start[1], d.end[1]), Math.max(d.start[0], d.end[0]), Math.max(d.start[1], d.end[1])], width: this.width }
        : { from: d.start, to: d.end, width: this.width } });
    d.preview.classList.add("annot-draft");
    d.layer.append(d.preview);
  }

  nearestWord(words, [x, y]) {
    let best = -1; let bestD = Infinity;
    words.forEach((w, i) => {
      const dx = x < w[0] ? w[0] - x : x > w[2] ? x - w[2] : 0;
      const dy = y < w[1] ? w[1] - y : y > w[3] ? y - w[3] : 0;
      const dist = dx * dx + dy * dy * 4; // rather the same line than the next one
      if (dist < bestD) { bestD = dist; best = i; }
    });
    return bestD <= 30 * 30 ? best : -1;
  }

  selection(d) {
    const words = d.words || [];
    const a = this.nearestWord(words, d.start); const b = this.nearestWord(words, d.end);
    if (a < 0 || b < 0) return null;
    const chosen = words.slice(Math.min(a, b), Math.max(a, b) + 1);
    const lines = new Map(); // one rectangle per line of text
    for (const w of chosen) {
      const k = `${w[5]}:${w[6]}`;
      const r = lines.get(k);
      lines.set(k, r ? [Math.min(r[0], w[0]), Math.min(r[1], w[1]), Math.max(r[2], w[2]), Math.max(r[3], w[3])] : w.slice(0, 4));
    }
    return { rects: [...lines.values()].map((r) => r.map(round)), quote: chosen.map((w) => w[4]).join(" ") };
  }

  previewHighlight() {
    const d = this.draft;
    if (!d || !d.words) return;
    d.preview?.remove();
    const sel = this.selection(d);
    if (!sel) return;
    d.preview = this.shapeEl({ kind: "highlight", color: this.color, owner_id: this.me, visibility: "private", shape: sel });
    d.preview.classList.add("annot-draft");
    d.layer.append(d.preview);
  }

  eraseAt(page, pt) {
    for (const a of this.anns.values()) {
      if (a.page === page && this.mine(a) && this.shown(a) && hits(a, pt, 6)) this.remove(a);
    }
  }

  // ---------------------------------------------------------------- changes (optimistic, queued, undoable)

  create(fields, { record = true, clientId = null } = {}) {
    const a = { id: null, client_id: clientId || newClientId(), meeting_id: this.meetingId, version_id: this.version,
      owner_id: this.me, owner_name: "", color: this.color, text: "", visibility: this.visibility, recipient_ids: [],
      revision: 1, ...fields };
    const k = this.key(a);
    this.tombs.delete(k);
    this.anns.set(k, a);
    this.enqueue({ op: "create", key: k, version: a.version_id, body: { client_id: a.client_id, ...snapshotOf(a) } });
    if (record) this.record(k, null, snapshotOf(a));
    this.renderPage(a.page);
    return a;
  }

  update(a, changes, { record = true } = {}) {
    const k = this.key(a);
    const before = snapshotOf(a);
    const revision = a.revision;
    Object.assign(a, changes, { revision: revision + 1 });
    this.enqueue({ op: "update", key: k, version: a.version_id, revision, body: changes });
    if (record) this.record(k, before, snapshotOf(a));
    this.renderPage(a.page);
  }

  remove(a, { record = true } = {}) {
    const k = this.key(a);
    this.anns.delete(k);
    this.tombs.set(k, a.revision + 1);
    this.enqueue({ op: "delete", key: k, version: a.version_id, revision: a.revision });
    if (record) this.record(k, snapshotOf(a), null);
    this.renderPage(a.page);
  }

  record(key, before, after) {
    this.undoStack.push({ key, before, after });
    if (this.undoStack.length > 200) this.undoStack.shift();
    this.redoStack = [];
    this.updateUndo();
  }

  updateUndo() {
    this.undoBtn.disabled = !this.undoStack.length;
    this.redoBtn.disabled = !this.redoStack.length;
  }

  apply(key, target) {
    const current = this.anns.get(key);
    const clientId = key.split(":")[1];
    if (!target) { if (current) this.remove(current, { record: false }); return; }
    if (target.version_id !== this.version) return;
    if (!current) { this.create(target, { record: false, clientId }); return; }
    const changes = {};
    for (const f of ["page", "shape", "color", "text", "visibility", "recipient_ids"]) {
      if (JSON.stringify(current[f]) !== JSON.stringify(target[f])) changes[f] = target[f];
    }
    if (Object.keys(changes).length) this.update(current, changes, { record: false });
  }

  undo() {
    const step = this.undoStack.pop();
    if (!step) return;
    this.apply(step.key, step.before);
    this.redoStack.push(step);
    this.updateUndo();
  }

  redo() {
    const step = this.redoStack.pop();
    if (!step) return;
    this.apply(step.key, step.after);
    this.undoStack.push(step);
    this.updateUndo();
  }

  // ---------------------------------------------------------------- the queue (survives a reload and the network)

  loadQueue() {
    try { return JSON.parse(localStorage.getItem(this.queueKey) || "[]"); } catch { return []; }
  }

  saveQueue() {
    try { localStorage.setItem(this.queueKey, JSON.stringify(this.queue)); } catch { /* private mode: memory only */ }
    this.showSync();
  }

  enqueue(entry) {
    this.queue.push({ ...entry, meeting: this.meetingId, at: Date.now() });
    this.saveQueue();
    this.flush();
  }

  showSync() {
    const n = this.queue.length;
    this.syncEl.dataset.state = !this.online ? "offline" : n ? "pending" : "ok";
    this.syncEl.textContent = !this.online ? `${STATUS_TEXT.offline}${n ? `: ${n} thay đổi chờ gửi` : ""}`
      : n ? `Đang gửi ${n} thay đổi…` : "Đã lưu";
  }

  async flush() {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length) {
        const entry = this.queue[0];
        try {
          await this.send(entry);
        } catch (err) {
          if (!(err instanceof ApiError) || err.status >= 500 || err.status === 429) {
            this.online = false; // no answer or a server in trouble: keep it, try again later
            this.showSync();
            clearTimeout(this.retryTimer);
            this.retryTimer = setTimeout(() => { this.online = true; this.flush(); }, RETRY_MS);
            return;
          }
          this.rejected(entry, err);
        }
        this.queue.shift();
        this.saveQueue();
      }
    } finally {
      this.sending = false;
    }
  }

  idFor(entry) {
    const a = this.anns.get(entry.key);
    return entry.id || (a && a.id) || (this.ids && this.ids.get(entry.key));
  }

  // Over the meeting socket when it is open (no HTTP request, no per-request login lookup), else over HTTP;
  // the server runs the same code for both and answers only after the commit.
  async call(op, fields, method, url, body) {
    if (this.live.status === "online") {
      try {
        return await this.live.command(op, fields);
      } catch (err) {
        if (err instanceof CommandError) throw new ApiError(err.status, err.body);
        throw err; // no answer: kept in the queue and sent again
      }
    }
    return api(method, url, body);
  }

  async send(entry) {
    const base = `/api/meetings/${entry.meeting}`;
    const m = { meeting_id: entry.meeting };
    if (entry.op === "create") {
      const body = entry.body;
      const saved = await this.call("annotation.create", { ...m, version_id: entry.version, ...body },
        "POST", `${base}/versions/${entry.version}/annotations`, body).then((r) => r.annotation || r);
      this.learnId(entry.key, saved.id);
      this.confirm(entry.key, saved);
      return;
    }
    const id = this.idFor(entry);
    if (!id) return; // its create was refused: nothing to change
    if (entry.op === "update") {
      const body = { revision: entry.revision, ...entry.body };
      const saved = await this.call("annotation.update", { ...m, annotation_id: id, ...body },
        "PATCH", `${base}/annotations/${id}`, body).then((r) => r.annotation || r);
      this.confirm(entry.key, saved);
    } else {
      await this.call("annotation.delete", { ...m, annotation_id: id, revision: entry.revision },
        "DELETE", `${base}/annotations/${id}?revision=${entry.revision}`);
    }
  }

  learnId(key, id) {
    this.ids = this.ids || new Map();
    this.ids.set(key, id);
    for (const q of this.queue) if (q.key === key && !q.id) q.id = id;
  }

  confirm(key, saved) {
    const a = this.anns.get(key);
    if (!a) return; // erased meanwhile; the queued delete follows
    a.id = saved.id;
    a.owner_name = saved.owner_name;
    if (saved.revision >= a.revision) { Object.assign(a, saved); this.renderPage(a.page); }
  }

  rejected(entry, err) {
    const current = err.body && err.body.current;
    if (err.status === 409 && current) {
      toast(err.message, "error"); // "changed elsewhere: here is the latest"
      const k = this.key(current);
      this.anns.set(k, current);
      this.tombs.delete(k);
      for (const q of this.queue.slice(1)) if (q.key === entry.key) q.drop = true;
      this.queue = this.queue.filter((q) => !q.drop);
      this.renderAll();
      return;
    }
    fail(err);
    if (entry.op === "create" || err.status === 404) {
      const a = this.anns.get(entry.key);
      this.anns.delete(entry.key);
      if (a) this.renderPage(a.page);
    } else this.refresh();
  }

  // ---------------------------------------------------------------- rendering

  shown(a) {
    if (this.filter === "mine") return this.mine(a);
    if (this.filter === "shared") return a.visibility !== "private";
    return true;
  }

  renderAll() {
    this.reader.pages.forEach((_p, i) => this.renderPage(i + 1, false));
    this.renderList();
  }

  renderPage(page, list = true) {
    const p = this.reader.pages[page - 1];
    if (!p || !p.layer) return;
    const keep = [...p.layer.querySelectorAll(".annot-draft")];
    const items = [...this.anns.values()].filter((a) => a.page === page && this.shown(a))
      .sort((a, b) => (a.kind === "highlight" ? -1 : 0) - (b.kind === "highlight" ? -1 : 0));
    p.layer.replaceChildren(...items.map((a) => this.shapeEl(a)), ...keep);
    if (list) this.renderList();
  }

  shapeEl(a) {
    const g = el("g", { class: `annot annot-${a.kind}`, "data-id": a.id ?? "", "data-key": this.key(a),
      "data-mine": String(this.mine(a)), "data-visibility": a.visibility });
    const s = a.shape; const c = a.color;
    if (a.kind === "highlight") {
      for (const [x0, y0, x1, y1] of s.rects) g.append(el("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: c }));
    } else if (a.kind === "ink") {
      for (const stroke of s.strokes) {
        if (stroke.some((p) => p.length === 3) && stroke.length > 1) {
          // pressure: each segment as wide as the pen pressed there
          for (let i = 1; i < stroke.length; i++) {
            const p = (stroke[i][2] ?? 0.5) + (stroke[i - 1][2] ?? 0.5);
            g.append(el("line", { x1: stroke[i - 1][0], y1: stroke[i - 1][1], x2: stroke[i][0], y2: stroke[i][1],
              stroke: c, "stroke-width": round(s.width * (0.4 + 0.6 * p)), "stroke-linecap": "round" }));
          }
        } else {
          g.append(el("path", { d: smoothPath(stroke), fill: "none", stroke: c, "stroke-width": s.width,
            "stroke-linecap": "round", "stroke-linejoin": "round" }));
        }
      }
    } else if (a.kind === "note") {
      const [x, y] = s.at;
      g.append(el("path", { d: `M${x} ${y}l-6 -10h-6v-16h24v16h-6z`, fill: c, stroke: "#333", "stroke-width": 0.8 }));
      const title = el("title");
      title.textContent = a.text || ""; // text, never markup
      g.append(title);
    } else if (a.kind === "rect") {
      const [x0, y0, x1, y1] = s.rect;
      g.append(el("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: c, "stroke-width": s.width }));
    } else if (a.kind === "arrow") {
      const [x0, y0] = s.from; const [x1, y1] = s.to;
      const angle = Math.atan2(y1 - y0, x1 - x0); const len = Math.max(8, s.width * 4);
      const hx = (t) => x1 - len * Math.cos(angle + t); const hy = (t) => y1 - len * Math.sin(angle + t);
      g.append(el("line", { x1: x0, y1: y0, x2: x1 - (len * 0.6) * Math.cos(angle), y2: y1 - (len * 0.6) * Math.sin(angle),
        stroke: c, "stroke-width": s.width, "stroke-linecap": "round" }));
      g.append(el("path", { d: `M${x1} ${y1}L${hx(0.45)} ${hy(0.45)}L${hx(-0.45)} ${hy(-0.45)}Z`, fill: c }));
    }
    const chip = this.chipOf(a);
    g.dataset.chip = chip.kind;
    if (a.id != null) g.append(this.chipEl(a, chip));
    return g;
  }

  // Whose mark and who sees it, drawn on the page (issue 22): my private ones carry a small "Riêng" tag, my
  // shared ones "Chia sẻ", someone else's their name, the presenter's a gold "Trình bày" tag.
  chipOf(a) {
    if (this.room.presenterId != null && a.owner_id === this.room.presenterId) {
      return { kind: "presenter", text: this.mine(a) ? "Trình bày (tôi)" : `Trình bày · ${shortName(a.owner_name)}` };
    }
    if (this.mine(a)) return a.visibility === "private" ? { kind: "private", text: "Riêng" } : { kind: "shared", text: "Chia sẻ" };
    return { kind: "other", text: shortName(a.owner_name) || "Người khác" };
  }

  chipEl(a, chip) {
    const [x0, y0] = bounds(a);
    const size = 7; const w = chip.text.length * size * 0.56 + 6;
    const y = Math.max(0, y0 - size - 5);
    const g = el("g", { class: "annot-chip", "data-chip": chip.kind, "aria-hidden": "true" });
    g.append(el("rect", { x: x0, y, width: w, height: size + 4, rx: 3 }));
    const t = el("text", { x: x0 + 3, y: y + size + 0.5, "font-size": size });
    t.textContent = chip.text; // a person's name: text, never markup
    g.append(t);
    return g;
  }

  renderList() {
    const all = [...this.anns.values()];
    this.listBtn.textContent = `Ghi chú (${all.length})`;
    const items = all.filter((a) => this.shown(a)).sort((a, b) => a.page - b.page || bounds(a)[1] - bounds(b)[1]);
    this.listEl.replaceChildren(...(items.length ? items.map((a) => this.listItem(a))
      : [h("li", { class: "muted" }, this.filter === "mine" ? "Bạn chưa có ghi chú nào trên tài liệu này."
        : "Chưa có ghi chú nào.")]));
  }

  listItem(a) {
    const mine = this.mine(a);
    const excerpt = a.text || (a.kind === "highlight" ? a.shape.quote : "") || "";
    const li = h("li", { dataset: { key: this.key(a), visibility: a.visibility } },
      h("div", { class: "annot-item-head" },
        h("span", { class: "annot-dot", style: `background:${a.color}`, "aria-hidden": "true" }),
        h("strong", {}, KIND_LABELS[a.kind] || a.kind), h("span", { class: "muted" }, ` · trang ${a.page}`),
        h("span", { class: "annot-badge", dataset: { v: a.visibility, chip: this.chipOf(a).kind } },
          (mine ? VIS_LABELS[a.visibility] : (a.owner_name || "Người khác"))
          + (this.chipOf(a).kind === "presenter" ? " · trình bày" : ""))),
      excerpt ? h("p", { class: "annot-excerpt" }, excerpt) : null); // textContent through h()
    const actions = h("div", { class: "annot-item-actions" },
      h("button", { type: "button", class: "btn btn-small", onclick: () => this.jump(a) }, "Xem"));
    if (mine) {
      const vis = h("select", { "aria-label": "Chia sẻ" }, ...Object.entries(VIS_LABELS).map(([v, label]) =>
        h("option", { value: v, selected: v === a.visibility }, label)));
      vis.addEventListener("change", () => this.changeVisibility(a, vis.value, li));
      actions.append(vis);
      if (a.kind === "note") {
        actions.append(h("button", { type: "button", class: "btn btn-small", onclick: async () => {
          const text = await this.askText(a.text);
          if (text !== null && text !== a.text) this.update(a, { text });
        } }, "Sửa"));
      }
      actions.append(h("button", { type: "button", class: "btn btn-small", onclick: () => this.remove(a) }, "Xóa"));
    } else if (this.room.controller && a.visibility === "meeting" && a.id != null) {
      actions.append(h("button", { type: "button", class: "btn btn-small annot-withdraw",
        onclick: () => this.withdraw(a) }, "Ẩn khỏi mọi người"));
    }
    li.append(actions);
    return li;
  }

  async withdraw(a) {
    try {
      await api("POST", `${this.base()}/annotations/${a.id}/withdraw`);
    } catch (err) { fail(err); return; }
    this.anns.delete(this.key(a));
    this.renderPage(a.page);
    toast(`Đã ẩn ghi chú của ${a.owner_name || "người khác"} khỏi trang chung.`);
  }

  async changeVisibility(a, visibility, li) {
    if (visibility !== "people") { this.update(a, { visibility, recipient_ids: [] }); return; }
    let people;
    try {
      people = (await api("GET", `${this.base()}/versions/${this.version}/annotations/people`)).people;
    } catch (err) { fail(err); return; }
    const chosen = new Set(a.recipient_ids || []);
    const box = h("fieldset", { class: "annot-people" }, h("legend", {}, "Chia sẻ với"),
      ...people.map((p) => h("label", {}, h("input", { type: "checkbox", value: p.id, checked: chosen.has(p.id) }),
        ` ${p.full_name}`, p.title ? h("small", { class: "muted" }, ` — ${p.title}`) : null)),
      h("button", { type: "button", class: "btn btn-small btn-primary", onclick: () => {
        const ids = [...box.querySelectorAll("input:checked")].map((i) => Number(i.value));
        if (!ids.length) { toast("Chọn ít nhất một người.", "error"); return; }
        this.update(a, { visibility: "people", recipient_ids: ids });
      } }, "Chia sẻ"));
    li.append(box);
  }

  jump(a) {
    const p = this.reader.pages[a.page - 1];
    if (!p) return;
    if (this.reader.onUserMove) this.reader.onUserMove(); // stop following the presenter
    this.reader.restore({ page: a.page, y: Math.max(0, bounds(a)[1] / p.h - 0.15), x: 0 }, true);
    const g = p.layer && p.layer.querySelector(`[data-key="${CSS.escape(this.key(a))}"]`);
    if (g) { g.classList.add("annot-flash"); setTimeout(() => g.classList.remove("annot-flash"), 1600); }
  }
}

function start() {
  const reader = window.eoReader;
  if (!reader || !document.body.dataset.userId) return;
  window.eoAnnotate = new Annotator(reader);
}

if (window.eoReader) start(); else window.addEventListener("load", start, { once: true });
