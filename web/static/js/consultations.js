// Written consultation pages (issue 20): the office's form, a member's answers, the office closing it or
// turning the result into a task, and live progress (counts only) over the WebSocket hub.
import { api, fail, fillSelects, toast, uploadFile } from "./meeting-common.js";
import { connect, STATUS_TEXT } from "./live.js";

function localIso(date, time) {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec((date || "").trim());
  if (!m) return "";
  const [hh, mm] = (time || "17:00").split(":");
  return `${m[3]}-${m[2].padStart(2, "0")}-${m[1].padStart(2, "0")}T${hh.padStart(2, "0")}:${mm}`;
}

// One question a line; lines starting with "-" under a question are its options (a choice question).
export function parseQuestions(text) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const last = out[out.length - 1];
    if (line.startsWith("-") && last) {
      last.kind = "choice";
      last.options.push(line.replace(/^-+\s*/, ""));
    } else {
      out.push({ text: line, kind: "yes_no", options: [] });
    }
  }
  return out;
}

async function createForm(form) {
  await fillSelects(document);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const documents = [];
      for (const kind of ["draft", "submission"]) {
        for (const file of form.elements[kind].files) {
          const up = await uploadFile(file);
          documents.push({ upload_id: up.id, kind, title: file.name.replace(/\.pdf$/i, "") });
        }
      }
      const body = {
        title: fd.get("title"), rule: fd.get("rule"), confidential: fd.get("confidential") === "on",
        deadline: localIso(fd.get("deadline_date"), fd.get("deadline_time")),
        questions: parseQuestions(String(fd.get("questions") || "")),
        member_ids: fd.getAll("member_ids").map(Number), documents,
      };
      if (fd.get("signer_id")) body.signer_id = Number(fd.get("signer_id"));
      const made = await api("POST", "/api/consultations", body);
      location.href = `/consultations/${made.id}`;
    } catch (err) {
      fail(err);
      button.disabled = false;
    }
  });
}

function detail(state) {
  const form = document.getElementById("answer-form");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const answers = [...form.querySelectorAll("[data-question]")].map((fs) => {
        const q = Number(fs.dataset.question);
        const picked = fs.querySelector(`input[name=q${q}]:checked`);
        return { question: q, choice: picked ? picked.value : null, comment: fs.querySelector("textarea").value };
      });
      try {
        await api("POST", `/api/consultations/${state.id}/answers`, { answers });
        toast("Đã ghi nhận ý kiến.");
        location.reload();
      } catch (err) { fail(err); }
    });
  }
  document.getElementById("close-btn")?.addEventListener("click", async () => {
    if (!confirm("Kết thúc lấy ý kiến ngay và tính kết quả?")) return;
    try { await api("POST", `/api/consultations/${state.id}/close`); location.reload(); } catch (err) { fail(err); }
  });
  const signForm = document.getElementById("sign-form");
  signForm?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const passphrase = String(new FormData(signForm).get("passphrase") || "");
    try {
      await api("POST", `/api/consultations/${state.id}/sign`, { passphrase });
      location.reload();
    } catch (err) { fail(err); }
  });
  const taskForm = document.getElementById("task-form");
  if (taskForm) {
    fillSelects(taskForm);
    taskForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const fd = new FormData(taskForm);
      const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(String(fd.get("deadline") || "").trim());
      try {
        await api("POST", `/api/consultations/${state.id}/task`, {
          assignee_id: Number(fd.get("assignee_id")),
          deadline: m ? `${m[3]}-${m[2].padStart(2, "0")}-${m[1].padStart(2, "0")}` : null });
        location.reload();
      } catch (err) { fail(err); }
    });
  }
  const progress = document.getElementById("c-progress");
  const live = document.getElementById("c-live");
  connect({
    topics: [state.topic],
    onStatus: (s) => { live.textContent = s === "online" ? "" : ` · ${STATUS_TEXT[s] || s}`; },
    onEvent: (msg) => {
      if (msg.type === "consultation.progress") {
        progress.textContent = `Đã trả lời ${msg.data.answered}/${msg.data.total} thành viên`;
      } else if (msg.type === "consultation.closed") {
        location.reload();
      }
    },
  });
}

const stateEl = document.getElementById("consultation-state");
if (stateEl) detail(JSON.parse(stateEl.textContent));
const createEl = document.getElementById("consult-form");
if (createEl) createForm(createEl);
