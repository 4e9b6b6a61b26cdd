// Every logged-in page: keep a live connection for the user's own notifications and show its state.
import { connect } from "./live.js";

const STATUS_TEXT = { online: "Trực tuyến", offline: "Mất kết nối", reconnecting: "Mất kết nối, đang kết nối lại…" };
const badge = document.getElementById("live-status");
const userId = document.body.dataset.userId;

function escapeText(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}

if (userId) {
  window.eoLive = connect({
    topics: [`user:${userId}`],
    onStatus(state) {
      if (!badge) return;
      badge.dataset.state = state;
      badge.textContent = STATUS_TEXT[state] || state;
    },
    onEvent(event) {
      document.dispatchEvent(new CustomEvent("eo:event", { detail: event }));
      const list = document.getElementById("notifications");
      if (!list) return;
      const empty = list.querySelector(".muted");
      if (empty) empty.remove();
      const li = document.createElement("li");
      li.appendChild(escapeText(event.data?.message || event.type));
      list.prepend(li);
    },
  });
}

// On a phone the navigation rows scroll sideways: bring the current page's link into view, so "Quản trị" or
// "Thống kê" is not the one item the user cannot see.
for (const a of document.querySelectorAll(".mainnav [aria-current='page'], .of-subnav [aria-current='page']")) {
  const nav = a.parentElement;
  if (nav.scrollWidth <= nav.clientWidth) continue;
  const n = nav.getBoundingClientRect();
  const r = a.getBoundingClientRect();
  const margin = 24; // scroll only as far as needed, with a little of the next link showing
  if (r.right > n.right) nav.scrollLeft += r.right - n.right + margin;
  else if (r.left < n.left) nav.scrollLeft -= n.left - r.left + margin;
}

// Phones: the menu button folds the pages and "Đăng xuất" away (see app.css); Escape or a tap elsewhere closes it.
const menuToggle = document.querySelector(".menu-toggle");
const topbar = menuToggle?.closest(".topbar");
if (menuToggle && topbar) {
  const setMenu = (open) => {
    topbar.dataset.menu = open ? "open" : "";
    menuToggle.setAttribute("aria-expanded", String(open));
  };
  const isOpen = () => menuToggle.getAttribute("aria-expanded") === "true";
  menuToggle.addEventListener("click", () => setMenu(!isOpen()));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && isOpen()) { setMenu(false); menuToggle.focus(); }
  });
  document.addEventListener("click", (e) => { if (isOpen() && !topbar.contains(e.target)) setMenu(false); });
}
