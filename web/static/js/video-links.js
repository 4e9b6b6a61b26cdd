// The chair's panel of the sites' link quality (đường truyền): loss, round trip and bitrate of each connected
// site as the media server measures them (GET /api/meetings/{id}/video/links), refreshed every few seconds.
// Shown to the chair and the secretary only; says when it cannot refresh (offline) and retries.

import { api, h, readState } from "./meeting-common.js";

const REFRESH_MS = 3000;
const QUALITY_CLASS = { "tốt": "q-good", "trung bình": "q-fair", "kém": "q-poor" };

function cell(value, unit = "") {
  return value === null || value === undefined ? "—" : `${value}${unit}`;
}

export class LinkPanel {
  constructor(root, meetingId) {
    this.meetingId = meetingId;
    this.status = h("p", { class: "links-status", role: "status", "aria-live": "polite" }, "Đang tải…");
    this.body = h("tbody");
    this.table = h("table", { class: "links-table" },
      h("caption", {}, "Chất lượng đường truyền các điểm cầu"),
      h("thead", {}, h("tr", {},
        ...["Điểm cầu", "Mất gói", "Trễ khứ hồi", "Tốc độ nhận", "Ước lượng", "Video / âm thanh", "Đánh giá"]
          .map((t) => h("th", { scope: "col" }, t)))),
      this.body);
    this.summary = h("summary", {}, "Đường truyền các điểm cầu");
    this.root = h("details", { class: "links-panel", id: "video-links" }, this.summary, this.status, this.table);
    root.append(this.root);
    this.timer = null;
    this.refresh();
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      const data = await api("GET", `/api/meetings/${this.meetingId}/video/links`);
      this.render(data.sites || []);
      this.root.dataset.state = "online";
    } catch (err) {
      if (err && err.status === 403) { this.root.remove(); return; }
      this.root.dataset.state = "offline";
      this.status.textContent = "Không cập nhật được chất lượng đường truyền, đang thử lại…";
    }
    this.timer = setTimeout(() => this.refresh(), document.hidden ? 4 * REFRESH_MS : REFRESH_MS);
  }

  render(sites) {
    const now = new Date().toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" });
    this.status.textContent = sites.length
      ? `Cập nhật lúc ${now}`
      : "Chưa có điểm cầu nào kết nối video.";
    const poor = sites.filter((s) => s.quality === "kém").length;
    this.summary.textContent = `Đường truyền các điểm cầu${poor ? ` (${poor} điểm cầu kém)` : ""}`;
    this.root.classList.toggle("has-poor", poor > 0);
    this.body.replaceChildren(...sites.map((s) => h("tr", { dataset: { participant: s.id } },
      h("th", { scope: "row" }, s.name || s.id),
      h("td", { dataset: { field: "loss" } }, cell(s.loss_pct, " %")),
      h("td", { dataset: { field: "rtt" } }, cell(s.rtt_ms, " ms")),
      h("td", { dataset: { field: "bitrate" } }, cell(s.sent_kbps, " kbit/s")),
      h("td", {}, cell(s.available_kbps, " kbit/s")),
      h("td", {}, `${cell(s.video_forwarded)} / ${cell(s.audio_forwarded)}`),
      h("td", { class: QUALITY_CLASS[s.quality] || "", dataset: { field: "quality" } }, s.quality || "—"))));
  }
}

const panelRoot = document.getElementById("video");
let snapshot = null;
try { snapshot = readState(); } catch { /* no state: no panel */ }
if (panelRoot && snapshot?.me?.controller) {
  const meetingId = Number(panelRoot.dataset.meeting);
  window.eofficeLinks = new LinkPanel(panelRoot, meetingId);
}
