// Voting on the tablet and the chair's poll controls (issue 7).
//
// Mounts on every element with [data-voting-panel] (the meeting room's "Biểu quyết" tab and the
// /meetings/{id}/polls page). It keeps its own live connection (meeting:{id}) so it does not depend
// on the room's script.
//
// A vote is sent as the "vote" command on that connection (HTTP POST when it is offline) and is
// shown as recorded only when the server answered, which it does after the commit. If the
// connection drops before the answer, the panel asks the server whether the vote was stored.
// Live events: poll.changed (state changes, with the public view) and poll.progress (coalesced counts;
// the chair's list of who has not voted is refetched on them).

import { CommandError, connect, STATUS_TEXT } from "./live.js";
import { barChart } from "./chart.js";
import { ask } from "./meeting-common.js";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(method, url, body) {
  const res = await fetch(url, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.message || `Lỗi ${res.status}`);
    err.status = res.status;
    err.data = data;
    throw err;
  }
  return data;
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const YES_NO = { yes: "Tán thành", no: "Không tán thành", abstain: "Không biểu quyết" };
const STATE_CLASS = { draft: "draft", open: "open", closed: "closed", published: "published", cancelled: "cancelled" };
const TIME_FMT = new Intl.DateTimeFormat("vi-VN", { hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                    timeZone: "Asia/Ho_Chi_Minh" });

function mmss(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

export function choiceLabel(poll, choice) {
  if (!choice) return "";
  if (choice.abstain || choice.v === "abstain") return "Không biểu quyết";
  if (choice.v) return YES_NO[choice.v];
  const label = (k) => poll.options[k - 1]?.label ?? `#${k}`;
  if (choice.r) return choice.r.map(label).join(" > ");
  return (choice.o || []).map(label).join("; ");
}

// The bars of a poll's result (or of a live tally shaped as one): shared with the room screen (screen.js).
export function pollBars(p) {
  const r = p.result;
  if (p.method === "yes_no" || p.method === "yes_no_abstain") {
    return Object.entries(r.counts).map(([k, v]) => ({ label: YES_NO[k], value: v,
      highlight: k === "yes" && r.passed }));
  }
  const out = Object.entries(r.counts).map(([k, v]) => ({ label: p.options[Number(k) - 1].label, value: v,
    highlight: (r.winners || []).includes(Number(k)) }));
  if (r.abstain) out.push({ label: "Không biểu quyết", value: r.abstain, color: "#9ca3af" });
  return out;
}

// The bars of an open poll's live tally (a named poll shown live).
export function tallyBars(p) {
  const r = { counts: {}, winners: [], abstain: p.tally.abstain || 0 };
  if (p.method.startsWith("yes_no")) {
    for (const k of p.method === "yes_no" ? ["yes", "no"] : ["yes", "no", "abstain"]) r.counts[k] = p.tally[k] || 0;
  } else for (const o of p.options) r.counts[o.key] = p.tally[String(o.key)] || 0;
  return pollBars({ ...p, result: r });
}

// A yes/no tie is decided by the poll's rule (not passed, or the chair's side): only an unresolved one, or a
// tie among options (re-run), is shown as such.
export function verdictOf(p) {
  const r = p.result;
  const yesNo = p.method.startsWith("yes_no");
  return r.passed ? (yesNo ? "ĐƯỢC THÔNG QUA" : "ĐÃ CÓ KẾT QUẢ")
    : r.tie_outcome === "unresolved" ? "CHƯA PHÂN ĐỊNH"
      : (!yesNo && r.tie && r.tie.length ? "HÒA PHIẾU" : "KHÔNG ĐƯỢC THÔNG QUA");
}

export function mountVoting(root) {
  const meetingId = Number(root.dataset.meeting);
  const S = { polls: new Map(), detail: new Map(), voters: new Map(), controller: false, skew: 0,
              selection: new Map(), busy: new Set(), messages: new Map(), selected: null, status: null,
              paper: { poll: null, seats: new Set(), ballots: [], sel: undefined, busy: false } };
  const topic = `meeting:${meetingId}`;
  let live = null;
  let timer = null;
  const votersSoon = new Map();

  const now = () => Date.now() + S.skew;
  const key = (pid, seat) => `${pid}:${seat}`;

  function current() {
    const list = [...S.polls.values()].filter((p) => p.state !== "draft" && !p.restricted); // restricted: confidential
    const open = list.find((p) => p.state === "open");
    if (open) return open;
    if (S.selected && S.polls.has(S.selected) && S.polls.get(S.selected).state !== "draft") {
      return S.polls.get(S.selected);
    }
    return list.sort((a, b) => (b.closed_at || "").localeCompare(a.closed_at || "") || b.id - a.id)[0] || null;
  }

  async function loadAll() {
    const data = await api("GET", `/api/meetings/${meetingId}/polls`);
    S.controller = data.controller;
    S.skew = Date.parse(data.server_time) - Date.now();
    S.polls = new Map(data.polls.map((p) => [p.id, p]));
    const cur = current();
    if (cur) await loadDetail(cur.id);
    render();
  }

  async function loadDetail(pollId) {
    const d = await api("GET", `/api/polls/${pollId}`);
    S.skew = Date.parse(d.server_time) - Date.now();
    S.detail.set(pollId, d);
    S.polls.set(pollId, { ...S.polls.get(pollId), ...d });
    if (S.controller && d.state !== "draft" && !d.secret) await loadVoters(pollId);
    else if (S.controller && d.state === "open") await loadVoters(pollId);
  }

  async function loadVoters(pollId) {
    try {
      const v = await api("GET", `/api/polls/${pollId}/voters`);
      S.voters.set(pollId, v.voters);
    } catch (err) { /* not the chair after all */ }
  }

  function refreshVotersSoon(pollId) {
    if (votersSoon.has(pollId)) return;
    votersSoon.set(pollId, setTimeout(async () => {
      votersSoon.delete(pollId);
      await loadVoters(pollId);
      render();
    }, 300));
  }

  function onEvent(ev) {
    const d = ev.data || {};
    if (ev.type === "poll.changed" && d.poll && d.poll.restricted) {
      // a poll on a confidential item: the room carries no content; those who may see it refetch it
      loadAll().then(() => {
        const p = S.polls.get(d.poll_id);
        if (p && !p.restricted && d.state === "open") { S.selected = d.poll_id; return loadDetail(d.poll_id); }
        return undefined;
      }).then(render).catch(() => {});
    } else if (ev.type === "poll.changed") {
      const before = S.polls.get(d.poll_id);
      S.polls.set(d.poll_id, { ...(before || {}), ...d.poll });
      const det = S.detail.get(d.poll_id);
      if (det) S.detail.set(d.poll_id, { ...det, ...d.poll });
      if (d.state === "open" && (!before || before.state !== "open")) {
        S.selected = d.poll_id;
        loadDetail(d.poll_id).then(render).catch(() => {});
        const tab = document.getElementById("tab-voting");
        if (tab && tab.getAttribute("aria-selected") !== "true") tab.click();
      } else if (["closed", "published"].includes(d.state) && S.controller) {
        loadDetail(d.poll_id).then(render).catch(() => {});
      }
      render();
    } else if (ev.type === "poll.progress") {
      const p = S.polls.get(d.poll_id);
      if (!p) { loadAll().catch(() => {}); return; }
      if (d.cast < p.cast && p.state === d.state) return; // never show a count going down
      const upd = { cast: d.cast, eligible: d.eligible, cast_weight: d.cast_weight, eligible_weight: d.eligible_weight,
                    closes_at: d.closes_at };
      if (d.tally) upd.tally = d.tally;
      Object.assign(p, upd);
      const det = S.detail.get(d.poll_id);
      if (det) Object.assign(det, upd);
      if (S.controller && p.state === "open" && (!p.secret || S.paper.poll === d.poll_id)) {
        refreshVotersSoon(d.poll_id); // who has not voted (secret polls: while the chair enters paper ballots)
      }
      renderProgress();
    } else if (ev.type === "poll.proxies" || ev.type === "attendance.changed") {
      // who may vote is fixed when a poll opens; only the chair's list of proxies changes
      if (rightsBox && rightsBox.open) loadRights({ keepTyped: true }).catch(() => {});
    }
  }

  // ---------------------------------------------------------------- rendering

  function render() {
    const cur = current();
    // replaceChildren (unlike h) turns a null into the text "null": keep only what is shown
    root.replaceChildren(...[
      h("div", { class: "vp-offline", role: "status", "aria-live": "polite", hidden: S.status === "online" || !S.status },
        S.status ? STATUS_TEXT[S.status] : ""),
      cur ? renderPoll(S.detail.get(cur.id) || cur) : h("p", { class: "muted vp-empty" }, "Chưa có biểu quyết nào." + (S.controller
        ? " Tạo biểu quyết ở mục «Điều hành biểu quyết» bên dưới."
        : " Khi chủ trì mở biểu quyết, phiếu của bạn hiện ở đây.")),
      S.controller ? renderChair() : null,
      renderHistory(cur),
    ].filter(Boolean));
    tick();
  }

  function badge(p) {
    return h("span", { class: `vp-state vp-${STATE_CLASS[p.state]}` }, p.state_label);
  }

  function renderPoll(p) {
    const box = h("section", { class: "vp-poll", "data-poll": p.id, "aria-labelledby": `vp-title-${p.id}` },
      h("div", { class: "vp-head" },
        h("h2", { id: `vp-title-${p.id}`, class: "vp-title" }, p.title),
        badge(p),
        h("span", { class: "vp-kind" }, p.secret ? "Bỏ phiếu kín" : "Biểu quyết công khai"),
      ),
      p.description ? h("p", { class: "vp-desc" }, p.description) : null,
      h("p", { class: "vp-meta muted" }, `${p.method_label} · ${p.majority_label}` +
        (p.method !== "ranked" ? `, tính trên ${p.base_label}` : "")),
      renderProgressBox(p),
    );
    if (p.state === "open") box.append(renderBallots(p));
    if (p.result) box.append(renderResult(p));
    else if (p.tally && p.state === "open") box.append(renderTally(p));
    else if (p.state === "closed") box.append(h("p", { class: "vp-wait" }, "Biểu quyết đã kết thúc. Kết quả sẽ được công bố."));
    return box;
  }

  function renderProgressBox(p) {
    const ratio = p.eligible ? Math.min(1, p.cast / p.eligible) : 0;
    return h("div", { class: "vp-progress", "data-progress": p.id },
      h("div", { class: "vp-count", role: "status", "aria-live": "polite" },
        `Đã bỏ phiếu ${p.cast}/${p.eligible}`,
        p.eligible_weight !== p.eligible ? h("span", { class: "muted" }, ` (trọng số ${p.cast_weight}/${p.eligible_weight})`) : null),
      h("div", { class: "vp-bar", "aria-hidden": "true" }, h("div", { style: `width:${(ratio * 100).toFixed(1)}%` })),
      p.state === "open" && p.closes_at ? h("div", { class: "vp-timer", "data-closes": p.closes_at }, "") : null,
    );
  }

  function renderProgress() {
    for (const node of root.querySelectorAll("[data-progress]")) {
      const p = S.detail.get(Number(node.dataset.progress)) || S.polls.get(Number(node.dataset.progress));
      if (p) node.replaceWith(renderProgressBox(p));
    }
    const cur = current();
    if (cur && cur.tally && cur.state === "open") {
      const old = root.querySelector(".vp-tally");
      if (old) old.replaceWith(renderTally(S.detail.get(cur.id) || cur));
    }
    tick();
  }

  function tick() {
    clearTimeout(timer);
    const nodes = root.querySelectorAll(".vp-timer[data-closes]");
    if (!nodes.length) return;
    for (const node of nodes) {
      const left = Date.parse(node.dataset.closes) - now();
      node.textContent = left > 0 ? `Còn ${mmss(left)}` : "Đã hết giờ, đang kết thúc…";
      node.classList.toggle("vp-urgent", left < 10000);
    }
    timer = setTimeout(tick, 250);
  }

  function renderBallots(p) {
    const me = p.me || [];
    if (!me.length) {
      return h("p", { class: "vp-note" }, "Bạn không có quyền biểu quyết lần này (chỉ đại biểu có quyền biểu quyết " +
        "đã điểm danh khi mở biểu quyết).");
    }
    return h("div", { class: "vp-ballots" }, me.map((right) => renderBallot(p, right)));
  }

  // The buttons of a ballot, following the poll's method (and its abstain option): the tablet's own
  // ballot and the chair's roll call / show of hands use the same ones.
  function choiceButtons(p, sel, pick, label) {
    const choices = h("div", { class: "vp-choices", role: "group", "aria-label": label });
    if (p.method === "yes_no" || p.method === "yes_no_abstain") {
      for (const v of p.method === "yes_no" ? ["yes", "no"] : ["yes", "no", "abstain"]) {
        choices.append(h("button", { type: "button", class: `vp-choice vp-${v}`, "aria-pressed": String(sel === v),
                                     onclick: () => pick(v) }, YES_NO[v]));
      }
    } else if (p.method === "single") {
      for (const o of p.options) {
        const on = Array.isArray(sel) && sel[0] === o.key;
        choices.append(h("button", { type: "button", class: "vp-choice", "aria-pressed": String(on),
                                     onclick: () => pick([o.key]) }, o.label));
      }
    } else if (p.method === "multiple") {
      const cur = Array.isArray(sel) ? sel : [];
      for (const o of p.options) {
        const on = cur.includes(o.key);
        choices.append(h("button", {
          type: "button", class: "vp-choice", "aria-pressed": String(on),
          onclick: () => pick(on ? cur.filter((x) => x !== o.key) : cur.length < p.max_choices ? [...cur, o.key] : cur),
        }, o.label));
      }
      choices.append(h("p", { class: "muted vp-hint" }, `Đã chọn ${cur.length}/${p.max_choices} phương án.`));
    } else if (p.method === "ranked") {
      const cur = Array.isArray(sel) ? sel : [];
      for (const o of p.options) {
        const rank = cur.indexOf(o.key);
        choices.append(h("button", {
          type: "button", class: "vp-choice vp-rank", "aria-pressed": String(rank >= 0),
          "aria-label": rank >= 0 ? `${o.label}, thứ tự ${rank + 1}` : o.label,
          onclick: () => pick(rank >= 0 ? cur.slice(0, rank) : [...cur, o.key]),
        }, h("span", { class: "vp-rank-no" }, rank >= 0 ? String(rank + 1) : ""), o.label));
      }
      choices.append(h("p", { class: "muted vp-hint" }, "Chạm theo thứ tự ưu tiên: 1 là ưu tiên cao nhất."));
    }
    if (p.allow_abstain && !p.method.startsWith("yes_no")) {
      choices.append(h("button", { type: "button", class: "vp-choice vp-abstain", "aria-pressed": String(sel === "abstain"),
                                   onclick: () => pick("abstain") }, "Không biểu quyết"));
    }
    return choices;
  }

  function selectionLabel(p, sel) {
    if (sel === "abstain") return "Không biểu quyết";
    if (Array.isArray(sel)) return choiceLabel(p, p.method === "ranked" ? { r: sel } : { o: sel });
    return YES_NO[sel];
  }

  function renderBallot(p, right) {
    const k = key(p.id, right.participant_id);
    const who = right.proxy ? `Phiếu ủy quyền của ${right.name}` : "Phiếu của bạn";
    const msg = S.messages.get(k);
    const wrap = h("fieldset", { class: "vp-ballot", "data-seat": right.participant_id },
      h("legend", {}, who + (right.weight !== 1 ? ` (trọng số ${right.weight})` : "")));
    if (right.voted && !p.allow_change) {
      wrap.append(h("p", { class: "vp-done", role: "status" }, "✓ Đã ghi nhận phiếu",
        right.choice ? `: ${choiceLabel(p, right.choice)}` : (p.secret ? " (phiếu kín)" : "")));
      return wrap;
    }
    if (right.voted) {
      wrap.append(h("p", { class: "vp-done" }, `✓ Đã ghi nhận: ${choiceLabel(p, right.choice)}. Bạn có thể đổi phiếu trước khi kết thúc.`));
    }
    const sel = S.selection.get(k);
    const choices = choiceButtons(p, sel, (value) => { S.selection.set(k, value); S.messages.delete(k); render(); }, who);
    wrap.append(choices);
    const ready = sel !== undefined && !(Array.isArray(sel) && sel.length === 0);
    const busy = S.busy.has(k);
    wrap.append(h("div", { class: "vp-send" },
      h("button", { type: "button", class: "btn btn-primary vp-submit", disabled: !ready || busy,
                    onclick: () => submit(p, right, sel) },
        busy ? "Đang gửi…" : right.voted ? "Gửi phiếu mới" : "Gửi phiếu"),
      ready && !busy ? h("span", { class: "vp-picked" }, `Lựa chọn: ${selectionLabel(p, sel)}`) : null,
    ));
    if (msg) wrap.append(h("p", { class: `vp-msg ${msg.ok ? "ok" : "err"}`, role: "alert" }, msg.text));
    return wrap;
  }

  async function submit(p, right, choice) {
    const k = key(p.id, right.participant_id);
    S.busy.add(k);
    render();
    try {
      const r = await castVote(p.id, { choice, participant_id: right.participant_id });
      right.voted = true;
      if (!p.secret) right.choice = choice === "abstain" ? { abstain: true } : typeof choice === "string" ? { v: choice } :
        p.method === "ranked" ? { r: choice } : { o: choice };
      if (p.method.startsWith("yes_no") && choice === "abstain" && !p.secret) right.choice = { v: "abstain" };
      S.selection.delete(k);
      S.messages.set(k, { ok: true, text: `Đã ghi nhận phiếu lúc ${TIME_FMT.format(new Date())}.` });
      const poll = S.polls.get(p.id);
      if (poll && r.cast > poll.cast) { poll.cast = r.cast; p.cast = r.cast; }
    } catch (err) {
      if (err.unknown) { // sent, but the answer was lost with the connection: ask the server
        await loadDetail(p.id).catch(() => {});
        const mine = (S.detail.get(p.id)?.me || []).find((r) => r.participant_id === right.participant_id);
        S.messages.set(k, mine?.voted ? { ok: true, text: "Phiếu đã được ghi nhận." }
          : { ok: false, text: "Mất kết nối khi gửi phiếu; phiếu chưa được ghi nhận. Vui lòng gửi lại." });
        if (mine?.voted) S.selection.delete(k);
      } else {
        S.messages.set(k, { ok: false, text: err.message });
        if (err.status === 409) loadDetail(p.id).then(render).catch(() => {});
      }
    } finally {
      S.busy.delete(k);
      render();
    }
  }

  // One vote: over the live connection when it is up (no extra HTTP request), else by HTTP; same service.
  // A refusal comes back as a CommandError (status, message as over HTTP); any other failure means the
  // answer was lost, so the vote may or may not be stored (err.unknown: the caller asks the server).
  async function castVote(pollId, body) {
    if (!live || live.status !== "online") return api("POST", `/api/polls/${pollId}/votes`, body);
    try {
      return await live.command("vote", { poll_id: pollId, ...body });
    } catch (err) {
      if (!(err instanceof CommandError)) err.unknown = true;
      throw err;
    }
  }

  function renderResult(p) {
    const r = p.result;
    const chart = h("div", { class: "vp-chart", "data-chart": p.id });
    barChart(chart, { title: p.method === "ranked" ? "Số phiếu ưu tiên thứ nhất" : "Kết quả biểu quyết", bars: pollBars(p) });
    const verdict = verdictOf(p);
    return h("div", { class: "vp-result", role: "region", "aria-label": "Kết quả biểu quyết" },
      h("p", { class: `vp-verdict ${r.passed ? "pass" : "fail"}` }, verdict),
      r.headline ? h("p", { class: "vp-headline" }, r.headline) : null,
      p.rule_label ? h("p", { class: "muted vp-rule" }, `Điều kiện thông qua: ${p.rule_label}` +
        (p.tie_rule ? `. ${p.tie_rule_label}.` : ".")) : null,
      chart,
      h("p", { class: "vp-summary" }, r.summary),
      r.threshold ? h("p", { class: "muted" }, `${r.threshold}. Đã bỏ phiếu ${r.ballots}/${r.eligible}` +
        (r.not_voted ? `, ${r.not_voted} không bỏ phiếu.` : ".")) : null,
      (r.rounds || []).length > 1 ? h("details", {}, h("summary", {}, "Các vòng đếm phiếu"),
        h("ol", {}, r.rounds.map((x) => h("li", {}, Object.entries(x.tallies)
          .map(([k, v]) => `${p.options[Number(k) - 1].label}: ${v}`).join(", ") +
          (x.elected ? ` — trúng: ${x.elected.map((k) => p.options[k - 1].label).join(", ")}` : "") +
          (x.eliminated ? ` — loại: ${p.options[x.eliminated - 1].label}` : ""))))) : null,
      (r.tie_breaks || []).length ? h("p", { class: "muted" }, r.tie_breaks.join(" ")) : null,
      h("p", {}, h("a", { href: `/api/polls/${p.id}/export.csv`, class: "btn", download: "" }, "Tải kết quả (CSV)")),
    );
  }

  function renderTally(p) {
    const chart = h("div", { class: "vp-chart vp-tally" });
    barChart(chart, { title: "Kết quả tạm thời", bars: tallyBars(p) });
    return chart;
  }

  // ---------------------------------------------------------------- history

  function renderHistory(cur) {
    const past = [...S.polls.values()].filter((p) => p !== cur && ["closed", "published", "cancelled"].includes(p.state));
    if (!past.length) return null;
    return h("section", { class: "vp-history" }, h("h3", {}, "Các biểu quyết trước"),
      h("ul", { class: "list" }, past.sort((a, b) => b.id - a.id).map((p) => h("li", {},
        h("button", { type: "button", class: "btn vp-link", onclick: async () => {
          S.selected = p.id; await loadDetail(p.id).catch(() => {}); render();
        } }, p.title), " ", badge(p),
        p.result ? h("span", { class: "muted" }, ` ${p.result.headline || (p.result.passed ? "Thông qua" : "Không thông qua")}`)
          : null))));
  }

  // ---------------------------------------------------------------- chair and secretary

  async function act(p, action, body = {}) {
    try {
      const d = await api("POST", `/api/polls/${p.id}/${action}`, body);
      S.detail.set(d.id, d);
      S.polls.set(d.id, { ...S.polls.get(d.id), ...d });
      S.selected = d.id;
      if (S.controller) await loadVoters(d.id);
      S.messages.set("chair", { ok: true, text: "Đã thực hiện." });
    } catch (err) {
      S.messages.set("chair", { ok: false, text: err.message });
    }
    render();
  }

  function renderChair() {
    const polls = [...S.polls.values()].sort((a, b) => a.id - b.id);
    const msg = S.messages.get("chair");
    const sec = h("section", { class: "vp-chair", "aria-label": "Điều hành biểu quyết" },
      h("h3", {}, "Điều hành biểu quyết"),
      msg ? h("p", { class: `vp-msg ${msg.ok ? "ok" : "err"}`, role: "alert" }, msg.text) : null,
      h("ul", { class: "list vp-admin" }, polls.map((p) => h("li", { "data-poll": p.id },
        h("div", {}, h("strong", {}, p.title), " ", badge(p), p.secret ? h("span", { class: "tag" }, "Kín") : null),
        h("div", { class: "vp-actions" }, chairButtons(p)),
        p.state === "open" && !p.secret ? renderNotVoted(p) : null,
        p.state === "open" && p.secret ? renderPaper(p) : null,
      ))),
      renderRights(),
      renderCreate(),
    );
    return sec;
  }

  function chairButtons(p) {
    const b = (label, fn, primary = false) => h("button", { type: "button", class: `btn${primary ? " btn-primary" : ""}`,
                                                            onclick: fn }, label);
    const out = [];
    if (p.state === "draft") {
      out.push(b("Mở biểu quyết", () => act(p, "open"), true));
      out.push(b("Hủy", async () => await ask("Hủy biểu quyết này?", { ok: "Hủy biểu quyết", cancel: "Không", danger: true }) && act(p, "cancel")));
    } else if (p.state === "open") {
      out.push(b("Kết thúc biểu quyết", async () => await ask("Kết thúc biểu quyết và đếm phiếu?", { ok: "Kết thúc và đếm phiếu" }) && act(p, "close"), true));
      const input = h("input", { type: "number", min: 10, max: 86400, value: 60, class: "vp-seconds",
                                 "aria-label": "Số giây đếm ngược" });
      out.push(h("span", { class: "vp-countdown" }, input, b("Đếm ngược (giây)", () =>
        act(p, "countdown", { seconds: Number(input.value) }))));
      out.push(b("Hủy", async () => await ask("Hủy biểu quyết đang diễn ra?", { detail: "Các phiếu sẽ không được đếm.", ok: "Hủy biểu quyết", cancel: "Không", danger: true }) && act(p, "cancel")));
    } else if (p.state === "closed") {
      out.push(b("Công bố kết quả", () => act(p, "publish"), true));
    }
    if (["closed", "published", "cancelled"].includes(p.state)) {
      out.push(b("Biểu quyết lại", () => act(p, "rerun")));
    }
    if (["closed", "published"].includes(p.state)) {
      out.push(h("a", { class: "btn", href: `/api/polls/${p.id}/export.csv`, download: "" }, "Xuất CSV"));
    }
    return out;
  }

  // Who has not voted, and the chair's roll call / show of hands for them: the same choices as the
  // tablet's ballot (yes/no with abstain where the poll has it, options, several options, an order).
  function renderNotVoted(p) {
    const list = (S.voters.get(p.id) || []).filter((v) => !v.voted);
    const yn = p.method.startsWith("yes_no");
    return h("details", { class: "vp-missing", open: true },
      h("summary", {}, `Chưa bỏ phiếu (${list.length})`),
      list.length ? h("ul", { class: "list" }, list.map((v) => h("li", { "data-seat": v.participant_id },
        h("span", {}, v.name + (v.proxy ? ` (ủy quyền cho ${v.holder})` : "") + (v.tablet ? "" : " — không có máy tính bảng")),
        yn ? h("span", { class: "vp-roll" }, (p.method === "yes_no" ? ["yes", "no"] : ["yes", "no", "abstain"]).map((c) =>
          h("button", { type: "button", class: "btn", onclick: () => rollCall(p, v, c),
                        "aria-label": `Ghi nhận ${v.name}: ${YES_NO[c]}` }, YES_NO[c])))
          : renderRollCallChoices(p, v),
      ))) : h("p", { class: "muted" }, "Tất cả đã bỏ phiếu."));
  }

  function renderRollCallChoices(p, v) {
    const k = `roll:${p.id}:${v.participant_id}`;
    if (S.rollOpen !== k) {
      return h("span", { class: "vp-roll" }, h("button", { type: "button", class: "btn",
        "aria-label": `Ghi nhận phiếu của ${v.name}`, onclick: () => { S.rollOpen = k; render(); } }, "Ghi nhận phiếu…"));
    }
    const sel = S.selection.get(k);
    const ready = sel !== undefined && !(Array.isArray(sel) && sel.length === 0);
    return h("div", { class: "vp-roll-call" },
      choiceButtons(p, sel, (value) => { S.selection.set(k, value); render(); }, `Phiếu của ${v.name}`),
      h("div", { class: "vp-send" },
        h("button", { type: "button", class: "btn btn-primary", disabled: !ready, onclick: async () => {
          if (await rollCall(p, v, sel)) { S.selection.delete(k); S.rollOpen = null; render(); }
        } }, `Ghi nhận phiếu của ${v.name}`),
        h("button", { type: "button", class: "btn", onclick: () => { S.rollOpen = null; S.selection.delete(k); render(); } },
          "Bỏ qua"),
        ready ? h("span", { class: "vp-picked" }, `Lựa chọn: ${selectionLabel(p, sel)}`) : null));
  }

  async function rollCall(p, v, choice) {
    let ok = false;
    try {
      await api("POST", `/api/polls/${p.id}/roll-call`, { votes: [{ participant_id: v.participant_id, choice }] });
      S.messages.set("chair", { ok: true, text: `Đã ghi nhận phiếu của ${v.name}.` });
      await loadVoters(p.id);
      ok = true;
    } catch (err) {
      S.messages.set("chair", { ok: false, text: err.message });
    }
    render();
    return ok;
  }

  // ---------------------------------------------------------------- paper ballots (secret polls)

  // People without a tablet vote on paper: the chair or secretary ticks who put a paper in the box, then
  // enters the papers one by one. The server stores them shuffled, with no link to the people ticked.
  function paperState(p) {
    if (S.paper.poll !== p.id) S.paper = { poll: p.id, seats: new Set(), ballots: [], sel: undefined, busy: false, open: null };
    return S.paper;
  }

  function renderPaper(p) {
    const st = S.paper.poll === p.id ? S.paper : { seats: new Set(), ballots: [], sel: undefined, busy: false };
    const waiting = (S.voters.get(p.id) || []).filter((v) => !v.voted);
    const n = st.seats.size;
    // open while the chair uses it (a redraw must not fold it), and at first when someone has no tablet
    const open = st.open ?? (n > 0 || waiting.some((v) => !v.tablet));
    const box = h("details", { class: "vp-missing vp-paper", open,
                               ontoggle: (e) => { if (e.target.open !== open) paperState(p).open = e.target.open; } },
      h("summary", {}, `Phiếu giấy cho người không có máy tính bảng (chưa bỏ phiếu: ${waiting.length})`),
      h("p", { class: "muted vp-hint" }, "1. Chọn những người bỏ phiếu giấy. 2. Thu phiếu của họ vào hòm phiếu, " +
        "rồi nhập lần lượt từng phiếu. Phiếu được lưu không kèm tên người bỏ; nên nhập cùng lúc phiếu của nhiều người."));
    if (!waiting.length) {
      box.append(h("p", { class: "muted" }, "Tất cả đã bỏ phiếu."));
      return box;
    }
    box.append(h("div", { class: "vp-choices", role: "group", "aria-label": "Người bỏ phiếu giấy" },
      waiting.map((v) => {
        const on = st.seats.has(v.participant_id);
        return h("button", { type: "button", class: "vp-choice vp-paper-seat", "aria-pressed": String(on),
                             "data-seat": v.participant_id, onclick: () => {
          const cur = paperState(p);
          if (cur.seats.has(v.participant_id)) cur.seats.delete(v.participant_id); else cur.seats.add(v.participant_id);
          render();
        } }, (on ? "✓ " : "") + v.name + (v.tablet ? "" : " — không có máy tính bảng"));
      })));
    if (!n) return box;
    const entered = st.ballots.length;
    const add = (value) => { const cur = paperState(p); if (cur.ballots.length < cur.seats.size) cur.ballots.push(value);
                             cur.sel = undefined; render(); };
    const yn = p.method.startsWith("yes_no");
    box.append(h("p", { class: "vp-paper-count", role: "status", "aria-live": "polite" },
      h("strong", {}, `Đã nhập ${entered}/${n} phiếu giấy.`)));
    if (entered < n) {
      if (yn) {
        box.append(h("div", { class: "vp-choices", role: "group", "aria-label": "Nhập một phiếu giấy" },
          (p.method === "yes_no" ? ["yes", "no"] : ["yes", "no", "abstain"]).map((c) =>
            h("button", { type: "button", class: `vp-choice vp-${c}`, onclick: () => add(c) }, `+ ${YES_NO[c]}`))));
      } else {
        const ready = st.sel !== undefined && !(Array.isArray(st.sel) && st.sel.length === 0);
        box.append(choiceButtons(p, st.sel, (value) => { paperState(p).sel = value; render(); }, "Nhập một phiếu giấy"),
          h("div", { class: "vp-send" }, h("button", { type: "button", class: "btn", disabled: !ready,
            onclick: () => add(st.sel) }, "Thêm phiếu này"),
          ready ? h("span", { class: "vp-picked" }, `Lựa chọn: ${selectionLabel(p, st.sel)}`) : null));
      }
    }
    if (entered) {
      const counts = new Map();
      for (const b of st.ballots) counts.set(selectionLabel(p, b), (counts.get(selectionLabel(p, b)) || 0) + 1);
      box.append(h("p", { class: "muted" }, "Đã nhập: " + [...counts].map(([k, c]) => `${k} ${c}`).join("; ") + "."),
        h("button", { type: "button", class: "btn", onclick: () => { paperState(p).ballots.pop(); render(); } },
          "Xóa phiếu vừa nhập"));
    }
    box.append(h("div", { class: "vp-send" },
      h("button", { type: "button", class: "btn btn-primary vp-submit vp-paper-submit", disabled: entered !== n || st.busy,
                    onclick: () => submitPaper(p) }, st.busy ? "Đang ghi nhận…" : `Ghi nhận ${n} phiếu giấy`),
      h("button", { type: "button", class: "btn", onclick: () => {
        S.paper = { poll: p.id, seats: new Set(), ballots: [], sel: undefined, busy: false, open: true }; render();
      } }, "Làm lại")));
    return box;
  }

  async function submitPaper(p) {
    const st = paperState(p);
    if (st.ballots.length !== st.seats.size) return;
    if (!await ask(`Ghi nhận ${st.seats.size} phiếu giấy?`, { detail: "Sau khi ghi nhận không sửa được.", ok: "Ghi nhận" })) return;
    st.busy = true;
    render();
    try {
      const r = await api("POST", `/api/polls/${p.id}/paper-ballots`,
                          { participant_ids: [...st.seats], choices: st.ballots });
      S.messages.set("chair", { ok: true, text: `Đã ghi nhận ${r.recorded} phiếu giấy (đã bỏ phiếu ${r.cast}/${r.eligible}).` });
      S.paper = { poll: p.id, seats: new Set(), ballots: [], sel: undefined, busy: false, open: true };
      await loadVoters(p.id);
    } catch (err) {
      st.busy = false;
      S.messages.set("chair", { ok: false, text: err.message });
      if (err.status === 409) await loadVoters(p.id);
    }
    render();
  }

  // ---------------------------------------------------------------- proxies (ủy quyền) and vote weights

  // Built once and redrawn only after loading or an action: a live event must not wipe a half-typed note.
  let rightsBox = null;
  const rights = { seats: [], rows: new Map(), msg: null, loaded: false, asked: 0, shown: 0 };

  // keepTyped: a reload caused by someone else's change keeps what the chair is typing in the list.
  async function loadRights({ keepTyped = false } = {}) {
    const mine = ++rights.asked;
    const [room, data] = await Promise.all([api("GET", `/api/meetings/${meetingId}`),
                                            api("GET", `/api/meetings/${meetingId}/voting-rights`)]);
    if (mine < rights.shown) return; // a later load already drew newer data
    rights.shown = mine;
    rights.seats = (room.participants || []).filter((x) => x.voting);
    rights.rows = new Map(data.rights.map((r) => [r.participant_id, r]));
    rights.loaded = true;
    drawRights(keepTyped);
  }

  async function rightsAction(fn, done) {
    try {
      await fn();
      rights.msg = { ok: true, text: done };
    } catch (err) {
      rights.msg = { ok: false, text: err.message };
    }
    // Keep what the chair typed elsewhere in the list: the live event of this very action may have
    // started a load that is drawn first, and the chair may already be typing in another row when this
    // one lands (a saved value equals what was typed, so keeping it is harmless).
    await loadRights({ keepTyped: true }).catch(() => {});
    drawRights(true); // the load may have been dropped for a newer one: keep what the chair typed since
  }

  function drawRights(keepTyped = false) {
    if (!rightsBox) return;
    const body = rightsBox.querySelector(".vp-rights-body");
    const typed = new Map(keepTyped ? [...body.querySelectorAll("[data-key]")]
      .filter((e) => e.value !== e.dataset.initial).map((e) => [e.dataset.key, e.value]) : []);
    const name = (id) => rights.seats.find((x) => x.id === id)?.name || `#${id}`;
    const base = `/api/meetings/${meetingId}/voting-rights`;
    const rows = rights.seats.map((seat) => {
      const r = rights.rows.get(seat.id) || { weight: 1, proxy_holder_id: null };
      const weight = h("input", { type: "number", min: 0, max: 1000000, value: r.weight, class: "vp-weight",
                                  "aria-label": `Trọng số phiếu của ${seat.name}`, "data-key": `w${seat.id}`,
                                  "data-initial": String(r.weight) });
      const proxy = r.proxy_holder_id
        ? [h("span", { class: "vp-proxy-given" }, `Đã ủy quyền cho ${name(r.proxy_holder_id)}` +
            (r.note ? ` (${r.note})` : "")),
           h("button", { type: "button", class: "btn", onclick: () => rightsAction(
             () => api("DELETE", `${base}/proxies/${seat.id}`), `Đã hủy ủy quyền của ${seat.name}.`) }, "Hủy ủy quyền")]
        : (() => {
            const holder = h("select", { "aria-label": `Người nhận ủy quyền của ${seat.name}`, "data-key": `h${seat.id}`,
                                         "data-initial": "" },
              h("option", { value: "" }, "— Ủy quyền cho —"),
              rights.seats.filter((x) => x.id !== seat.id).map((x) => h("option", { value: x.id }, x.name)));
            const note = h("input", { type: "text", placeholder: "Ghi chú (giấy ủy quyền số…)",
                                      "aria-label": `Ghi chú ủy quyền của ${seat.name}`, "data-key": `n${seat.id}`,
                                      "data-initial": "" });
            return [holder, note, h("button", { type: "button", class: "btn", onclick: () => {
              if (!holder.value) { rights.msg = { ok: false, text: "Hãy chọn người nhận ủy quyền." }; drawRights(); return; }
              rightsAction(() => api("POST", `${base}/proxies`, { grantor_id: seat.id, holder_id: Number(holder.value),
                                                                   note: note.value }),
                           `Đã ghi nhận ${seat.name} ủy quyền cho ${name(Number(holder.value))}.`);
            } }, "Ủy quyền")];
          })();
      return h("li", { "data-seat": seat.id },
        h("div", {}, h("strong", {}, seat.name), " ",
          h("span", { class: "muted" }, seat.present ? "có mặt" : "vắng mặt")),
        h("div", { class: "vp-actions" },
          h("span", { class: "vp-countdown" }, weight, h("button", { type: "button", class: "btn", onclick: () =>
            rightsAction(() => api("PUT", `${base}/weights/${seat.id}`, { weight: Number(weight.value) }),
                         `Đã lưu trọng số phiếu của ${seat.name}.`) }, "Lưu trọng số")),
          proxy));
    });
    for (const li of rows) {
      for (const e of li.querySelectorAll("[data-key]")) if (typed.has(e.dataset.key)) e.value = typed.get(e.dataset.key);
    }
    body.replaceChildren(...[
      h("p", { class: "muted" }, "Ủy quyền và trọng số được chốt khi mở biểu quyết: thay đổi áp dụng cho biểu quyết " +
        "mở sau đó. Trọng số chỉ dùng cho biểu quyết có tính trọng số."),
      rights.msg ? h("p", { class: `vp-msg ${rights.msg.ok ? "ok" : "err"}`, role: "alert" }, rights.msg.text) : null,
      rights.loaded ? (rows.length ? h("ul", { class: "list vp-rights" }, rows)
        : h("p", { class: "muted" }, "Chưa có đại biểu có quyền biểu quyết.")) : h("p", { class: "muted" }, "Đang tải…"),
    ].filter(Boolean));
  }

  function renderRights() {
    if (rightsBox) return rightsBox;
    rightsBox = h("details", { class: "vp-rights-box" }, h("summary", { class: "btn" }, "Ủy quyền và trọng số phiếu"),
      h("div", { class: "vp-rights-body" }));
    rightsBox.addEventListener("toggle", () => { if (rightsBox.open) loadRights().catch((err) => {
      rights.msg = { ok: false, text: err.message }; drawRights(); }); });
    drawRights();
    return rightsBox;
  }

  let createForm = null; // built once: a live event redrawing the panel must not wipe what the chair is typing

  function renderCreate() {
    if (createForm) return createForm;
    const f = h("form", { class: "form vp-create" });
    const field = (label, input) => h("label", {}, h("span", {}, label), input);
    const title = h("input", { name: "title", required: true, placeholder: "Ví dụ: Thông qua Tờ trình số 12/TTr-UBND" });
    const method = h("select", { name: "method" },
      h("option", { value: "yes_no_abstain" }, "Tán thành / Không tán thành / Không biểu quyết"),
      h("option", { value: "yes_no" }, "Tán thành / Không tán thành"),
      h("option", { value: "single" }, "Chọn một phương án"),
      h("option", { value: "multiple" }, "Chọn nhiều phương án"),
      h("option", { value: "ranked" }, "Xếp thứ tự ưu tiên (bầu)"));
    const options = h("textarea", { name: "options", rows: 4, placeholder: "Mỗi dòng một phương án" });
    const seats = h("input", { name: "seats", type: "number", min: 1, value: 1 });
    const maxChoices = h("input", { name: "max_choices", type: "number", min: 1, value: 1 });
    const secret = h("input", { name: "secret", type: "checkbox" });
    const change = h("input", { name: "allow_change", type: "checkbox" });
    const visibility = h("select", { name: "visibility" },
      h("option", { value: "closed" }, "Khi kết thúc"), h("option", { value: "published" }, "Khi công bố"),
      h("option", { value: "live" }, "Ngay khi đang bỏ phiếu (chỉ biểu quyết công khai)"));
    // named presets (meetings.voting_rules.PRESETS): each sets the majority and its base below
    const PRESETS = [
      ["half_members", "Quá nửa tổng số thành viên", "absolute", "entitled",
        "Số tán thành phải hơn một nửa tổng số thành viên có quyền biểu quyết (kể cả người vắng mặt), không phải một nửa số phiếu đã bỏ."],
      ["two_thirds_all", "Hai phần ba tổng số đại biểu", "two_thirds", "entitled",
        "Số tán thành phải đạt ít nhất hai phần ba tổng số đại biểu (kể cả người vắng mặt); dùng cho các vấn đề đặc biệt của Hội đồng nhân dân."],
      ["half_present", "Quá nửa số đại biểu có mặt", "absolute", "present",
        "Số tán thành phải hơn một nửa số đại biểu có mặt khi mở biểu quyết (kể cả phiếu ủy quyền)."],
      ["two_thirds_present", "Hai phần ba số đại biểu có mặt", "two_thirds", "present",
        "Số tán thành phải đạt ít nhất hai phần ba số đại biểu có mặt khi mở biểu quyết."],
      ["three_quarters_all", "Ba phần tư tổng số thành viên", "three_quarters", "entitled",
        "Số tán thành phải đạt ít nhất ba phần tư tổng số thành viên có quyền biểu quyết."],
      ["simple_valid", "Đa số thường", "simple", "valid",
        "Số tán thành nhiều hơn số không tán thành (không tính phiếu không biểu quyết)."],
    ];
    const preset = h("select", { name: "preset" },
      ...PRESETS.map(([key, label]) => h("option", { value: key }, label)), h("option", { value: "" }, "Tự chọn…"));
    const presetHelp = h("p", { class: "muted vp-preset-help" }, PRESETS[0][4]);
    const tieRule = h("input", { name: "tie_rule", type: "checkbox" });
    const tieHelp = h("p", { class: "muted vp-tie-help" });
    const majority = h("select", { name: "majority" },
      h("option", { value: "absolute" }, "Quá nửa"), h("option", { value: "simple" }, "Đa số thường"),
      h("option", { value: "two_thirds" }, "Ít nhất 2/3"), h("option", { value: "three_quarters" }, "Ít nhất 3/4"));
    const base = h("select", { name: "base" },
      h("option", { value: "entitled" }, "Tổng số đại biểu có quyền biểu quyết"),
      h("option", { value: "present" }, "Số đại biểu có mặt"),
      h("option", { value: "valid" }, "Số phiếu hợp lệ"), h("option", { value: "cast" }, "Số phiếu đã bỏ"));
    const duration = h("input", { name: "duration_seconds", type: "number", min: 10, placeholder: "Không giới hạn" });
    const choiceFields = h("div", { class: "vp-choice-fields", hidden: true },
      field("Các phương án", options), field("Số người/phương án được chọn", seats),
      field("Mỗi phiếu chọn tối đa", maxChoices));
    const customFields = h("div", { class: "vp-custom-rule", hidden: true },
      field("Điều kiện thông qua", majority), field("Tính trên", base));
    const syncPreset = () => {
      const chosen = PRESETS.find(([key]) => key === preset.value);
      customFields.hidden = Boolean(chosen);
      if (chosen) { majority.value = chosen[2]; base.value = chosen[3]; }
      presetHelp.textContent = chosen ? chosen[4] : "Chọn cách tính đa số và cơ sở tính tỷ lệ.";
    };
    // the chair's tie rule needs the chair's vote: named yes/no polls only (the server refuses it otherwise)
    const syncTie = () => {
      const usable = method.value.startsWith("yes_no") && !secret.checked;
      tieRule.disabled = !usable;
      if (!usable) tieRule.checked = false;
      tieHelp.textContent = secret.checked
        ? "Bỏ phiếu kín không áp dụng được quy tắc này: phiếu kín không cho biết Chủ tọa đã biểu quyết thế nào."
        : usable ? "Theo Quy chế làm việc của Chính phủ, UBND: khi số tán thành và không tán thành ngang nhau thì " +
          "quyết định theo ý kiến mà Chủ tọa đã biểu quyết."
          : "Chỉ áp dụng cho biểu quyết tán thành/không tán thành.";
    };
    preset.addEventListener("change", syncPreset);
    secret.addEventListener("change", syncTie);
    method.addEventListener("change", () => { choiceFields.hidden = method.value.startsWith("yes_no"); syncTie(); });
    syncTie();
    f.append(h("h4", {}, "Tạo biểu quyết mới"), field("Nội dung biểu quyết", title), field("Hình thức", method),
      choiceFields, field("Quy tắc thông qua", preset), presetHelp, customFields,
      h("label", { class: "vp-check" }, tieRule, " Số phiếu ngang nhau thì theo ý kiến của Chủ tọa"), tieHelp,
      field("Hiển thị kết quả", visibility), field("Thời gian (giây)", duration),
      h("label", { class: "vp-check" }, secret, " Bỏ phiếu kín"),
      h("label", { class: "vp-check" }, change, " Cho phép đổi phiếu trước khi kết thúc"),
      h("button", { type: "submit", class: "btn btn-primary" }, "Tạo biểu quyết"));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { meeting_id: meetingId, title: title.value, method: method.value, majority: majority.value,
                     base: base.value, visibility: visibility.value, secret: secret.checked,
                     allow_change: change.checked, tie_rule: tieRule.checked ? "chair" : "" };
      if (duration.value) body.duration_seconds = Number(duration.value);
      if (!method.value.startsWith("yes_no")) {
        body.options = options.value.split("\n").map((s) => s.trim()).filter(Boolean);
        body.seats = Number(seats.value) || 1;
        if (method.value === "multiple") body.max_choices = Number(maxChoices.value) || 1;
      }
      try {
        const p = await api("POST", "/api/polls", body);
        S.polls.set(p.id, p);
        f.reset();
        choiceFields.hidden = true;
        syncPreset();
        syncTie();
        S.messages.set("chair", { ok: true, text: "Đã tạo biểu quyết (dự thảo). Bấm «Mở biểu quyết» khi sẵn sàng." });
      } catch (err) {
        S.messages.set("chair", { ok: false, text: err.message });
      }
      render();
    });
    createForm = h("details", { class: "vp-new" }, h("summary", { class: "btn" }, "+ Tạo biểu quyết"), f);
    return createForm;
  }

  // ---------------------------------------------------------------- start

  function setStatus(state) {
    S.status = state;
    const node = root.querySelector(".vp-offline");
    if (node) { node.hidden = state === "online"; node.textContent = STATUS_TEXT[state] || ""; }
    if (state === "online") loadAll().catch(() => {}); // after a reconnect, refetch what the panel shows
  }

  live = connect({
    topics: [topic], onEvent, onStatus: setStatus,
    onSnapshot: () => loadAll().catch(() => {}),
  });
  render();
  loadAll().catch((err) => {
    root.replaceChildren(h("p", { class: "vp-msg err", role: "alert" }, err.message));
  });
  const handle = { state: S, live, reload: loadAll };
  root.eoVoting = handle;
  return handle;
}

for (const node of document.querySelectorAll("[data-voting-panel]")) {
  window.eoVoting = mountVoting(node);
}
