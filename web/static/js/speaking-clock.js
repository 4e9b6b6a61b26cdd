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

export function clockLabel(c) {
  if (c.paused) return "Tạm dừng";
  if (c.limit === null) return "Thời gian đã nói";
  return c.over ? "Quá thời gian" : "Thời gian còn lại";
}
