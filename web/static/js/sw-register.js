// Every page: register the service worker (web/static/js/sw.js, served as /sw.js with the scope "/").
// It caches only static files and shows system notifications (see sw.js). Without support: nothing happens.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    /* an insecure origin or a browser that refuses: the pages work without it */
  });
}
