// Document page: the PDF signatures (checked on the server with pyHanko) and the edXML exchange
// timeline. Loaded after the page so a large signed PDF never delays it. Text only via textContent.
const box = document.getElementById("doc-integrity");
const docId = box?.dataset.doc;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit",
    day: "2-digit", month: "2-digit", year: "numeric" });
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.message || `Lỗi ${r.status}`);
  return body;
}

async function showSignatures() {
  const target = document.getElementById("doc-signatures");
  try {
    const { attachments: files } = await getJSON(`/api/documents/${docId}/signatures`);
    const list = el("ul", undefined, "list");
    if (!files.length) list.append(el("li", "Không có tệp PDF để kiểm tra chữ ký.", "muted"));
    for (const f of files) {
      const li = el("li");
      li.append(el("strong", f.filename));
      if (f.error) li.append(el("div", f.error, "alert alert-error"));
      else if (!f.signed) li.append(el("div", "Tệp không có chữ ký số.", "muted"));
      for (const s of f.signatures) {
        const line = el("div", `${s.ok ? "✔" : "✖"} ${s.summary}`, s.ok ? "alert alert-ok" : "alert alert-error");
        line.append(el("small", ` — ${s.signer}${s.signing_time ? ", ký lúc " + when(s.signing_time) : ""}`));
        li.append(line);
      }
      list.append(li);
    }
    target.replaceChildren(list);
  } catch (err) {
    target.replaceChildren(el("p", `Không kiểm tra được chữ ký số: ${err.message}`, "alert alert-error"));
  }
}

async function showTimeline() {
  const target = document.getElementById("doc-timeline");
  try {
    const t = await getJSON(`/api/documents/${docId}/edxml/timeline`);
    const items = t.status_events.map((e) => el("li",
      `${when(e.at)} · ${e.code} ${e.label}${e.organ_name ? " · " + e.organ_name : ""}${e.description ? " — " + e.description : ""}`));
    const s = t.signature;  // xmldsig check of the received package: an invalid one is shown, never hidden
    if (s) items.unshift(el("li", `${s.label}${s.signer ? " · " + s.signer : ""}${s.message ? " — " + s.message : ""}`,
      s.result === "invalid" ? "alert alert-error" : ""));
    target.replaceChildren(...(items.length ? items : [el("li", "Văn bản này không trao đổi qua edXML.", "muted")]));
  } catch (err) {
    target.replaceChildren(el("li", `Không tải được trạng thái: ${err.message}`, "alert alert-error"));
  }
}

if (docId) {
  showSignatures();
  showTimeline();
}
