// Tablet PDF reader: pages are images rendered by the server (PyMuPDF) at the width this screen
// needs, loaded lazily as they come near the viewport, so a 300-page document opens at page 1 at
// once. Smooth paging, pinch zoom on touch, Ctrl+wheel and keyboard on a desktop, search with
// highlights, word boxes (PDF points) for later highlight snapping, and a view position
// ({version_id, page, zoom, x, y}) that a presenter broadcasts and followers apply.
//
//   const reader = new PdfReader(root, { meetingId, onView(view, {user}) {}, onUserMove() {} });
//   ``base(versionId)``: where a document's meta, pages, words and search live (default: the meeting's versions;
//   a written consultation passes its own documents' address).
//   await reader.openVersion(versionId, page);    reader.applyView(view);    reader.view();

import { h } from "./meeting-common.js";

const GAP = 12;
const PAD = 12;
const ZOOM_MIN = 0.5;
const ZOOM_MAX = 4;
const DEFAULT_WIDTHS = [480, 800, 1200, 1600, 2400];
// Pages come as lossless WebP where the browser decodes it: the same pixels as PNG, about 3.5x fewer bytes for a
// page of text (what a room of tablets on one Wi-Fi, or a commune on a weak link, waits for). A 1x1 lossless
// WebP tells; browsers without it get PNG.
const WEBP = new Promise((resolve) => {
  const probe = new Image();
  probe.onload = () => resolve(probe.width === 1);
  probe.onerror = () => resolve(false);
  probe.src = "data:image/webp;base64,UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==";
});
let pageFormat = "";
WEBP.then((ok) => { pageFormat = ok ? "&fmt=webp" : ""; });

export class PdfReader {
  constructor(root, { meetingId, onView = () => {}, onUserMove = () => {}, toolbarExtra = [], toolbarEnd = [],
    compact = false, base = null } = {}) {
    this.root = root;
    this.meetingId = meetingId;
    this.base = base || ((versionId) => `/api/meetings/${this.meetingId}/versions/${versionId}`);
    this.onView = onView;
    this.onUserMove = onUserMove;
    this.meta = null;
    this.zoom = 1;
    this.current = 1;
    this.pages = [];
    this.tops = [];
    this.hits = [];
    this.hitIndex = -1;
    this.programmatic = 0;
    this.compact = compact;
    this.build(toolbarExtra, toolbarEnd);
  }

  // ------------------------------------------------------------------ DOM

  build(extra, toolbarEnd = []) {
    const btn = (label, title, fn, attrs = {}) =>
      h("button", { class: "btn btn-small", type: "button", title, "aria-label": title, onclick: fn, ...attrs }, label);
    this.titleEl = h("span", { class: "title" });
    this.pageInput = h("input", { type: "number", min: 1, value: 1, inputmode: "numeric", "aria-label": "Trang",
                                  class: "reader-pageinput" });
    this.pageTotal = h("span", {}, "/ 0");
    this.zoomLabel = h("span", { class: "reader-pageno" }, "100%");
    this.searchInput = h("input", { type: "search", placeholder: "Tìm trong tài liệu", "aria-label": "Tìm trong tài liệu" });
    this.searchInfo = h("span", { class: "reader-pageno", "aria-live": "polite" });
    const paging = [
      btn("◀", "Trang trước", () => this.step(-1)),
      h("span", { class: "reader-pageno" }, this.pageInput, " ", this.pageTotal),
      btn("▶", "Trang sau", () => this.step(1)),
    ];
    const zoom = [
      btn("−", "Thu nhỏ", () => this.setZoom(this.zoom / 1.25)),
      this.zoomLabel,
      btn("+", "Phóng to", () => this.setZoom(this.zoom * 1.25)),
      btn("↔", "Vừa khung", () => this.setZoom(1)),
    ];
    const search = h("form", { role: "search", class: "reader-search", onsubmit: (e) => { e.preventDefault(); this.onSearch(); } },
      this.searchInput, btn("▲", "Kết quả trước", () => this.nextHit(-1)), btn("▼", "Kết quả sau", () => this.nextHit(1)),
      this.searchInfo);
    if (this.compact) {
      // The room (issue 22): the bar keeps what is used all the time (paging, following the presenter); zoom and
      // search sit in the "⋯ Thêm" menu, so the bar fits a tablet's centre column instead of scrolling sideways.
      this.moreMenu = h("div", { class: "reader-more", id: "reader-more", role: "group", "aria-label": "Công cụ khác", hidden: true },
        h("div", { class: "reader-more-row reader-doc-only" }, ...zoom), h("div", { class: "reader-more-row reader-doc-only" }, search));
      this.moreBtn = h("button", { class: "btn btn-small reader-more-btn", type: "button", "aria-expanded": "false",
        "aria-controls": "reader-more", onclick: () => this.toggleMore() }, "⋯ Thêm");
      this.bar = h("div", { class: "reader-bar", role: "toolbar", "aria-label": "Đọc tài liệu" },
        this.titleEl, ...paging, ...extra, this.moreBtn, ...toolbarEnd);
      for (const el of paging) el.classList.add("reader-doc-only");
      document.addEventListener("click", (e) => {
        if (!this.moreMenu.hidden && !this.moreMenu.contains(e.target) && !this.moreBtn.contains(e.target)) this.toggleMore(false);
      });
      document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !this.moreMenu.hidden) this.toggleMore(false); });
    } else {
      this.bar = h("div", { class: "reader-bar" }, this.titleEl, ...paging, ...zoom, search, ...extra, ...toolbarEnd);
      // paging, zoom and search act on an open document: hidden (via .is-empty) until one is open
      for (const el of [...paging, ...zoom, search]) el.classList.add("reader-doc-only");
    }
    this.pagesEl = h("div", { class: "reader-pages" });
    this.scroller = h("div", { class: "reader-scroll", tabindex: "0", "aria-label": "Trang tài liệu" }, this.pagesEl);
    this.root.replaceChildren(this.bar, ...(this.moreMenu ? [this.moreMenu] : []), this.scroller);
    // where the list is: below the agenda (in portrait that box scrolls, and the heading may be out of sight)
    this.empty("Chọn một tài liệu trong mục «Tài liệu», dưới chương trình họp, để đọc.");

    this.pageInput.addEventListener("change", () => this.goTo(Number(this.pageInput.value) || 1, { user: true }));
    this.scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    this.scroller.addEventListener("keydown", (e) => this.onKey(e));
    this.scroller.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    for (const type of ["touchstart", "pointerdown", "wheel"]) {
      this.scroller.addEventListener(type, () => this.userActivity(), { passive: true });
    }
    this.setupPinch();
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) this.load(Number(entry.target.dataset.page));
    }, { root: this.scroller, rootMargin: "100% 0px 100% 0px" });
    this.resizeObserver = new ResizeObserver(() => {
      // only the width matters for the layout (a toolbar wrapping onto two lines changes the height)
      const width = this.scroller.clientWidth;
      if (this.meta && width !== this.lastWidth) { this.lastWidth = width; this.layout(true); }
    });
    this.resizeObserver.observe(this.scroller);
  }

  toggleMore(open = this.moreMenu.hidden) {
    this.moreMenu.hidden = !open;
    this.moreBtn.setAttribute("aria-expanded", String(open));
  }

  /** Put a control in the "⋯ Thêm" menu (compact bar) or, without one, at the end of the bar. */
  addMore(...els) {
    if (this.moreMenu) this.moreMenu.append(h("div", { class: "reader-more-row" }, ...els));
    else this.bar.append(...els);
  }

  empty(message) {
    this.meta = null;
    this.pages = [];
    this.pagesEl.replaceChildren(h("p", { class: "reader-empty" }, message));
    // no document: say where to pick one instead of a blank title and a "/ 0" page counter
    this.titleEl.textContent = "Chọn tài liệu trong chương trình họp";
    this.titleEl.title = "";
    this.titleEl.classList.add("placeholder");
    this.pageTotal.textContent = "";
    this.bar.classList.add("is-empty");
  }

  // ------------------------------------------------------------------ opening

  url(path) {
    return `${this.base(this.meta.id)}${path}`;
  }

  async openVersion(versionId, page = 1) {
    if (this.meta && this.meta.id === versionId) { this.goTo(page, { smooth: true }); return true; }
    const [res] = await Promise.all([fetch(this.base(versionId), { credentials: "same-origin" }), WEBP]);
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      this.empty(res.status === 403 ? "Tài liệu thuộc nội dung mật: bạn không có quyền xem." : (body.message || "Không mở được tài liệu."));
      return false;
    }
    this.open(await res.json(), page);
    return true;
  }

  open(meta, page = 1) {
    this.meta = meta;
    this.widths = meta.widths || DEFAULT_WIDTHS;
    this.hits = [];
    this.hitIndex = -1;
    this.searchInfo.textContent = "";
    this.titleEl.textContent = meta.title;
    this.titleEl.title = meta.title;
    this.titleEl.classList.remove("placeholder");
    this.bar.classList.remove("is-empty");
    this.pageTotal.textContent = `/ ${meta.page_count}`;
    this.pageInput.max = meta.page_count;
    this.observer.disconnect();
    this.pages = meta.page_sizes.map(([w, hgt], i) => {
      const el = h("div", { class: "reader-page", dataset: { page: i + 1 }, role: "img", "aria-label": `Trang ${i + 1}` },
        h("span", { class: "pno" }, String(i + 1)));
      return { el, w, h: hgt, img: null, bucket: 0 };
    });
    this.pagesEl.replaceChildren(...this.pages.map((p) => p.el));
    this.layout(false);
    for (const p of this.pages) this.observer.observe(p.el);
    this.current = 0;
    this.goTo(page, { smooth: false });
    this.root.dispatchEvent(new CustomEvent("reader:open", { detail: meta }));
  }

  baseWidth() {
    return Math.max(200, this.scroller.clientWidth - 2 * PAD);
  }

  layout(keepPosition) {
    if (!this.meta) return;
    this.lastWidth = this.scroller.clientWidth;
    const anchor = keepPosition ? (this.target || this.position()) : null;
    const base = this.baseWidth();
    const widest = Math.max(...this.pages.map((p) => p.w));
    let top = PAD;
    this.tops = [];
    for (const p of this.pages) {
      const width = Math.round(base * this.zoom * (p.w / widest));
      const height = Math.round(width * p.h / p.w);
      p.el.style.width = `${width}px`;
      p.el.style.height = `${height}px`;
      p.cssWidth = width;
      p.cssHeight = height;
      this.tops.push(top);
      top += height + GAP;
      if (p.img) this.ensureResolution(p);
    }
    this.zoomLabel.textContent = `${Math.round(this.zoom * 100)}%`;
    if (anchor) this.restore(anchor);
  }

  bucketFor(cssWidth) {
    const want = cssWidth * (window.devicePixelRatio || 1);
    for (const w of this.widths) if (want <= w) return w;
    return this.widths[this.widths.length - 1];
  }

  load(n) {
    const p = this.pages[n - 1];
    if (!p) return;
    this.ensureResolution(p);
  }

  ensureResolution(p) {
    const bucket = this.bucketFor(p.cssWidth || 800);
    if (p.bucket >= bucket) return;
    const page = this.pages.indexOf(p) + 1;
    const img = new Image();
    img.alt = `Trang ${page}`;
    img.decoding = "async";
    img.draggable = false;
    img.src = this.url(`/pages/${page}?w=${bucket}${pageFormat}`);
    p.bucket = bucket;
    const place = () => {
      if (p.img) p.img.replaceWith(img); else p.el.prepend(img);
      p.img = img;
    };
    if (p.img) img.decode().then(place, place); else place();
  }

  // ------------------------------------------------------------------ position

  pageAt(y) {
    let lo = 0; let hi = this.tops.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.tops[mid] <= y) lo = mid; else hi = mid - 1;
    }
    return lo + 1;
  }

  position() {
    const probe = this.scroller.scrollTop + Math.min(this.scroller.clientHeight / 3, 200);
    const page = this.pageAt(probe);
    const p = this.pages[page - 1];
    const y = p ? (this.scroller.scrollTop - this.tops[page - 1]) / p.cssHeight : 0;
    const maxX = this.scroller.scrollWidth - this.scroller.clientWidth;
    return { page, y: Math.min(1, Math.max(0, y)), x: maxX > 0 ? this.scroller.scrollLeft / maxX : 0 };
  }

  restore({ page, y = 0, x = 0 }, smooth = false) {
    const p = this.pages[page - 1];
    if (!p) return;
    this.programmatic += 1;
    const top = this.tops[page - 1] + y * p.cssHeight;
    const maxX = this.scroller.scrollWidth - this.scroller.clientWidth;
    // where we are going: a re-layout during a smooth scroll aims here, not at the half-way point
    const target = this.target = { page, y, x };
    this.scroller.scrollTo({ top, left: maxX > 0 ? x * maxX : 0, behavior: smooth ? "smooth" : "auto" });
    this.setCurrent(page);
    setTimeout(() => {
      this.programmatic = Math.max(0, this.programmatic - 1);
      if (this.target === target) this.target = null;
    }, smooth ? 700 : 80);
  }

  view() {
    if (!this.meta) return null;
    const pos = this.position();
    return { version_id: this.meta.id, page: pos.page, zoom: Math.round(this.zoom * 1000) / 1000,
             x: Math.round(pos.x * 1e4) / 1e4, y: Math.round(pos.y * 1e4) / 1e4 };
  }

  goTo(page, { smooth = true, user = false } = {}) {
    if (!this.meta) return;
    page = Math.min(this.meta.page_count, Math.max(1, Math.round(page)));
    if (user) this.onUserMove(); // before the programmatic scroll starts
    this.restore({ page, y: 0 }, smooth);
    this.emitView(user);
  }

  step(delta) {
    // from where the reader is going (a smooth scroll may still be under way), not where it passes by
    const from = this.target ? this.target.page : this.current || this.position().page;
    this.goTo(from + delta, { user: true });
  }

  setCurrent(page) {
    if (page === this.current) return;
    this.current = page;
    this.pageInput.value = page;
    this.root.dispatchEvent(new CustomEvent("reader:page", { detail: { page } }));
  }

  setZoom(zoom, { user = true, anchor = null } = {}) {
    if (!this.meta) return;
    const z = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, zoom));
    const pos = anchor || this.position();
    if (user) this.onUserMove();
    this.zoom = z;
    this.layout(false);
    this.restore(pos);
    this.emitView(user);
  }

  async applyView(v) {
    if (!v || !v.version_id) return;
    if (!this.meta || this.meta.id !== v.version_id) {
      if (!(await this.openVersion(v.version_id, v.page || 1))) return;
    }
    if (v.zoom && Math.abs(v.zoom - this.zoom) > 0.001) {
      this.zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, v.zoom));
      this.layout(false);
    }
    this.restore({ page: v.page || 1, y: v.y || 0, x: v.x || 0 }, true);
  }

  // ------------------------------------------------------------------ events

  userActivity() {
    if (!this.programmatic) this.onUserMove();
  }

  onScroll() {
    if (this.scrollRaf) return;
    this.scrollRaf = requestAnimationFrame(() => {
      this.scrollRaf = null;
      if (!this.meta) return;
      this.setCurrent(this.target ? this.target.page : this.position().page);
    });
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.emitView(!this.programmatic), 150);
  }

  emitView(user) {
    const v = this.view();
    if (v) this.onView(v, { user });
  }

  onKey(e) {
    if (!this.meta || e.target !== this.scroller) return;
    const keys = { ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 };
    if (e.key in keys) { e.preventDefault(); this.step(keys[e.key]); return; }
    if (e.key === "Home") { e.preventDefault(); this.goTo(1, { user: true }); return; }
    if (e.key === "End") { e.preventDefault(); this.goTo(this.meta.page_count, { user: true }); return; }
    if (e.key === "+" || e.key === "=") { e.preventDefault(); this.setZoom(this.zoom * 1.25); return; }
    if (e.key === "-") { e.preventDefault(); this.setZoom(this.zoom / 1.25); return; }
    if (e.key === "0") { e.preventDefault(); this.setZoom(1); }
  }

  onWheel(e) {
    if (!e.ctrlKey || !this.meta) return; // plain wheel scrolls; Ctrl+wheel (and trackpad pinch) zooms
    e.preventDefault();
    this.setZoom(this.zoom * Math.exp(-e.deltaY / 300));
  }

  setupPinch() {
    let start = null;
    const dist = (t) => Math.hypot(t[0].clientX - t[1].clientX, t[0].clientY - t[1].clientY);
    this.scroller.addEventListener("touchstart", (e) => {
      if (e.touches.length !== 2 || !this.meta) return;
      const rect = this.scroller.getBoundingClientRect();
      const mx = (e.touches[0].clientX + e.touches[1].clientX) / 2 - rect.left;
      const my = (e.touches[0].clientY + e.touches[1].clientY) / 2 - rect.top;
      start = { d: dist(e.touches), mx, my, left: this.scroller.scrollLeft, top: this.scroller.scrollTop, scale: 1 };
      this.pagesEl.style.transformOrigin = `${start.left + mx}px ${start.top + my}px`;
    }, { passive: true });
    this.scroller.addEventListener("touchmove", (e) => {
      if (!start || e.touches.length !== 2) return;
      e.preventDefault();
      const raw = dist(e.touches) / start.d;
      start.scale = Math.min(ZOOM_MAX / this.zoom, Math.max(ZOOM_MIN / this.zoom, raw));
      this.pagesEl.style.transform = `scale(${start.scale})`;
    }, { passive: false });
    const end = () => {
      if (!start) return;
      const s = start.scale;
      const { mx, my, left, top } = start;
      start = null;
      this.pagesEl.style.transform = "";
      if (Math.abs(s - 1) < 0.02) return;
      // keep the content point under the fingers where it was
      const cx = left + mx; const cy = top + my;
      this.zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, this.zoom * s));
      this.onUserMove();
      this.layout(false);
      this.programmatic += 1;
      this.scroller.scrollTo({ left: cx * s - mx, top: cy * s - my });
      setTimeout(() => { this.programmatic = Math.max(0, this.programmatic - 1); }, 80);
      this.emitView(true);
    };
    this.scroller.addEventListener("touchend", end);
    this.scroller.addEventListener("touchcancel", end);
  }

  // ------------------------------------------------------------------ words and search

  async words(page) {
    const res = await fetch(this.url(`/pages/${page}/words`), { credentials: "same-origin" });
    if (!res.ok) throw new Error("Không tải được vị trí chữ của trang.");
    return res.json();
  }

  async onSearch() {
    const q = this.searchInput.value.trim();
    if (!this.meta) return;
    if (this.lastQuery === q && this.hits.length) { this.nextHit(1); return; }
    this.lastQuery = q;
    this.clearHits();
    if (!q) return;
    this.searchInfo.textContent = "Đang tìm…";
    const res = await fetch(this.url(`/search?q=${encodeURIComponent(q)}`), { credentials: "same-origin" });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) { this.searchInfo.textContent = data.message || "Lỗi tìm kiếm"; return; }
    this.hits = data.hits;
    for (const [i, hit] of this.hits.entries()) {
      const p = this.pages[hit.page - 1];
      for (const [x0, y0, x1, y1] of hit.rects) {
        p.el.append(h("div", { class: "hit", dataset: { hit: i }, style:
          `left:${x0 / p.w * 100}%;top:${y0 / p.h * 100}%;width:${(x1 - x0) / p.w * 100}%;height:${(y1 - y0) / p.h * 100}%` }));
      }
    }
    this.searchInfo.textContent = data.total ? `${data.total} kết quả` : "Không thấy";
    if (this.hits.length) { this.hitIndex = -1; this.nextHit(1); }
  }

  clearHits() {
    for (const el of this.pagesEl.querySelectorAll(".hit")) el.remove();
    this.hits = [];
    this.hitIndex = -1;
    this.searchInfo.textContent = "";
  }

  nextHit(delta) {
    if (!this.hits.length) return;
    this.hitIndex = (this.hitIndex + delta + this.hits.length) % this.hits.length;
    const hit = this.hits[this.hitIndex];
    for (const el of this.pagesEl.querySelectorAll(".hit")) el.dataset.active = String(Number(el.dataset.hit) === this.hitIndex);
    const p = this.pages[hit.page - 1];
    const y = Math.max(0, hit.rects[0][1] / p.h - 0.1);
    this.onUserMove();
    this.restore({ page: hit.page, y }, true);
    this.searchInfo.textContent = `${this.hitIndex + 1}/${this.hits.length}`;
  }
}
