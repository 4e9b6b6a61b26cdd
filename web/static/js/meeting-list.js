// Meeting list: create a meeting (a draft) and go to its preparation page.
import { api, fail, fillSelects } from "./meeting-common.js";

const form = document.getElementById("create-form");
const pad = (n) => String(n).padStart(2, "0");
const details = document.getElementById("new-meeting");
details?.addEventListener("toggle", () => { if (details.open) fillSelects(form).catch(fail); }, { once: true });

// A typed time is shown as hh:mm once the field is left: "8:30", "8h30", "8.30", "830" and "8" become "08:30" and
// "08:00", so what is sent is what is seen. Anything else is left as typed for the pattern check to flag.
form?.querySelectorAll('input[name$="_time"]').forEach((input) => input.addEventListener("blur", () => {
  const t = /^\s*(\d{1,2})(?:[:h.]?(\d{2}))?\s*$/.exec(input.value);
  if (t && Number(t[1]) < 24 && Number(t[2] || 0) < 60) input.value = `${pad(t[1])}:${t[2] || "00"}`;
}));

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(form);
  const body = Object.fromEntries([...f.entries()].filter(([, v]) => v !== ""));
  // Date and time are typed as dd/mm/yyyy and hh:mm (a datetime-local field shows mm/dd/yyyy and AM/PM on an
  // English browser); the API takes local ISO time.
  for (const [prefix, what] of [["starts", "bắt đầu"], ["ends", "kết thúc"]]) {
    const date = body[`${prefix}_date`];
    const time = body[`${prefix}_time`];
    delete body[`${prefix}_date`];
    delete body[`${prefix}_time`];
    if (!date && !time) continue;
    const d = /^\s*(\d{1,2})\/(\d{1,2})\/(\d{4})\s*$/.exec(date || "");
    const t = /^\s*(\d{1,2})[:h.](\d{2})\s*$/.exec(time || "");
    if (!d || !t) { fail(new Error(`Nhập ngày ${what} dạng dd/mm/yyyy và giờ dạng hh:mm, ví dụ 05/01/2026 08:00.`)); return; }
    body[`${prefix}_at`] = `${d[3]}-${pad(d[2])}-${pad(d[1])}T${pad(t[1])}:${t[2]}`;
  }
  for (const key of ["chair_id", "secretary_id"]) if (body[key]) body[key] = Number(body[key]);
  try {
    const m = await api("POST", "/api/meetings", body);
    location.assign(`/meetings/${m.id}`);
  } catch (err) { fail(err); }
});
