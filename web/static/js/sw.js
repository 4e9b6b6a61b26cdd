// The service worker (served as /sw.js, scope "/", by web/routes/pwa.py, which fills in the version).
// - Caches ONLY the app's static files (/static/...), cache-first, in a cache named after a hash of their contents:
//   a new release is a new /sw.js, which installs, and on activation drops the old caches. Pages, the API, user
//   files, WebSockets and anything of another origin are never touched (no respondWith): they always come from
//   the server with its own access checks, and nothing a user may see is kept in the browser's cache storage.
// - Shows system notifications that come by Web Push (eoffice/channels.py); pages show those of the live socket
//   through this worker's registration too (page.js). The same notification gets the same tag, so it is shown once however it arrives.
// - A click opens (or focuses) the notification's page.
const VERSION = "__ASSET_VERSION__";
const CACHE = `eoffice-static-${VERSION}`;
const PREFIX = "eoffice-static-";
const APP_NAME = "Văn phòng điện tử";

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith("/static/")) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(request);
    if (hit) return hit;
    const response = await fetch(request);
    if (response.ok && response.type === "basic") await cache.put(request, response.clone());
    return response;
  })());
});

function safeLink(link) {
  return typeof link === "string" && link.startsWith("/") && !link.startsWith("//") ? link : "/notifications";
}

function show(data) {
  const options = {
    body: String(data.body || data.text || ""),
    data: { link: safeLink(data.link) },
    icon: "/static/icons/icon-192.png",
    badge: "/static/icons/icon-192.png",
    lang: "vi",
  };
  if (data.id) options.tag = `eoffice-${data.id}`;
  return self.registration.showNotification(String(data.title || APP_NAME), options);
}

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (err) {
    data = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(show(data));
});

// A click: a window already on that page is brought to front; otherwise a new one opens on it; where the browser
// refuses a new window, one of the app's own windows goes there.
async function openNotification(notification) {
  notification.close();
  const target = new URL(safeLink(notification.data?.link), self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const there = windows.find((client) => client.url === target);
  if (there) return there.focus().catch(() => there);
  const opened = await self.clients.openWindow(target).catch(() => null);
  if (opened) return opened;
  for (const client of await self.clients.matchAll({ type: "window" })) {
    const moved = await client.navigate(target).catch(() => null);
    if (moved) return moved.focus().catch(() => moved);
  }
  return null;
}

self.addEventListener("notificationclick", (event) => event.waitUntil(openNotification(event.notification)));
// No script can click a system notification: the browser tests call this as the click does.
self.eofficeOpenNotification = openNotification;
