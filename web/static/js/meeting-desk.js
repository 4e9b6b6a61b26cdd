// The control desk of a running meeting (issue #17): polls GET /api/meetings/{id}/desk every few seconds and
// redraws the tablets (online / dropped at what time), the sites' links, the open polls' cast / entitled counts
// and the services' health. Says when it cannot refresh and keeps trying.

import { TZ, api, h } from "./meeting-common.js";

const root = document.getElementById("desk");
const meetingId = root.dataset.meeting;
const refreshMs = Number(root.dataset.refresh || 3) * 1000;
const status = document.getElementById("desk-status");
const SERVICE = { database: "Cơ sở dữ liệu", broker: "Máy chủ sự kiện (Redis)" };
const STATUS = { online: "Đang kết nối", dropped: "Mất kết nối", offline: "Chưa kết nối" };

function time(iso) {
  return new Date(iso).toLocaleTimeString("vi-VN", { timeZone: TZ });
}

function cell(value, unit = "") {
  return value === null || value === undefined ? "—" : `${value}${unit}`;
}

function render(s) {
  document.getElementById("desk-services").replaceChildren(...Object.entries(s.services).map(([name, c]) =>
    h("li", { class: c.ok ? "ok" : "bad", dataset: { service: name } },
      `${SERVICE[name] || name}: ${c.ok ? "hoạt động" : `lỗi (${c.error || ""})`} · ${c.ms} ms`)));
  const polls = document.getElementById("desk-polls");
  polls.replaceChildren(...(s.polls.length ? s.polls.map((p) => h("div", { class: "desk-poll", dataset: { poll: p.poll_id } },
    h("p", {}, h("strong", {}, p.title)),
    h("progress", { max: p.eligible || 1, value: p.cast }),
    h("p", { class: "desk-count" }, `Đã bỏ phiếu ${p.cast}/${p.eligible}`))) : [h("p", { class: "muted" }, "Không có biểu quyết đang mở.")]));
  const online = s.tablets.filter((t) => t.status === "online").length;
  const dropped = s.tablets.filter((t) => t.status === "dropped").length;
  document.getElementById("desk-tablet-summary").textContent = `${online} đang kết nối, ${dropped} mất kết nối`;
  document.getElementById("desk-tablets").replaceChildren(...s.tablets.map((t) => h("tr", { class: `t-${t.status}`, dataset: { user: t.user_id } },
    h("th", { scope: "row" }, t.name, t.title ? h("small", {}, ` · ${t.title}`) : null),
    h("td", {}, t.role_label || "—"),
    h("td", {}, t.status === "dropped" ? `${STATUS.dropped} lúc ${time(t.dropped_at)}`
      : t.status === "online" ? `${STATUS.online}${t.connections > 1 ? ` (${t.connections} thiết bị)` : ""}` : STATUS.offline))));
  document.getElementById("desk-sites").replaceChildren(...s.sites.map((site) => h("tr", { dataset: { site: site.id } },
    h("th", { scope: "row" }, site.name),
    ...(site.link ? [h("td", {}, cell(site.link.loss_pct, " %")), h("td", {}, cell(site.link.rtt_ms, " ms")),
      h("td", {}, cell(site.link.sent_kbps, " kbit/s")), h("td", {}, site.link.quality || "—")]
      : [h("td", { colspan: 4 }, "Chưa kết nối video")]))));
  status.textContent = `Cập nhật lúc ${time(s.at)}`;
}

async function refresh() {
  try {
    render(await api("GET", `/api/meetings/${meetingId}/desk`));
    root.dataset.live = "online";
  } catch (err) {
    if (err && err.status === 403) { status.textContent = "Bạn không còn quyền xem bàn điều khiển."; return; }
    root.dataset.live = "offline";
    status.textContent = "Mất kết nối — đang thử lại…";
  }
  setTimeout(refresh, document.hidden ? 4 * refreshMs : refreshMs);
}

render(JSON.parse(document.getElementById("desk-state").textContent));
setTimeout(refresh, refreshMs);
