// The capacity check's subscribers (bench/capacity.py): many Pusher protocol 7 sockets in one
// Node process, spread over several servers, each subscribed to its own list of channels.
// Driven by JSON lines on stdin, answers with JSON lines on stdout (bench/loadgen.py NodeWorker).
//
//   connect   {urls, sockets: [[url index, [channels]], ...], concurrency, timeout_ms, rate}
//             opens the sockets (waits for pusher:connection_established), then subscribes each
//             to its channels (waits for every pusher_internal:subscription_succeeded)
//   subscribe {channels: [[channels] per socket, in connect order], concurrency, timeout_ms, rate}
//             (rate: sockets started per second, 0 = as fast as `concurrency` allows)
//   reset / stats / expect {target, timeout_ms}: messages of event "bench" received
//   ping      {timeout_ms}: a pusher:ping on every socket, answered when every pusher:pong is in
//   close     terminates every socket
'use strict';
const WebSocket = require('ws');
const { now, out, serve } = require('./worker');

const BENCH = Buffer.from('{"event":"bench"');
const PONG = Buffer.from('{"event":"pusher:pong"');

let sockets = []; // {ws, pending: Map channel -> resolve}
let received = 0;
let lastAt = 0;
let pongs = 0;
let waiter = null; // {check, done, timer}

function settle() {
  if (waiter !== null && waiter.check()) {
    clearTimeout(waiter.timer);
    const done = waiter.done;
    waiter = null;
    done(true);
  }
}

function wait(check, timeoutMs, done) {
  if (check()) return done(true);
  waiter = { check, done, timer: setTimeout(() => { waiter = null; done(false); }, timeoutMs) };
}

function onMessage(sock, data) {
  if (data.length >= BENCH.length && data.compare(BENCH, 0, BENCH.length, 0, BENCH.length) === 0) {
    received++;
    lastAt = now();
    if (waiter !== null) settle();
    return;
  }
  if (data.length >= PONG.length && data.compare(PONG, 0, PONG.length, 0, PONG.length) === 0) {
    pongs++;
    if (waiter !== null) settle();
    return;
  }
  const frame = JSON.parse(data.toString());
  if (frame.event === 'pusher:ping') {
    sock.ws.send('{"event":"pusher:pong","data":{}}'); // as pusher-js does: the server closes silent sockets
  } else if (frame.event === 'pusher:connection_established' && sock.established) {
    sock.established();
  } else if (frame.event === 'pusher_internal:subscription_succeeded') {
    const resolve = sock.pending.get(frame.channel);
    if (resolve) { sock.pending.delete(frame.channel); resolve(true); }
  } else if (frame.event === 'pusher:error') {
    for (const resolve of sock.pending.values()) resolve(false);
    sock.pending.clear();
  }
}

function open(url, timeoutMs) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    const sock = { ws, pending: new Map(), established: null };
    const timer = setTimeout(() => { ws.terminate(); resolve(null); }, timeoutMs);
    sock.established = () => { sock.established = null; clearTimeout(timer); resolve(sock); };
    ws.on('message', (data) => onMessage(sock, data));
    ws.on('error', () => { clearTimeout(timer); resolve(null); });
    ws.on('close', () => { for (const r of sock.pending.values()) r(false); sock.pending.clear(); });
  });
}

function subscribeOne(sock, channels, timeoutMs) {
  return Promise.all(channels.map((channel) => new Promise((resolve) => {
    const timer = setTimeout(() => { sock.pending.delete(channel); resolve(false); }, timeoutMs);
    sock.pending.set(channel, (ok) => { clearTimeout(timer); resolve(ok); });
    sock.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
  }))).then((oks) => oks.filter(Boolean).length);
}

// Run `job(i)` for i in [0, count) with at most `concurrency` in flight; with `rate` (> 0), job i
// starts no sooner than i / rate seconds after the first.
async function lanes(count, concurrency, job, rate = 0) {
  let next = 0;
  const t0 = now();
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const wait = rate > 0 ? t0 + (i * 1000) / rate - now() : 0;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane));
}

async function connect(cmd) {
  const t_start = now();
  let ok = 0, failed = 0, subscribed = 0, refused = 0;
  const opened = new Array(cmd.sockets.length).fill(null);
  await lanes(cmd.sockets.length, cmd.concurrency, async (i) => {
    const [urlIndex, channels] = cmd.sockets[i];
    const sock = await open(cmd.urls[urlIndex], cmd.timeout_ms);
    if (sock === null) { failed++; return; }
    ok++;
    opened[i] = sock;
    if (channels.length) {
      const n = await subscribeOne(sock, channels, cmd.timeout_ms);
      subscribed += n;
      refused += channels.length - n;
    }
  }, cmd.rate);
  for (const sock of opened) if (sock !== null) sockets.push(sock);
  out({ type: 'connected', ok, failed, subscribed, refused, t_start, t_end: now() });
}

async function subscribe(cmd) {
  const t_start = now();
  let subscribed = 0, refused = 0;
  const todo = []; // sockets with channels to subscribe (the pace counts only those)
  for (let i = 0; i < Math.min(cmd.channels.length, sockets.length); i++) if (cmd.channels[i].length) todo.push(i);
  await lanes(todo.length, cmd.concurrency, async (j) => {
    const i = todo[j];
    const n = await subscribeOne(sockets[i], cmd.channels[i], cmd.timeout_ms);
    subscribed += n;
    refused += cmd.channels[i].length - n;
  }, cmd.rate);
  out({ type: 'subscribed', subscribed, refused, t_start, t_end: now() });
}

function ping(cmd) {
  const target = pongs + sockets.length;
  const t_start = now();
  for (const sock of sockets) sock.ws.send('{"event":"pusher:ping","data":{}}');
  wait(() => pongs >= target, cmd.timeout_ms, (complete) =>
    out({ type: 'pinged', complete, pongs: pongs - (target - sockets.length), t_start, t_end: now() }));
}

function close() {
  for (const sock of sockets) sock.ws.terminate();
  sockets = [];
  out({ type: 'closed' });
}

const handlers = {
  connect,
  subscribe,
  ping,
  reset: () => { received = 0; lastAt = 0; out({ type: 'reset' }); },
  stats: () => out({ type: 'stats', received, t_last: lastAt,
                     open: sockets.filter((s) => s.ws.readyState === 1).length }),
  expect: (cmd) => wait(() => received >= cmd.target, cmd.timeout_ms,
                        (complete) => out({ type: 'done', complete, received, t_last: lastAt })),
  close,
  exit: () => { close(); process.exit(0); },
};

serve(handlers);
