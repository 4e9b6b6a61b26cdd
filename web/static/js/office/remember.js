// The registration form remembers the clerk's last choices (document type, urgency) in this browser:
// every <select data-remember="key"> of a fresh form (not one shown again with an error) starts at
// the value chosen last time, and the choice is stored when the form is sent.

const PREFIX = "eoffice.register.";

function load(key) {
  try { return window.localStorage.getItem(PREFIX + key); } catch { return null; }  // storage may be off
}

function store(key, value) {
  try { window.localStorage.setItem(PREFIX + key, value); } catch { /* storage may be off or full */ }
}

const form = document.getElementById("register-form");
if (form) {
  const selects = [...form.querySelectorAll("select[data-remember]")];
  if (form.hasAttribute("data-fresh")) {
    for (const select of selects) {
      const last = load(select.dataset.remember);
      if (last && [...select.options].some((o) => o.value === last)) select.value = last;
    }
  }
  form.addEventListener("submit", () => {
    for (const select of selects) store(select.dataset.remember, select.value);
  });
}
