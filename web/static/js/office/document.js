// Document page: live ingest progress (text extraction) and changes on topic document:{id}, with
// the connection's state shown; a page-image viewer for PDF attachments.
import { connect, STATUS_TEXT } from "../live.js";

const root = document.querySelector("[data-document-id]");
const docId = root?.dataset.documentId;
const badge = document.getElementById("doc-live");
const changed = document.getElementById("doc-changed");

function setJob(jobId, status, progress, error) {
  const box = document.querySelector(`.of-ingest[data-job-id="${jobId}"]`);
  if (!box) return;
  box.dataset.status = status;
  const bar = box.querySelector("progress");
  const pct = box.querySelector(".of-ingest-pct");
  const label = box.querySelector(".of-ingest-label");
  if (typeof progress === "number") {
    bar.value = progress;
    pct.textContent = `${progress}%`;
  }
  if (status === "queued" && error) {  // an outage (S3, the database) interrupted it: the server retries it (#17)
    label.textContent = `Tạm dừng vì sự cố, máy chủ sẽ tự thử lại: ${error}`;
    return;
  }
  if (label.dataset.conversion !== undefined) {  // an office file or a scan: its conversion to PDF (#16)
    label.dataset.conversion = status;
    if (status === "done") label.textContent = "Đã chuyển sang PDF để xem và tìm kiếm";
    else if (status === "failed") label.textContent = error || "Chuyển đổi thất bại.";  // the reason says it
    else label.textContent = "Đang chuyển đổi sang PDF…";
  } else if (status === "done") label.textContent = "Đã trích xuất nội dung";
  else if (status === "failed") label.textContent = `Không trích xuất được nội dung${error ? ": " + error : ""}`;
  else label.textContent = "Đang trích xuất nội dung…";
}

async function refreshJobs() {
  try {
    const r = await fetch(`/api/documents/${docId}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!r.ok) return;
    const data = await r.json();
    for (const j of data.ingest_jobs || []) setJob(j.id, j.status, j.progress, j.error);
  } catch { /* offline: the socket reports it */ }
}

if (docId) {
  connect({
    topics: [`document:${docId}`],
    onStatus(state) {
      if (!badge) return;
      badge.dataset.state = state;
      badge.textContent = STATUS_TEXT[state] || state;
      if (state === "online") refreshJobs(); // anything that happened before the subscription
    },
    onEvent(ev) {
      const d = ev.data || {};
      if (ev.type === "ingest.progress") setJob(d.job_id, "running", d.progress);
      else if (ev.type === "ingest.converting") setJob(d.job_id, "running", 0);
      else if (ev.type === "ingest.done") { setJob(d.job_id, "done", 100); }
      else if (ev.type === "ingest.failed") { setJob(d.job_id, "failed"); refreshJobs(); }
      else if (ev.type === "ingest.retrying") refreshJobs();
      else if (changed) changed.hidden = false;
    },
    onSnapshot() { refreshJobs(); if (changed) changed.hidden = false; },
  });
}

// ---- viewer: server-rendered page images, loaded lazily, sized for this screen ----
const viewer = document.getElementById("viewer");
const WIDTHS = [480, 800, 1200, 1600, 2000];
let current = { id: null, pages: 0, zoom: 1 };

function bucket(px) {
  return WIDTHS.find((w) => w >= px) || WIDTHS[WIDTHS.length - 1];
}

function pageLabel() {
  const pages = viewer.querySelector(".of-viewer-pages");
  const imgs = [...pages.querySelectorAll("img")];
  const top = pages.scrollTop;
  let n = 1;
  for (const img of imgs) if (img.offsetTop - pages.offsetTop <= top + 40) n = Number(img.dataset.page);
  viewer.querySelector(".of-viewer-page").textContent = `Trang ${n} / ${current.pages}`;
  return n;
}

function render() {
  const pages = viewer.querySelector(".of-viewer-pages");
  pages.textContent = "";
  const width = Math.round(pages.clientWidth * current.zoom - 16);
  const px = bucket(width * (window.devicePixelRatio || 1));
  for (let n = 1; n <= current.pages; n += 1) {
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = `Trang ${n}`;
    img.dataset.page = String(n);
    img.style.width = `${width}px`;
    img.style.aspectRatio = "210 / 297";
    img.src = `/api/attachments/${current.id}/pages/${n}.png?width=${px}`;
    img.addEventListener("load", () => { img.style.aspectRatio = ""; }, { once: true });
    pages.append(img);
  }
  pageLabel();
}

function go(delta) {
  const pages = viewer.querySelector(".of-viewer-pages");
  const n = Math.min(current.pages, Math.max(1, pageLabel() + delta));
  const img = pages.querySelector(`img[data-page="${n}"]`);
  if (img) pages.scrollTo({ top: img.offsetTop - pages.offsetTop, behavior: "smooth" });
}

if (viewer) {
  document.querySelectorAll("[data-view]").forEach((btn) => btn.addEventListener("click", () => {
    current = { id: btn.dataset.view, pages: Number(btn.dataset.pages) || 1, zoom: 1 };
    viewer.hidden = false;
    viewer.querySelector(".of-viewer-title").textContent = btn.dataset.name;
    render();
    viewer.scrollIntoView({ behavior: "smooth", block: "start" });
    viewer.querySelector(".of-viewer-pages").focus({ preventScroll: true });
  }));
  viewer.addEventListener("click", (ev) => {
    const act = ev.target.closest("[data-act]")?.dataset.act;
    if (act === "prev") go(-1);
    else if (act === "next") go(1);
    else if (act === "in") { current.zoom = Math.min(3, current.zoom * 1.25); render(); }
    else if (act === "out") { current.zoom = Math.max(0.5, current.zoom / 1.25); render(); }
    else if (act === "close") viewer.hidden = true;
  });
  const pages = viewer.querySelector(".of-viewer-pages");
  pages.addEventListener("scroll", () => pageLabel(), { passive: true });
  pages.addEventListener("keydown", (ev) => {
    if (ev.key === "PageDown" || ev.key === "ArrowRight") { ev.preventDefault(); go(1); }
    if (ev.key === "PageUp" || ev.key === "ArrowLeft") { ev.preventDefault(); go(-1); }
  });
  let lastWidth = 0;
  window.addEventListener("resize", () => {
    if (viewer.hidden) return;
    const w = pages.clientWidth;
    if (Math.abs(w - lastWidth) > 40) { lastWidth = w; render(); } // portrait <-> landscape
  });
}
