// Meeting list: create a meeting (a draft) and go to its preparation page.
import { api, fail, fillSelects } from "./meeting-common.js";

const form = document.getElementById("create-form");
const details = document.getElementById("new-meeting");
details?.addEventListener("toggle", () => { if (details.open) fillSelects(form).catch(fail); }, { once: true });

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(form);
  const body = Object.fromEntries([...f.entries()].filter(([, v]) => v !== ""));
  for (const key of ["chair_id", "secretary_id"]) if (body[key]) body[key] = Number(body[key]);
  try {
    const m = await api("POST", "/api/meetings", body);
    location.assign(`/meetings/${m.id}`);
  } catch (err) { fail(err); }
});
