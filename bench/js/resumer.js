// One load-generator worker for the resume rows (bench/recovery.py): Pusher sockets on one
// channel that remember the last position they saw, are dropped together, and come back
// together, each subscribing with its own position (a resume) or without one (a fresh subscribe).
// Driven by JSON lines on stdin, answers with JSON lines on stdout (bench/loadgen.py's NodeWorker).
//
// A resuming socket is live again when it has its replay and then `tabcast:resumed`; it is
// counted "ok" only if the replay was exactly the expected messages, in order (consecutive
// offsets right after its position, in its epoch), and `tabcast:resumed` said recovered true
// with that many missed. A fresh socket is live at `pusher_internal:subscription_succeeded`.
'use strict';
const WebSocket = require('ws');
const { now, out, serve } = require('./worker');

let sockets = []; // open sockets
let positions = []; // one slot per socket ever connected: the last position it saw (a string)

function parsePosition(text) {
  const at = text.lastIndexOf(':');
  return { epoch: text.slice(0, at), offset: Number(text.slice(at + 1)) };
}

// Opens socket `slot`, subscribes (with its position if `resume`); resolves with
// {ready: time, ok: bool, why} once live, or {ready: null, why} on failure or timeout.
function open(cmd, slot, resume) {
  return new Promise((resolve) => {
    const ws = new WebSocket(cmd.url, { perMessageDeflate: false, skipUTF8Validation: true });
    const since = resume ? parsePosition(positions[slot]) : null;
    let replayed = 0, next = since ? since.offset + 1 : 0, live = false, why = null;
    const finish = (result) => { live = true; clearTimeout(timer); resolve(result); };
    const timer = setTimeout(() => { if (!live) { ws.terminate(); finish({ ready: null, why: 'timeout' }); } },
      cmd.timeout_ms);
    ws.on('error', () => { if (!live) finish({ ready: null, why: 'error' }); });
    sockets.push(ws);
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.position !== undefined && frame.channel === cmd.channel) positions[slot] = frame.position;
      if (live) return;
      if (frame.event === 'pusher:connection_established') {
        const subscribe = { channel: cmd.channel };
        if (resume) subscribe.position = positions[slot];
        ws.send(JSON.stringify({ event: 'pusher:subscribe', data: subscribe }));
      } else if (frame.event === 'pusher_internal:subscription_succeeded') {
        if (!resume) finish({ ready: now(), ok: true });
      } else if (frame.event === 'tabcast:resumed') {
        const info = JSON.parse(frame.data);
        if (why === null && !(info.recovered && info.missed === cmd.missed && replayed === cmd.missed)) {
          why = `resumed ${frame.data} after ${replayed} replayed, expected ${cmd.missed}`;
        }
        finish({ ready: now(), ok: why === null, why });
      } else if (resume && frame.channel === cmd.channel && frame.position !== undefined) {
        const at = parsePosition(frame.position);
        if (why === null && (at.epoch !== since.epoch || at.offset !== next)) {
          why = `got ${frame.position} where ${since.epoch}:${next} was due`;
        }
        replayed++;
        next = at.offset + 1;
      }
    });
  });
}

// Opens `count` sockets (new slots, or every slot with `slots: "all"`), all at once or
// `concurrency` at a time; answers when every one is live or failed.
async function connect(cmd) {
  const resume = Boolean(cmd.resume);
  const slots = [];
  if (cmd.count === undefined) {
    for (let i = 0; i < positions.length; i++) slots.push(i);
  } else {
    for (let i = 0; i < cmd.count; i++) slots.push(positions.push(null) - 1);
  }
  const t_start = now();
  let ok = 0, failed = 0, bad = 0, t_end = t_start, next = 0;
  const whys = [];
  const lane = async () => {
    while (next < slots.length) {
      const result = await open(cmd, slots[next++], resume);
      if (result.ready === null) failed++;
      else if (!result.ok) bad++;
      else ok++;
      if (result.ready !== null) t_end = Math.max(t_end, result.ready);
      if (result.why && whys.length < 3) whys.push(result.why);
    }
  };
  const lanes = Math.min(cmd.concurrency || slots.length, slots.length);
  await Promise.all(Array.from({ length: lanes }, lane));
  out({ type: 'connected', ok, failed, bad, whys, t_start, t_end });
}

function drop() {
  for (const ws of sockets) ws.terminate();
  sockets = [];
  out({ type: 'dropped', slots: positions.length });
}

const handlers = {
  connect,
  drop,
  positions: () => out({ type: 'positions', positions }),
  forget: () => { drop(); positions = []; },
  exit: () => { for (const ws of sockets) ws.terminate(); process.exit(0); },
};

serve(handlers);
