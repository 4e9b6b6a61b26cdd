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

// The bell: the unread count, from the server each time the live connection is up (page load, reconnect) (or a snapshot: too far behind),
// then from the count each notification.new / notification.read event carries.
const bell = document.getElementById("bell");
const bellCount = document.getElementById("bell-count");
const bellLabel = document.getElementById("bell-label");

function setUnread(n) {
  if (!bell || typeof n !== "number") return;
  bell.dataset.unread = String(n);
  bellCount.textContent = n > 99 ? "99+" : String(n);
  bellCount.hidden = n === 0;
  const text = n ? `Thông báo: ${n} chưa đọc` : "Thông báo: không có thông báo chưa đọc";
  bell.setAttribute("aria-label", text);
  bell.title = text;
  if (bellLabel) bellLabel.textContent = text;
}

async function refreshUnread() {
  try {
    const r = await fetch("/api/notifications?unread=1&limit=1", { headers: { accept: "application/json" } });
    if (r.ok) setUnread((await r.json()).unread);
  } catch (err) { /* offline: the next reconnect asks again */ }
}

function notificationItem(data) {
  // a clickable sentence: opens the list entry's page (the list page marks it read when opened from there)
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.href = typeof data.link === "string" && data.link.startsWith("/") && !data.link.startsWith("//") ? data.link : "/notifications";
  a.appendChild(escapeText(data.text || ""));
  li.appendChild(a);
  return li;
}

// System notifications (the Notification API) for each notification.new of the live socket, while the page is
// open, in front or behind: shown through the service worker's registration (which also works in the background
// and on Android), tagged by id so one arriving by Web Push as well is shown once. Only once the user allowed it,
// with the button on the account page (page-notify.js): never asked on load.
async function systemNotify(data) {
  if (!("Notification" in window) || Notification.permission !== "granted" || !("serviceWorker" in navigator)) return;
  try {
    const reg = await navigator.serviceWorker.ready;
    const link = typeof data.link === "string" && data.link.startsWith("/") && !data.link.startsWith("//") ? data.link : "/notifications";
    await reg.showNotification(String(data.title || "Văn phòng điện tử"), {
      body: String(data.text || ""), tag: `eoffice-${data.id}`, data: { link }, lang: "vi",
      icon: "/static/icons/icon-192.png", badge: "/static/icons/icon-192.png",
    });
  } catch (err) { /* no service worker (an insecure origin): the bell is enough */ }
}

if (userId) {
  window.eoLive = connect({
    topics: [`user:${userId}`],
    onStatus(state) {
      if (state === "online") refreshUnread();
      if (!badge) return;
      badge.dataset.state = state;
      badge.textContent = STATUS_TEXT[state] || state;
    },
    onSnapshot() { refreshUnread(); },
    onEvent(event) {
      document.dispatchEvent(new CustomEvent("eo:event", { detail: event }));
      if (event.type === "notification.new" || event.type === "notification.read") setUnread(event.data?.unread);
      if (event.type === "notification.new" && event.data?.id) systemNotify(event.data);
      const list = document.getElementById("notifications");
      if (!list) return;
      let li = null;
      if (event.type === "notification.new") li = notificationItem(event.data || {});
      else if (event.type === "login" && event.data?.message) {
        li = document.createElement("li");
        li.appendChild(escapeText(event.data.message));
      }
      if (!li) return;
      const empty = list.querySelector(".muted");
      if (empty) empty.remove();
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
