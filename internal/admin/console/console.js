// The operator's console: the live rooms from the server-sent event
// stream, the actions as buttons, and the attendance section. Plain
// script, no framework; the DOM is updated in place so that keyboard focus
// stays on the button it was on while the rooms change.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";

// --- session and actions ---------------------------------------------------

async function refreshSession() {
  const res = await fetch("/api/console/session", { credentials: "same-origin" });
  if (res.status === 401) {
    location.assign("/login");
    return false;
  }
  if (!res.ok) return false;
  const body = await res.json();
  csrf = body.csrf || "";
  $("sign-out").hidden = !body.sign_out;
  return true;
}

async function post(url, retried) {
  const res = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: "{}",
  });
  // A restarted bridge without a token has a new session key: get a new
  // session once and try again.
  if (res.status === 403 && !retried && (await refreshSession())) return post(url, true);
  if (res.status === 401) location.assign("/login");
  return res;
}

function showError(text) {
  const m = $("message");
  m.textContent = "";
  // A fresh text node makes screen readers announce a repeated message.
  window.setTimeout(() => { m.textContent = text; }, 50);
}

function announce(text) {
  const a = $("announce");
  a.textContent = "";
  window.setTimeout(() => { a.textContent = text; }, 50);
}

const actionWords = {
  mute: "Mute", unmute: "Unmute", wait: "Move to waiting", return: "Return to the room",
  remove: "Remove", facilitator: "Make facilitator",
  lock: "Lock", unlock: "Unlock", "lecture-on": "Lecture on", "lecture-off": "Lecture off", end: "End session",
};
// phrase says what an action does, as a button's accessible name and in
// messages: "Mute caller 3", "End the session".
function phrase(action, seat) {
  const c = "caller " + seat;
  return {
    mute: "Mute " + c, unmute: "Unmute " + c, wait: "Move " + c + " to waiting",
    return: "Return " + c + " to the room", remove: "Remove " + c, facilitator: "Make " + c + " facilitator",
    lock: "Lock the session", unlock: "Unlock the session", "lecture-on": "Turn lecture on",
    "lecture-off": "Turn lecture off", end: "End the session",
  }[action];
}
const doneWords = {
  mute: "muted", unmute: "unmuted", wait: "moved to waiting", return: "returned to the room",
  remove: "removed", facilitator: "made facilitator",
  lock: "locked", unlock: "unlocked", "lecture-on": "lecture on", "lecture-off": "lecture off", end: "ended",
};

function confirmAction(text) {
  const dlg = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-yes").removeEventListener("click", yes);
      $("confirm-no").removeEventListener("click", no);
      dlg.removeEventListener("cancel", no);
      if (dlg.open) dlg.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = (ev) => { if (ev) ev.preventDefault(); done(false); };
    $("confirm-yes").addEventListener("click", yes);
    $("confirm-no").addEventListener("click", no);
    dlg.addEventListener("cancel", no);
    dlg.showModal();
    $("confirm-no").focus();
  });
}

async function act(button) {
  const group = button.closest(".room").dataset.group;
  const action = button.dataset.action;
  const seat = button.dataset.seat;
  const who = seat ? "caller " + seat : "the session";
  if (action === "remove" || action === "end") {
    const text = action === "remove"
      ? "Remove caller " + seat + " from " + group + "? They are hung up and cannot rejoin this session."
      : "End the session of " + group + "? Everyone is told goodbye and hung up.";
    const ok = await confirmAction(text);
    button.focus();
    if (!ok) return;
  }
  const g = encodeURIComponent(group);
  const url = seat
    ? "/api/rooms/" + g + "/seats/" + encodeURIComponent(seat) + "/" + action
    : "/api/rooms/" + g + "/" + action;
  button.disabled = true;
  try {
    const res = await post(url);
    if (res.ok) {
      $("message").textContent = "";
      announce(group + ": " + who + " " + doneWords[action] + ".");
      return;
    }
    let msg = "Refused (" + res.status + ").";
    try {
      const body = await res.json();
      if (body && body.error) msg = body.error;
    } catch (e) { /* not JSON */ }
    const what = phrase(action, seat);
    showError(group + ": could not " + what[0].toLowerCase() + what.slice(1) + ": " + msg);
  } catch (e) {
    showError("The bridge did not answer.");
  } finally {
    button.disabled = false;
  }
}

// --- live rooms ------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function actionButton(action, seat) {
  const b = el("button", "act");
  b.type = "button";
  if (seat) b.dataset.seat = String(seat);
  setAction(b, action, seat);
  return b;
}

function setAction(b, action, seat, group) {
  if (b.dataset.action === action && b.dataset.group === group) return;
  b.dataset.action = action;
  b.dataset.group = group || "";
  b.textContent = actionWords[action];
  b.setAttribute("aria-label", seat ? phrase(action, seat) : phrase(action) + " of " + group);
  if (action === "remove" || action === "end") b.classList.add("danger");
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return (h ? h + ":" + two(m) : String(m)) + ":" + two(sec);
}

function fmtClock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function makeRoom(group) {
  const art = el("article", "room");
  art.dataset.group = group;
  const head = el("header", "room-head");
  const h = el("h3", "room-name", group);
  const meta = el("p", "room-meta");
  const elapsed = el("time", "elapsed");
  const slot = el("span", "slot");
  const state = el("span", "state");
  meta.append("Session time ", elapsed, " ", slot, " ", state);
  head.append(h, meta);
  const buttons = el("div", "room-actions");
  buttons.setAttribute("role", "group");
  buttons.setAttribute("aria-label", "Session of " + group);
  for (const a of ["lock", "lecture-on", "end"]) buttons.append(actionButton(a));
  const count = el("p", "count");
  const seats = el("ul", "seats");
  seats.setAttribute("aria-label", "Callers in " + group);
  art.append(head, buttons, count, seats);
  return art;
}

function updateRoom(art, r) {
  art.dataset.locked = String(r.locked);
  art.dataset.lecture = String(r.lecture);
  art.dataset.started = r.started;
  const elapsed = art.querySelector(".elapsed");
  elapsed.dateTime = r.started;
  elapsed.textContent = fmtDuration(Date.now() - Date.parse(r.started));
  art.querySelector(".slot").textContent = r.meeting_start
    ? "· meeting " + fmtClock(r.meeting_start) + "–" + fmtClock(r.meeting_end)
    : "· unscheduled";
  const states = [];
  if (r.node) states.push("on node " + r.node);
  if (r.locked) states.push("locked");
  if (r.lecture) states.push("lecture");
  art.querySelector(".state").textContent = states.length ? "· " + states.join(", ") : "";
  const [lock, lecture, end] = art.querySelectorAll(".room-actions button");
  setAction(lock, r.locked ? "unlock" : "lock", 0, r.group);
  setAction(lecture, r.lecture ? "lecture-off" : "lecture-on", 0, r.group);
  setAction(end, "end", 0, r.group);

  const inRoom = r.seats.filter((s) => s.placement === "room").length;
  const waiting = r.seats.length - inRoom;
  art.querySelector(".count").textContent = r.seats.length + (r.seats.length === 1 ? " caller" : " callers") +
    (waiting ? " (" + waiting + " waiting)" : "");

  const list = art.querySelector(".seats");
  const have = new Map();
  for (const li of list.children) have.set(li.dataset.seat, li);
  const want = new Set(r.seats.map((s) => String(s.seat)));
  for (const [n, li] of have) {
    if (!want.has(n)) {
      li.remove();
      announce(r.group + ": caller " + n + " left.");
    }
  }
  let prev = null;
  for (const s of r.seats) {
    const key = String(s.seat);
    let li = have.get(key);
    if (!li) {
      li = makeSeat(s.seat);
      list.insertBefore(li, prev ? prev.nextSibling : list.firstChild);
      if (art.dataset.seen) announce(r.group + ": caller " + s.seat + " joined.");
    }
    updateSeat(li, s, r.group);
    prev = li;
  }
  art.dataset.seen = "1";
}

function makeSeat(n) {
  const li = el("li", "seat");
  li.dataset.seat = String(n);
  const label = el("span", "label");
  const name = el("strong", "name", "caller " + n);
  const marks = el("span", "marks");
  label.append(name, marks);
  const buttons = el("span", "seat-actions");
  buttons.setAttribute("role", "group");
  buttons.setAttribute("aria-label", "Caller " + n);
  for (const a of ["mute", "wait", "facilitator", "remove"]) buttons.append(actionButton(a, n));
  li.append(label, buttons);
  return li;
}

function updateSeat(li, s, group) {
  const d = li.dataset;
  const prevHand = d.hand;
  d.role = s.role;
  d.talking = String(s.talking);
  d.muted = String(s.muted);
  d.hand = String(s.hand);
  d.floor = String(s.floor);
  d.placement = s.placement;
  d.leaving = String(s.leaving);
  d.via = s.via || "";
  const marks = [];
  if (s.role === "facilitator") marks.push(["role", "facilitator"]);
  if (s.talking) marks.push(["talking", "talking"]);
  if (s.facilitator_muted) marks.push(["muted", "muted by facilitator"]);
  else if (s.self_muted) marks.push(["muted", "muted (self)"]);
  else if (s.muted) marks.push(["muted", "muted"]);
  if (s.hand) marks.push(["hand", "hand raised"]);
  if (s.floor) marks.push(["floor", "has the floor"]);
  if (s.placement === "waiting") marks.push(["waiting", "waiting"]);
  if (s.placement === "lobby") marks.push(["waiting", "in the lobby"]);
  if (s.via) marks.push(["via", "via node " + s.via]);
  if (s.leaving) marks.push(["leaving", "leaving"]);
  const box = li.querySelector(".marks");
  const text = marks.map((m) => m[1]).join("|");
  if (box.dataset.text !== text) {
    box.dataset.text = text;
    box.replaceChildren(...marks.map(([cls, t]) => el("span", "mark " + cls, t)));
  }
  if (prevHand === "false" && s.hand) announce(group + ": caller " + s.seat + " raised a hand.");
  const [mute, wait, fac, remove] = li.querySelectorAll(".seat-actions button");
  setAction(mute, s.facilitator_muted ? "unmute" : "mute", s.seat, group);
  setAction(wait, s.placement === "waiting" ? "return" : "wait", s.seat, group);
  // The session rules refuse to move or remove a facilitator: no button
  // that can only fail.
  wait.hidden = s.placement === "lobby" || s.role === "facilitator";
  setAction(fac, "facilitator", s.seat, group);
  fac.hidden = s.role === "facilitator";
  setAction(remove, "remove", s.seat, group);
  remove.hidden = s.role === "facilitator";
}

function render(rooms) {
  const list = $("room-list");
  const have = new Map();
  for (const art of list.children) have.set(art.dataset.group, art);
  const want = new Set(rooms.map((r) => r.group));
  let ended = false;
  for (const [g, art] of have) {
    if (!want.has(g)) {
      art.remove();
      announce(g + ": the session ended.");
      ended = true;
    }
  }
  // An ended session's record is written a moment later: show it.
  if (ended) {
    window.setTimeout(loadAttendance, 1500);
    window.setTimeout(loadAttendance, 6000);
  }
  let prev = null;
  for (const r of rooms) {
    let art = have.get(r.group);
    if (!art) {
      art = makeRoom(r.group);
      list.insertBefore(art, prev ? prev.nextSibling : list.firstChild);
    }
    updateRoom(art, r);
    prev = art;
  }
  $("no-rooms").hidden = rooms.length > 0;
}

function tick() {
  for (const art of document.querySelectorAll(".room")) {
    const started = Date.parse(art.dataset.started);
    if (!isNaN(started)) art.querySelector(".elapsed").textContent = fmtDuration(Date.now() - started);
  }
}

function setStatus(text) {
  const s = $("status");
  if (s.textContent !== text) s.textContent = text;
  s.dataset.state = text;
}

let source = null;
function connect() {
  if (source) source.close();
  source = new EventSource("/api/events");
  source.addEventListener("open", () => {
    setStatus("live");
    refreshSession().catch(() => {});
  });
  source.addEventListener("rooms", (ev) => {
    setStatus("live");
    render(JSON.parse(ev.data));
  });
  source.addEventListener("error", () => {
    setStatus("reconnecting");
    // EventSource retries by itself after a dropped connection, but not
    // after an error answer (signed out, too many consoles): try again.
    if (source.readyState === EventSource.CLOSED) {
      window.setTimeout(async () => {
        try { await refreshSession(); } catch (e) { /* still down */ }
        connect();
      }, 3000);
    }
  });
}

// --- attendance ------------------------------------------------------------

function attendanceQuery() {
  const q = new URLSearchParams();
  for (const [k, id] of [["group", "filter-group"], ["since", "filter-since"], ["until", "filter-until"]]) {
    const v = $(id).value.trim();
    if (v) q.set(k, v);
  }
  return q;
}

function fmtStay(minutes) {
  if (minutes === null || minutes === undefined) return "";
  const m = Math.round(minutes);
  if (m < 60) return m + " min";
  return Math.floor(m / 60) + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
}

async function loadAttendance() {
  const q = attendanceQuery();
  const qs = q.toString();
  const suffix = qs ? "?" + qs : "";
  // A new address each time, or the browser keeps the chart it has.
  const fresh = new URLSearchParams(q);
  fresh.set("at", String(Date.now()));
  $("chart-sessions").src = "/api/attendance/chart/sessions.svg?" + fresh.toString();
  $("chart-people").src = "/api/attendance/chart/people.svg?" + fresh.toString();
  const csv = new URLSearchParams(q);
  csv.set("format", "csv");
  $("csv").href = "/api/attendance?" + csv.toString();
  const msg = $("attendance-message");
  const body = $("attendance-table").tBodies[0];
  let res;
  try {
    res = await fetch("/api/attendance" + suffix, { credentials: "same-origin" });
  } catch (e) {
    msg.textContent = "The bridge did not answer.";
    return;
  }
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  // 404: this bridge keeps no attendance; hide what would be empty.
  for (const sel of [".charts", "#csv-line", ".table-wrap"]) {
    document.querySelector(sel).hidden = res.status === 404;
  }
  if (!res.ok) {
    msg.textContent = (data && data.error) || "Attendance is not available (" + res.status + ").";
    body.replaceChildren();
    return;
  }
  const sessions = (data && data.sessions) || [];
  msg.textContent = sessions.length ? sessions.length + (sessions.length === 1 ? " session." : " sessions.") : "No sessions in this range.";
  body.replaceChildren(...sessions.map(sessionRow));
}

// sessionRow is one session of GET /api/attendance (attendance.WriteJSON):
// a small session has people null and no stay figures, and its
// people_shown says "fewer than 3".
function sessionRow(s) {
  const tr = el("tr");
  tr.dataset.session = s.id;
  let away = 0;
  for (const n of Object.values(s.turned_away || {})) away += n;
  const cells = [
    ["group", s.group],
    ["start", (s.start || "").slice(0, 16).replace("T", " ")],
    ["length", fmtStay(s.minutes)],
    ["peak", String(s.peak)],
    ["people", s.people_shown],
    ["joins", String(s.joins)],
    ["median", fmtStay(s.median_stay_minutes)],
    ["longest", fmtStay(s.longest_stay_minutes)],
    ["turned-away", String(away)],
  ];
  for (const [cls, text] of cells) tr.append(el("td", cls, text));
  return tr;
}

// --- start -----------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("room-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (b) act(b);
  });
  $("sign-out").addEventListener("click", async () => {
    try { await post("/api/logout"); } finally { location.assign("/login"); }
  });
  $("attendance-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadAttendance();
  });
  refreshSession().catch(() => {});
  connect();
  loadAttendance();
  window.setInterval(tick, 1000);
});
