// The clock of a turn to speak (meetings.speakers.timing, in the browser): the room, the speaker's tablet and the
// room screen count the same way from what the server sends (granted_at, paused_at, paused_seconds, time_limit).
//
//   const c = speakingClock(speaking, Date.now() + serverOffset);
//   c = {elapsed, limit, remaining, over, paused}; clockText(c) -> "02:15" left, "+00:40" over time, or time spoken

import { fmtDuration } from "./meeting-common.js";

export function speakingClock(sp, serverNow) {
  const until = sp.paused_at ? Date.parse(sp.paused_at) : serverNow;
  const elapsed = Math.max(0, Math.floor((until - Date.parse(sp.granted_at)) / 1000) - (sp.paused_seconds || 0));
  const limit = sp.time_limit || null;
  return { elapsed, limit, remaining: limit === null ? null : limit - elapsed, over: limit !== null && elapsed > limit,
    paused: Boolean(sp.paused_at) };
}

export function clockText(c) {
  if (c.limit === null) return fmtDuration(c.elapsed);
  return c.remaining >= 0 ? fmtDuration(c.remaining) : `+${fmtDuration(-c.remaining)}`;
}

// A council's delegation (tổ đại biểu) shares a speaking budget: what it has left at this second of the turn
// (sp.delegation = {name, budget, used_before}); null when the turn has no delegation or it has no budget.
export function delegationLeft(sp, c) {
  const d = sp.delegation;
  if (!d || d.budget === null || d.budget === undefined) return null;
  return d.budget - (d.used_before || 0) - c.elapsed;
}

export function delegationText(sp, c) {
  const left = delegationLeft(sp, c);
  if (left === null) return sp.delegation ? `${sp.delegation.name}` : "";
  return left >= 0 ? `${sp.delegation.name}: còn ${fmtDuration(left)}` : `${sp.delegation.name}: vượt ${fmtDuration(-left)}`;
}

export function clockLabel(c) {
  if (c.paused) return "Tạm dừng";
  if (c.limit === null) return "Thời gian đã nói";
  return c.over ? "Quá thời gian" : "Thời gian còn lại";
}
