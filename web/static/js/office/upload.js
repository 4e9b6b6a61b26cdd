// File uploads for the e-office forms: every <div class="of-uploader" data-name="upload_ids"> gets
// its files sent one by one as the raw body of POST /api/files (X-Filename URL-encoded, the CSRF
// header), with a progress bar per file. The answer's id becomes a hidden input of the form, so
// the form itself stays a plain url-encoded POST. The submit button waits for running uploads.

function csrf() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

function sizeText(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/files");
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.setRequestHeader("X-Filename", encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText || "{}"); } catch { /* not JSON */ }
      if (xhr.status === 201) resolve(body);
      else reject(new Error(body.message || `Tải tệp lên không thành công (mã ${xhr.status}).`));
    };
    xhr.onerror = () => reject(new Error("Mất kết nối khi tải tệp lên. Vui lòng thử lại."));
    xhr.send(file);
  });
}

let running = 0;

function setBusy(form, delta) {
  running += delta;
  const status = form?.querySelector("[data-upload-status]");
  for (const btn of form?.querySelectorAll('button[type="submit"]') || []) btn.disabled = running > 0;
  if (status) status.textContent = running > 0 ? "Đang tải tệp lên, vui lòng chờ…" : "";
}

function wireRemove(li) {
  li.querySelector(".of-remove")?.addEventListener("click", () => li.remove());
}

function setup(box) {
  const input = box.querySelector("input[type=file][data-upload]");
  const list = box.querySelector(".of-files");
  const name = box.dataset.name || "upload_ids";
  const form = box.closest("form");
  list.querySelectorAll("li").forEach(wireRemove);
  input.addEventListener("change", async () => {
    const files = [...input.files];
    input.value = "";
    await Promise.all(files.map(async (file) => {
      const li = el("li", { class: "of-file", "data-state": "uploading" });
      const label = el("span", {}, file.name);
      const size = el("span", { class: "muted" }, ` ${sizeText(file.size)} `);
      const bar = el("progress", { max: "100", value: "0", "aria-label": `Tiến độ tải lên ${file.name}` });
      const pct = el("span", { class: "of-pct" }, "0%");
      const remove = el("button", { type: "button", class: "btn of-remove" }, "Bỏ tệp");
      li.append(label, size, bar, pct, remove);
      list.append(li);
      wireRemove(li);
      setBusy(form, +1);
      try {
        const up = await uploadFile(file, (f) => {
          const p = Math.round(f * 100);
          bar.value = p;
          pct.textContent = `${p}%`;
        });
        bar.value = 100;
        pct.textContent = "Đã tải lên";
        li.dataset.state = "done";
        li.dataset.uploadId = up.id;
        li.append(el("input", { type: "hidden", name, value: String(up.id) }));
      } catch (err) {
        li.dataset.state = "error";
        pct.textContent = "";
        bar.remove();
        li.append(el("span", { class: "of-file-error", role: "alert" }, err.message));
      } finally {
        setBusy(form, -1);
      }
    }));
  });
}

document.querySelectorAll(".of-uploader").forEach(setup);
