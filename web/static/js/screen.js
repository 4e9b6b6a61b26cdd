// The room screen (issue 20): a read-only wall display at 1920x1080 following the meeting live.
// The server sends the whole screen state (meetings.screen.view) after every change in the room, over
// /ws/screen/{token} as "snapshot" frames (live.js reconnects, answers pings and stops on 4401: the link was
// reset). Here it is only drawn: the current item, the page the presenter shows, the speaker and their clock,
// the poll's count and published result, the quorum.

import { connect } from "./live.js";
import { barChart } from "./chart.js";
import { h, readState, TZ } from "./meeting-common.js";
import { clockLabel, clockText, delegationLeft, delegationText, speakingClock } from "./speaking-clock.js";
import { pollBars, tallyBars, verdictOf } from "./voting.js";

const root = document.getElementById("screen");
const token = root.dataset.token;
const $ = (id) => document.getElementById(id);
// replaceChildren() would write a left-out part (null) as the text "null"
const fill = (box, ...parts) => box.replaceChildren(...parts.flat().filter((x) => x !== null && x !== undefined && x !== false));
let S = readState("screen-state");
let offset = Date.parse(S.server_time) - Date.now();
const clockFmt = new Intl.DateTimeFormat("vi-VN", { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false });

function renderQuorum() {
  const q = S.quorum;
  fill($("sc-quorum"), h("span", { class: "sc-q-label" }, "Có mặt"),
    h("strong", { id: "sc-present" }, `${q.present}/${q.entitled}`),
    h("span", { class: `sc-q-met ${q.met ? "ok" : "no"}` }, q.met ? "Đủ túc số" : `Chưa đủ túc số (cần ${q.needed})`));
}

function renderItem() {
  const it = S.item;
  const box = $("sc-item");
  box.dataset.confidential = String(Boolean(it && it.confidential));
  if (!it) {
    fill(box, h("p", { class: "sc-item-title muted" },
      S.meeting.state === "in_progress" ? "Chưa vào nội dung nào" : S.meeting.state_label));
    return;
  }
  fill(box, h("p", { class: "sc-item-no" }, `Nội dung ${it.number}/${S.items}`),
    h("h2", { class: "sc-item-title", id: "sc-item-title" }, it.title),
    it.presenter_name ? h("p", { class: "sc-item-presenter" }, `Trình bày: ${it.presenter_name}`) : null);
}

let shownPage = "";
function renderPage() {
  const p = S.presenter;
  const box = $("sc-page");
  const key = p ? `${p.version_id}/${p.page}` : "";
  if (key === shownPage) return;
  shownPage = key;
  if (!p) {
    fill(box, h("p", { class: "sc-page-empty" },
      S.item && S.item.confidential ? "Nội dung mật" : "Không có tài liệu đang trình chiếu"));
    return;
  }
  const width = Math.min(2400, Math.round(box.clientWidth * (window.devicePixelRatio || 1))) || 1600;
  fill(box,
    h("img", { id: "sc-page-img", alt: `Trang ${p.page}/${p.page_count}`, dataset: { version: p.version_id, page: p.page },
      src: `/screen/${encodeURIComponent(token)}/versions/${p.version_id}/pages/${p.page}?w=${width}` }),
    h("p", { class: "sc-page-no" }, `Trang ${p.page}/${p.page_count}`));
}

function renderSpeaker() {
  const sp = S.speaking;
  const box = $("sc-speaker");
  if (!sp) {
    fill(box, h("h3", {}, "Phát biểu"), h("p", { class: "muted sc-none" }, "Chưa có người phát biểu"),
      S.queue.length ? h("p", { class: "sc-next" }, `Tiếp theo: ${S.queue.slice(0, 3).join(", ")}`) : null);
    return;
  }
  fill(box, h("h3", {}, "Đang phát biểu"), h("p", { class: "sc-speaker-name", id: "sc-speaker-name" }, sp.name),
    h("p", { class: "sc-clock-label", id: "sc-clock-label" }),
    h("p", { class: "sc-countdown", id: "sc-countdown", role: "timer" }),
    sp.delegation ? h("p", { class: "sc-delegation", id: "sc-delegation" }) : null,
    sp.question ? h("p", { class: "sc-question", id: "sc-question" }, h("span", { class: "muted" }, "Câu hỏi: "), sp.question) : null,
    S.queue.length ? h("p", { class: "sc-next" }, `Tiếp theo: ${S.queue.slice(0, 3).join(", ")}`) : null);
  tick();
}

function renderPoll() {
  const p = S.poll;
  const box = $("sc-poll");
  box.hidden = !p;
  if (!p) { fill(box); return; }
  if (p.restricted) {
    fill(box, h("h3", {}, "Biểu quyết"), h("p", { class: "sc-poll-title" }, "Nội dung mật"));
    return;
  }
  const parts = [h("h3", {}, p.state === "open" ? "Đang biểu quyết" : "Biểu quyết"),
    h("p", { class: "sc-poll-title", id: "sc-poll-title" }, p.title)];
  if (p.state === "published" && p.result) {
    const r = p.result;
    const chart = h("div", { class: "sc-chart" });
    parts.push(h("p", { class: `sc-verdict ${r.passed ? "pass" : "fail"}`, id: "sc-verdict" }, verdictOf(p)),
      r.headline ? h("p", { class: "sc-headline", id: "sc-headline" }, r.headline) : null,
      p.rule_label ? h("p", { class: "sc-rule" }, `Điều kiện thông qua: ${p.rule_label}` +
        (p.tie_rule ? `. ${p.tie_rule_label}.` : ".")) : null, chart);
    fill(box, ...parts);
    barChart(chart, { title: "Kết quả biểu quyết", bars: pollBars(p) });
    return;
  }
  parts.push(h("p", { class: "sc-count" }, h("span", {}, "Đã bỏ phiếu "),
    h("strong", { id: "sc-cast" }, `${p.cast}/${p.eligible}`)));
  if (p.state !== "open") parts.push(h("p", { class: "sc-rule" }, "Đã kết thúc bỏ phiếu, chờ công bố kết quả."));
  const chart = p.tally && p.state === "open" ? h("div", { class: "sc-chart" }) : null;
  fill(box, ...parts, chart);
  if (chart) barChart(chart, { title: "Kết quả tạm thời", bars: tallyBars(p) });
}

function tick() {
  $("sc-clock").textContent = clockFmt.format(new Date(Date.now() + offset));
  const el = $("sc-countdown");
  if (!el || !S.speaking) return;
  const c = speakingClock(S.speaking, Date.now() + offset);
  el.textContent = clockText(c);
  el.dataset.over = String(c.over);
  el.dataset.paused = String(c.paused);
  $("sc-clock-label").textContent = clockLabel(c);
  const d = $("sc-delegation");
  if (d) {
    d.textContent = delegationText(S.speaking, c);
    d.dataset.over = String((delegationLeft(S.speaking, c) ?? 0) < 0);
  }
}

function render() {
  $("sc-meeting").textContent = S.meeting.title;
  renderQuorum();
  renderItem();
  renderPage();
  renderSpeaker();
  renderPoll();
}

render();
setInterval(tick, 250);

connect({
  url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/screen/${encodeURIComponent(token)}`,
  onSnapshot(_topic, data) {
    S = data;
    offset = Date.parse(S.server_time) - Date.now();
    render();
  },
  onStatus(status, code) {
    root.dataset.live = status;
    $("sc-offline").hidden = status === "online" || code === 4401;
    if (code === 4401) { $("sc-ended").hidden = false; root.dataset.live = "ended"; }
  },
});
