// A small hand-written SVG chart module (no third-party code): horizontal stacked bars and
// percentage bars, sized to the container's width, text in the page's font, readable on a tablet.
//
//   stackedBars(el, rows, [{key, label, color}])   rows: [{name, on_time, late, ...}]
//   rateBars(el, rows)                             rows: [{name, on_time_rate}] (percent or null)

const NS = "http://www.w3.org/2000/svg";
const ROW = 40;
const BAR = 26;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Below this width (a phone, a narrow card) a label column would leave about 110 px for names such as "Ủy ban
// nhân dân tỉnh Quảng Ninh" and cut them to "Ủy ban nhân d…": each name goes on its own line above its bar instead
// (as it does at any width when the longest name would not fit the label column).
const NARROW = 520;
const NAME_LINE = 22;

function frame(el, rows) {
  el.textContent = "";
  const width = Math.max(280, el.clientWidth || 600);
  // names on their own lines also when one would be cut in the label column (a desktop's half-width card)
  const longest = Math.max(0, ...rows.map((r) => String(r.name || "").length));
  const narrow = width < NARROW || longest > fit(Math.min(220, Math.round(width * 0.35)));
  const label = narrow ? 0 : Math.min(220, Math.round(width * 0.35));
  const row = narrow ? ROW + NAME_LINE : ROW;
  const height = Math.max(1, rows.length) * row + 28;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height });
  el.append(root);
  // top of row i's bar, and where its name is written (left of the bar, or on the line above it)
  const barY = (i) => i * row + 6 + (narrow ? NAME_LINE : 0);
  const nameAt = (i) => (narrow ? { x: 0, y: i * row + 20, "text-anchor": "start" }
    : { x: label - 8, y: barY(i) + BAR / 2 + 5, "text-anchor": "end" });
  const chars = narrow ? Math.floor(width / 8.5) : fit(label);
  return { root, width, label, plot: width - label - 56, barY, nameAt, chars };
}

// As many characters as fit left of the bars at 15 px (about 8 px each): a fixed 28 ran past the SVG's left edge.
const fit = (label) => Math.max(8, Math.min(28, Math.floor((label - 10) / 8)));

function short(text, max = 28) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function number(v, digits = 0) {
  return v.toLocaleString("vi-VN", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function empty(el, message = "Không có số liệu trong kỳ. Chọn kỳ khác (Từ ngày, Đến ngày) rồi bấm «Xem thống kê».") {
  el.textContent = "";
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = message;
  el.append(p);
}

export function stackedBars(el, rows, series) {
  if (!rows.length) { empty(el); return; }
  const { root, label, plot, barY, nameAt, chars } = frame(el, rows);
  const max = Math.max(1, ...rows.map((r) => series.reduce((s, x) => s + (r[x.key] || 0), 0)));
  rows.forEach((r, i) => {
    const y = barY(i);
    const name = svg("text", { ...nameAt(i), class: "of-chart-name" }, short(r.name, chars));
    name.append(svg("title", {}, r.name));
    root.append(name);
    let x = label;
    for (const s of series) {
      const v = r[s.key] || 0;
      if (!v) continue;
      const w = (v / max) * plot;
      const rect = svg("rect", { x, y, width: Math.max(1, w), height: BAR, fill: s.color, rx: 3 });
      rect.append(svg("title", {}, `${r.name} — ${s.label}: ${number(v)}`));
      root.append(rect);
      if (w > 22) root.append(svg("text", { x: x + w / 2, y: y + BAR / 2 + 5, "text-anchor": "middle", fill: "#fff", style: "fill:#fff" }, number(v)));
      x += w;
    }
    const total = series.reduce((s, x2) => s + (r[x2.key] || 0), 0);
    root.append(svg("text", { x: x + 6, y: y + BAR / 2 + 5 }, number(total)));
  });
  const legend = document.createElement("ul");
  legend.className = "of-legend";
  for (const s of series) {
    const li = document.createElement("li");
    const sw = document.createElement("i");
    sw.style.background = s.color;
    li.append(sw, s.label);
    legend.append(li);
  }
  el.append(legend);
}

export function rateBars(el, rows) {
  const withRate = rows.filter((r) => r.on_time_rate !== null && r.on_time_rate !== undefined);
  if (!withRate.length) {
    empty(el, "Chưa có nhiệm vụ nào hoàn thành trong kỳ, nên chưa tính được tỷ lệ đúng hạn.");
    return;
  }
  const { root, label, plot, barY, nameAt, chars } = frame(el, withRate);
  withRate.forEach((r, i) => {
    const y = barY(i);
    const rate = Math.max(0, Math.min(100, r.on_time_rate));
    const name = svg("text", { ...nameAt(i), class: "of-chart-name" }, short(r.name, chars));
    name.append(svg("title", {}, r.name));
    root.append(name);
    root.append(svg("rect", { x: label, y, width: plot, height: BAR, fill: "#ece8df", rx: 3 }));
    const color = rate >= 95 ? "#1e7b34" : rate >= 80 ? "#d97706" : "#b3261e";
    const bar = svg("rect", { x: label, y, width: Math.max(1, (rate / 100) * plot), height: BAR, fill: color, rx: 3 });
    bar.append(svg("title", {}, `${r.name}: ${number(rate, 2)}%`));
    root.append(bar);
    root.append(svg("text", { x: label + plot + 6, y: y + BAR / 2 + 5 }, `${number(rate, 2)}%`));
  });
}
