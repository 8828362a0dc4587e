// One load-generator worker: many WebSocket subscribers in one Node process.
// Driven by JSON lines on stdin, answers with JSON lines on stdout (see bench/loadgen.py).
// mode "plain": a bare socket receives every broadcast (baselines);
// mode "pusher": Pusher protocol 7 (wait for connection_established, subscribe, wait for
// subscription_succeeded), as pusher-js does it.
'use strict';
const WebSocket = require('ws');
const { now, out, serve } = require('./worker');

const MARK = Buffer.from('@t=');

let sockets = [];
let received = 0;
let lastAt = 0;
let latencies = null; // an array while latency is being sampled
let expect = null; // {target, timer}

function onBenchMessage(data) {
  received++;
  lastAt = now();
  if (latencies !== null) {
    const i = data.indexOf(MARK);
    if (i >= 0) latencies.push(lastAt - parseFloat(data.toString('latin1', i + 3, i + 24)));
  }
  if (expect !== null && received >= expect.target) finishExpect(true);
}

function finishExpect(complete) {
  clearTimeout(expect.timer);
  expect = null;
  out({ type: 'done', complete, received, t_last: lastAt });
}

// Resolves with [t_open, t_ready] or null; ready = open (plain) / established or subscribed (pusher).
function openOne(cmd) {
  return new Promise((resolve) => {
    const ws = new WebSocket(cmd.url, { perMessageDeflate: false, skipUTF8Validation: true });
    let ready = false;
    const timer = setTimeout(() => { if (!ready) { ws.terminate(); resolve(null); } }, cmd.timeout_ms);
    const done = () => { ready = true; clearTimeout(timer); sockets.push(ws); resolve(now()); };
    ws.on('error', () => { if (!ready) { clearTimeout(timer); resolve(null); } });
    if (cmd.mode === 'plain') {
      ws.on('open', done);
      ws.on('message', (data) => { if (ready) onBenchMessage(data); });
      return;
    }
    ws.on('message', (data) => {
      if (ready) return onBenchMessage(data);
      const frame = JSON.parse(data.toString());
      if (frame.event === 'pusher:connection_established') {
        if (!cmd.channel) return done();
        ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: cmd.channel } }));
      } else if (frame.event === 'pusher_internal:subscription_succeeded') {
        done();
      }
    });
  });
}

async function connect(cmd) {
  const t_start = now();
  let next = 0, ok = 0, failed = 0, t_end = t_start;
  const lane = async () => {
    while (next < cmd.count) {
      next++;
      const t = await openOne(cmd);
      if (t === null) failed++; else { ok++; t_end = Math.max(t_end, t); }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.count) }, lane));
  out({ type: 'connected', ok, failed, t_start, t_end });
}

function close() {
  for (const ws of sockets) ws.terminate();
  sockets = [];
  out({ type: 'closed' });
}

const handlers = {
  connect,
  reset: (cmd) => { received = 0; lastAt = 0; latencies = cmd.latency ? [] : null; out({ type: 'reset' }); },
  expect: (cmd) => {
    const target = cmd.per_socket * sockets.length;
    if (received >= target) return out({ type: 'done', complete: true, received, t_last: lastAt });
    expect = { target, timer: setTimeout(() => finishExpect(false), cmd.timeout_ms) };
  },
  stats: () => out({ type: 'stats', received, t_last: lastAt, open: sockets.filter((s) => s.readyState === 1).length,
                     latencies: latencies || [] }),
  close,
  exit: () => { close(); process.exit(0); },
};

serve(handlers);
