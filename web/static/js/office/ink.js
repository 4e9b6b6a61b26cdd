// Bút phê (issue 22 item 7): the leader writes the direction by hand on the document's pages beside the form,
// with a pen, a finger or the mouse. Strokes are kept as fractions of the page (0..1) and sent with the form
// in the hidden "ink" field; the server keeps them with the direction and draws them wherever it is shown.
// With ink, the written text becomes optional.

const SVG = "http://www.w3.org/2000/svg";
const doc = document.getElementById("direct-pdf");
const field = document.getElementById("direct-ink");
const textArea = document.getElementById("direct-text");
const toggle = document.getElementById("ink-toggle");
const undoBtn = document.getElementById("ink-undo");
const clearBtn = document.getElementById("ink-clear");
const countEl = document.getElementById("ink-count");

if (doc && field && toggle) {
  const strokes = []; // {page element, points [[x, y, p?]], path}
  let drawing = null;

  const layerOf = (pageEl) => {
    let svg = pageEl.querySelector("svg.of-ink-layer");
    if (!svg) {
      svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("class", "of-ink-layer");
      svg.setAttribute("viewBox", "0 0 1000 1000");
      svg.setAttribute("preserveAspectRatio", "none");
      pageEl.append(svg);
    }
    return svg;
  };
  const pathData = (pts) => pts.map((p, i) => `${i ? "L" : "M"}${(p[0] * 1000).toFixed(1)} ${(p[1] * 1000).toFixed(1)}`).join(" ")
    + (pts.length === 1 ? " l0.1 0" : "");

  const sync = () => {
    const pages = new Map();
    for (const s of strokes) {
      const key = `${s.page.dataset.attachment}:${s.page.dataset.page}`;
      if (!pages.has(key)) {
        pages.set(key, { attachment_id: Number(s.page.dataset.attachment), page: Number(s.page.dataset.page), strokes: [] });
      }
      pages.get(key).strokes.push(s.points);
    }
    field.value = strokes.length ? JSON.stringify([...pages.values()]) : "";
    undoBtn.disabled = clearBtn.disabled = !strokes.length;
    countEl.textContent = strokes.length ? `${strokes.length} nét bút phê` : "";
    // handwriting alone is a direction: the text box is no longer required
    if (textArea) textArea.required = !strokes.length;
  };

  const setInking = (on) => {
    doc.dataset.inking = String(on);
    toggle.setAttribute("aria-pressed", String(on));
    toggle.textContent = on ? "Đang bút phê — chạm để viết" : "Bút phê trên văn bản";
    for (const p of doc.querySelectorAll(".of-ink-page")) layerOf(p);
  };
  toggle.addEventListener("click", () => setInking(doc.dataset.inking !== "true"));

  const point = (e, svg) => {
    const r = svg.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    const y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
    const pt = [Number(x.toFixed(4)), Number(y.toFixed(4))];
    if (e.pointerType === "pen" && e.pressure > 0) pt.push(Number(e.pressure.toFixed(2)));
    return pt;
  };

  doc.addEventListener("pointerdown", (e) => {
    if (doc.dataset.inking !== "true") return;
    const svg = e.target.closest("svg.of-ink-layer");
    if (!svg) return;
    e.preventDefault();
    svg.setPointerCapture(e.pointerId);
    const path = document.createElementNS(SVG, "path");
    svg.append(path);
    drawing = { page: svg.parentElement, points: [point(e, svg)], path, svg, id: e.pointerId };
    path.setAttribute("d", pathData(drawing.points));
  });
  doc.addEventListener("pointermove", (e) => {
    if (!drawing || e.pointerId !== drawing.id) return;
    const pt = point(e, drawing.svg);
    const last = drawing.points[drawing.points.length - 1];
    if (Math.abs(pt[0] - last[0]) + Math.abs(pt[1] - last[1]) < 0.002) return;
    drawing.points.push(pt);
    drawing.path.setAttribute("d", pathData(drawing.points));
  });
  const end = (e) => {
    if (!drawing || e.pointerId !== drawing.id) return;
    strokes.push(drawing);
    drawing = null;
    sync();
  };
  doc.addEventListener("pointerup", end);
  doc.addEventListener("pointercancel", end);

  undoBtn.addEventListener("click", () => { const s = strokes.pop(); if (s) s.path.remove(); sync(); });
  clearBtn.addEventListener("click", () => { while (strokes.length) strokes.pop().path.remove(); sync(); });
  sync();
}
