// Live updates over the /ws hub: subscribe to topics, resume after a disconnect, report status.
//
//   const live = connect({
//     topics: ["meeting:42"],
//     onEvent(ev) { ... },              // {topic, seq, type, data, at}, each exactly once and in order
//     onSnapshot(topic, data, seq) {},  // too far behind to replay: data {} means "reload your state"
//     onStatus(state, code) {},         // "online" | "offline" | "reconnecting"; code 4401: log in again
//   });
//   live.subscribe("meeting:42:control"); live.unsubscribe(...); live.close();
//   const data = await live.command("annotation.create", {...});  // answered after the server's commit
//
// The last seq per topic is kept here, so a reconnect asks the server for what was missed
// ({"op":"subscribe","since":seq}) instead of reloading the page. Reconnects back off
// exponentially with jitter, so a restarted server is not hit by every tablet of the hall at
// the same instant. Close code 4401 (not logged in) stops reconnecting: retrying cannot help.

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
const NO_RECONNECT = new Set([4401, 4403]);
const COMMAND_TIMEOUT_MS = 15000;

// A command the server refused: status and code as an HTTP answer would have them; body is the reply
// (a 409 carries "current"). A command that got no answer (socket closed, timeout) rejects with a plain
// Error: it may or may not have been done, so send it again (creates carry a client id for that).
export class CommandError extends Error {
  constructor(reply) {
    super(reply.message || `Lỗi ${reply.status}`);
    this.status = reply.status;
    this.code = reply.code;
    this.body = reply;
  }
}

export const STATUS_TEXT = {
  online: "Trực tuyến",
  offline: "Mất kết nối",
  reconnecting: "Mất kết nối, đang kết nối lại…",
};

function wsUrl(path) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}

export function connect({ topics = [], onEvent = () => {}, onSnapshot = () => {}, onStatus = () => {},
                          onError = (msg) => console.warn("live:", msg.message), url = wsUrl("/ws") } = {}) {
  const lastSeq = new Map(); // topic -> last seq seen (absent: never subscribed yet, no replay wanted)
  const wanted = new Set(topics);
  let socket = null;
  let attempt = 0;
  let timer = null;
  let closed = false;
  let status = null;
  const pending = new Map(); // command id -> { resolve, reject, timer }
  let commandCount = 0;

  function setStatus(next, code) {
    if (next !== status) {
      status = next;
      try { onStatus(next, code); } catch (err) { console.error(err); }
    }
  }

  function send(obj) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(obj));
  }

  function subscribeFrame(topic) {
    const frame = { op: "subscribe", topic };
    if (lastSeq.has(topic)) frame.since = lastSeq.get(topic);
    return frame;
  }

  function settle(id, fn) {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.timer);
    fn(p);
  }

  function handle(msg) {
    if (msg.type === "reply") {
      settle(msg.id, (p) => (msg.ok ? p.resolve(msg.data) : p.reject(new CommandError(msg))));
      return;
    }
    if (msg.type === "ping") { send({ op: "pong" }); return; }
    if (msg.type === "pong") return;
    if (msg.type === "error") { onError(msg); return; }
    if (msg.type === "subscribed") {
      // First subscription: start from the current seq. A resume keeps ours; the replay follows.
      if (!lastSeq.has(msg.topic)) lastSeq.set(msg.topic, msg.seq);
      return;
    }
    if (msg.type === "snapshot") {
      lastSeq.set(msg.topic, msg.seq);
      onSnapshot(msg.topic, msg.data, msg.seq);
      return;
    }
    if (typeof msg.seq === "number" && msg.topic) {
      const last = lastSeq.get(msg.topic);
      if (last !== undefined && msg.seq <= last) return; // never apply an event twice
      lastSeq.set(msg.topic, msg.seq);
      onEvent(msg);
    }
  }

  function open() {
    timer = null;
    socket = new WebSocket(url);
    socket.onopen = () => {
      attempt = 0;
      setStatus("online");
      for (const topic of wanted) send(subscribeFrame(topic));
    };
    socket.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      try { handle(msg); } catch (err) { console.error(err); }
    };
    socket.onclose = (ev) => {
      socket = null;
      for (const id of [...pending.keys()]) settle(id, (p) => p.reject(new Error("Mất kết nối trước khi có trả lời.")));
      if (closed) return;
      if (NO_RECONNECT.has(ev.code)) { setStatus("offline", ev.code); return; }
      schedule();
    };
    socket.onerror = () => {}; // onclose follows and decides
  }

  function schedule() {
    setStatus("reconnecting");
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    attempt += 1;
    const delay = ceiling / 2 + Math.random() * ceiling / 2; // "equal jitter"
    timer = setTimeout(open, delay);
  }

  // Coming back from sleep or a dead network: try now rather than at the end of a long backoff.
  function retryNow() {
    if (!closed && timer !== null) { clearTimeout(timer); attempt = 0; open(); }
  }
  function onVisible() { if (!document.hidden) retryNow(); }
  function onOffline() { if (socket) socket.close(); }
  window.addEventListener("online", retryNow);
  window.addEventListener("offline", onOffline);
  document.addEventListener("visibilitychange", onVisible);

  open(); // status stays unset until the first open (online) or the first failure (reconnecting)

  return {
    subscribe(topic) {
      wanted.add(topic);
      send(subscribeFrame(topic));
    },
    unsubscribe(topic) {
      wanted.delete(topic);
      lastSeq.delete(topic);
      send({ op: "unsubscribe", topic });
    },
    lastSeq(topic) { return lastSeq.get(topic); },
    // A command on this socket ({op, id, ...fields}); resolves with the reply's data once the server is done.
    command(op, fields = {}, timeoutMs = COMMAND_TIMEOUT_MS) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(new Error("Chưa kết nối."));
      commandCount += 1;
      const id = `c${commandCount}-${Date.now().toString(36)}`;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => settle(id, (p) => p.reject(new Error("Không có trả lời."))), timeoutMs);
        pending.set(id, { resolve, reject, timer });
        send({ ...fields, op, id });
      });
    },
    get status() { return status; },
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      window.removeEventListener("online", retryNow);
      window.removeEventListener("offline", onOffline);
      document.removeEventListener("visibilitychange", onVisible);
      if (socket) socket.close(1000);
      setStatus("offline");
    },
  };
}
