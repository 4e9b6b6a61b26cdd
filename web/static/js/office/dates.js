// Dates as dd/mm/yyyy whatever the browser's language: an <input type="date"> shows its value in
// the browser's locale (mm/dd/yyyy on an English tablet), so the forms use text inputs marked
// data-date, which the server reads as dd/mm/yyyy (or yyyy-mm-dd). Here each gets a calendar
// button opening the browser's own picker, and what is typed is tidied up ("5/1/2026" ->
// "05/01/2026") when the field is left.

const pad = (n) => String(n).padStart(2, "0");

function toDmy(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
  return m ? `${m[3]}/${m[2]}/${m[1]}` : "";
}

export function toIso(text) {
  const m = /^\s*(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})\s*$/.exec(text || "");
  if (m) return `${m[3]}-${pad(m[2])}-${pad(m[1])}`;
  return /^\d{4}-\d{2}-\d{2}$/.test(text || "") ? text : "";
}

// Also used by scripts that draw a form later (the meeting room's conclusions): they create the text input with
// data-date, pass it here once it is in a parent element, and read it back with toIso.
export function enhance(input) {
  if (input.dataset.dateReady) return;
  input.dataset.dateReady = "1";
  const picker = document.createElement("input");
  picker.type = "date";
  picker.tabIndex = -1;
  picker.className = "of-date-native";
  picker.setAttribute("aria-hidden", "true");
  if (input.dataset.min) picker.min = input.dataset.min;
  if (input.dataset.max) picker.max = input.dataset.max;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "btn of-date-pick";
  button.setAttribute("aria-label", "Chọn ngày trên lịch");
  // drawn, not an emoji: closed networks' machines often have no emoji font
  button.innerHTML = '<svg width="20" height="20" viewBox="0 0 20 20" aria-hidden="true" fill="none" ' +
    'stroke="currentColor" stroke-width="1.6"><rect x="2.5" y="4" width="15" height="13.5" rx="1.5"/>' +
    '<path d="M2.5 8h15M6.5 2v4M13.5 2v4"/><path d="M6 11.5h2M9 11.5h2M12 11.5h2M6 14.5h2M9 14.5h2"/></svg>';
  button.addEventListener("click", () => {
    picker.value = toIso(input.value);
    if (typeof picker.showPicker === "function") {
      try { picker.showPicker(); return; } catch { /* not allowed here: fall back to focusing */ }
    }
    picker.focus();
  });
  picker.addEventListener("change", () => {
    input.value = toDmy(picker.value);
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
  input.addEventListener("blur", () => {
    const iso = toIso(input.value);
    if (iso) input.value = toDmy(iso);
  });
  input.after(button, picker);
}

document.querySelectorAll("input[data-date]").forEach(enhance);
