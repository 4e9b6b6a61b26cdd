// A small horizontal bar chart drawn as SVG (no library, works offline on closed networks).
//
//   barChart(container, {
//     title: "Kết quả biểu quyết",
//     bars: [{ label: "Tán thành", value: 12, highlight: true }, ...],
//     total: 15,            // optional: percentages are of this (default: the sum of the bars)
//   });
//
// Each bar shows its label, its value and its share. The SVG has role="img" and a text summary
// for screen readers; a <table> with the same numbers is kept for those who want the figures.

const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#b3261e", "#1a56db", "#1e7b34", "#a15c00", "#6b21a8", "#0f766e", "#9d174d", "#374151"];
// The standard answers of a yes/no vote keep their meaning whatever their order: "Tán thành" was drawn in the first
// palette colour, red, next to a green "ĐƯỢC THÔNG QUA". A bar's own colour still wins.
const ANSWER_COLORS = { "Tán thành": "#1e7b34", "Không tán thành": "#b3261e", "Không biểu quyết": "#6b7280" };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function percent(value, total) {
  if (!total) return "0%";
  const p = (100 * value) / total;
  return `${p.toLocaleString("vi-VN", { maximumFractionDigits: 1 })}%`;
}

export function barChart(container, options = {}) {
  // Drawn at the container's own width, so the text keeps its size in a narrow side panel and on a
  // wide screen alike; redrawn when the width changes (a hidden tab shown, a tablet rotated).
  const draw = () => {
    const width = Math.max(280, Math.round(container.clientWidth || 640));
    if (container._chartWidth === width && container.firstChild) return;
    container._chartWidth = width;
    render(container, options, width);
  };
  container._chartWidth = null;
  draw();
  if (typeof ResizeObserver !== "undefined" && !container._chartObserver) {
    container._chartObserver = new ResizeObserver(() => draw());
    container._chartObserver.observe(container);
  }
  return container.querySelector("svg");
}

function render(container, { title = "", bars = [], total = null, colors = COLORS } = {}, width = 640) {
  const sum = total ?? bars.reduce((s, b) => s + (Number(b.value) || 0), 0);
  const max = Math.max(1, ...bars.map((b) => Number(b.value) || 0));
  const rowH = 56;
  const valueW = 110; // room for "12 · 80%" at the end of the row
  const pad = 8;
  const height = bars.length * rowH + pad * 2;
  const track = width - valueW - 10;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "bar-chart",
    "aria-label": `${title}: ` + bars.map((b) => `${b.label} ${b.value} (${percent(b.value, sum)})`).join("; "),
  });
  svg.style.maxWidth = "100%";
  svg.style.height = "auto";
  if (title) svg.appendChild(el("title", {}, title));
  bars.forEach((b, i) => {
    const y = pad + i * rowH;
    const value = Number(b.value) || 0;
    const barW = Math.round((track * value) / max);
    const color = b.color || ANSWER_COLORS[b.label] || colors[i % colors.length];
    const g = el("g", { "data-label": b.label, "data-value": value });
    g.appendChild(el("text", { x: 0, y: y + 17, "font-size": 16, "font-weight": b.highlight ? 700 : 400,
                               fill: "#1d1f23" }, (b.highlight ? "✓ " : "") + b.label));
    g.appendChild(el("rect", { x: 0, y: y + 24, width: track, height: 22, rx: 4, fill: "#eee9df" }));
    g.appendChild(el("rect", { x: 0, y: y + 24, width: Math.max(value ? 3 : 0, barW), height: 22, rx: 4,
                               fill: color, class: "bar" }));
    g.appendChild(el("text", { x: width - valueW + 4, y: y + 41, "font-size": 16, "font-weight": 700,
                               fill: "#1d1f23" }, `${value} · ${percent(value, sum)}`));
    svg.appendChild(g);
  });
  const table = document.createElement("table");
  table.className = "chart-figures";
  const cap = document.createElement("caption");
  cap.textContent = title || "Số liệu";
  table.appendChild(cap);
  for (const b of bars) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = b.label;
    const td = document.createElement("td");
    td.textContent = `${b.value} (${percent(b.value, sum)})`;
    tr.append(th, td);
    table.appendChild(tr);
  }
  container.replaceChildren(svg, table);
}
