// The account page's «Thông báo trên thiết bị này»: permission for system notifications is asked only here, on a
// click (never on load). When the server sends Web Push (data-push-key: its VAPID key), the same click subscribes
// this browser (PushManager) and gives the subscription to the server; «Tắt» takes it back.
const box = document.getElementById("device-notify");
const enable = document.getElementById("notify-enable");
const pushOff = document.getElementById("notify-push-off");
const state = document.getElementById("notify-state");
const pushKey = box?.dataset.pushKey || "";

function csrf() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

function say(text) {
  if (state) state.textContent = text;
}

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function post(url, body) {
  const r = await fetch(url, {
    method: "POST", credentials: "same-origin", body: JSON.stringify(body),
    headers: { "content-type": "application/json", accept: "application/json", "X-CSRF-Token": csrf() },
  });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || `HTTP ${r.status}`);
  return r.json();
}

async function currentSubscription() {
  if (!pushKey || !("serviceWorker" in navigator)) return null;
  const reg = await navigator.serviceWorker.ready;
  return reg.pushManager ? reg.pushManager.getSubscription() : null;
}

async function subscribePush() {
  const reg = await navigator.serviceWorker.ready;
  if (!reg.pushManager) return false;
  const sub = (await reg.pushManager.getSubscription())
    || (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(pushKey) }));
  await post("/api/push/subscriptions", sub.toJSON());
  return true;
}

async function showState() {
  if (!("Notification" in window) || !("serviceWorker" in navigator)) {
    say("Trình duyệt này không hỗ trợ thông báo của hệ thống.");
    if (enable) enable.disabled = true;
    return;
  }
  if (Notification.permission === "denied") {
    say("Thông báo đang bị chặn: hãy cho phép trong cài đặt trang của trình duyệt.");
    return;
  }
  const sub = await currentSubscription().catch(() => null);
  if (pushOff) pushOff.hidden = !sub;
  if (Notification.permission === "granted") {
    say(sub ? "Đã bật thông báo trên thiết bị này (cả thông báo đẩy)." : "Đã bật thông báo trên thiết bị này.");
  } else {
    say("Chưa bật.");
  }
}

enable?.addEventListener("click", async () => {
  if (!("Notification" in window)) return;
  enable.disabled = true;
  try {
    const answer = await Notification.requestPermission();
    if (answer !== "granted") {
      say("Bạn chưa cho phép thông báo.");
      return;
    }
    if (pushKey) {
      try {
        await subscribePush();
      } catch (err) {
        say(`Đã bật thông báo khi trang đang mở; không đăng ký được thông báo đẩy (${err.message || err}).`);
        return;
      }
    }
    await showState();
  } finally {
    enable.disabled = false;
  }
});

pushOff?.addEventListener("click", async () => {
  const sub = await currentSubscription().catch(() => null);
  if (sub) {
    await post("/api/push/unsubscribe", { endpoint: sub.endpoint }).catch(() => null);
    await sub.unsubscribe().catch(() => null);
  }
  await showState();
});

showState();
