// The load generator's publisher: frames on a WebSocket (baselines) or signed Pusher HTTP
// API requests (Tabcast). Each payload carries its send time ("@t=<epoch ms>") so
// subscribers can measure publish->deliver latency. JSON lines on stdin/stdout.
//
// Signed HTTP as fast as possible (rate 0) takes a cheaper path than node:http, which cost
// more CPU per request than the server under test: pre-signed request bytes written on raw
// keep-alive sockets, several pipelined per socket, responses counted from their status
// line and content-length (see pipelinedHttp).
'use strict';
const http = require('node:http');
const net = require('node:net');
const WebSocket = require('ws');
const { signedPath } = require('./pusher_sign');
const { now, out, serve } = require('./worker');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const FRAME_BYTES = 130; // the Pusher frame a subscriber receives is ~130 bytes

function payload(seq) {
  const head = `@t=${now().toFixed(3)};s=${seq};`;
  // {"event":"bench","channel":"bench","data":"..."} is 45 bytes around the data
  return head + 'x'.repeat(Math.max(0, FRAME_BYTES - 45 - head.length));
}

function frame(channel, seq) {
  return JSON.stringify({ event: 'bench', channel, data: payload(seq) });
}

let ws = null;
async function wsSender(cmd) {
  if (ws === null) {
    ws = new WebSocket(cmd.url, { perMessageDeflate: false });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  }
  return (seq) => new Promise((resolve) => ws.send(frame(cmd.channel, seq), (err) => resolve(!err)));
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function httpSender(cmd) {
  const path = `/apps/${cmd.app.app_id}/events`;
  return (seq) => new Promise((resolve) => {
    const body = JSON.stringify({ name: 'bench', channels: [cmd.channel], data: payload(seq) });
    const req = http.request({ host: cmd.host, port: cmd.port, method: 'POST', agent,
                               path: signedPath(cmd.app, path, body),
                               headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode === 200)); });
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

// --- signed HTTP at full speed: pre-signed requests pipelined on raw keep-alive sockets ---

const POOL = 512; // distinct signed requests, reused round-robin
const POOL_MAX_AGE_MS = 60_000; // re-signed long before auth_timestamp leaves the 600 s window

// POOL complete requests (head and body), each body its own sequence number; the "@t=" is
// the time the pool was built, so these payloads are not for latency samples.
function requestPool(cmd) {
  const path = `/apps/${cmd.app.app_id}/events`;
  const pool = [];
  for (let i = 0; i < POOL; i++) {
    const body = JSON.stringify({ name: 'bench', channels: [cmd.channel], data: payload(i) });
    pool.push(Buffer.from(`POST ${signedPath(cmd.app, path, body)} HTTP/1.1\r\nhost: ${cmd.host}:${cmd.port}\r\n`
      + `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, 'latin1'));
  }
  return { pool, built: now() };
}

const HEAD_END = '\r\n\r\n';
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

// `concurrency` requests in flight, `pipeline` per socket; stops sending at the deadline (or
// after `count`) and answers once every request sent has its response (or its socket died).
function pipelinedHttp(cmd) {
  return new Promise((resolve) => {
    const depth = Math.max(1, Math.min(cmd.pipeline || 1, cmd.concurrency));
    const nSockets = Math.ceil(cmd.concurrency / depth);
    let requests = requestPool(cmd);
    const t_first = now();
    const deadline = cmd.duration_ms ? t_first + cmd.duration_ms : Infinity;
    let seq = 0, ok = 0, errors = 0, t_last = t_first, open = 0, finished = false;
    const sending = () => seq < cmd.count && now() < deadline;
    const finish = () => {
      if (finished || open > 0) return;
      finished = true;
      out({ type: 'published', ok, errors, late: 0, t_first, t_last, t_end: now() });
      resolve();
    };
    const next = () => {
      if (seq % POOL === 0 && now() - requests.built > POOL_MAX_AGE_MS) requests = requestPool(cmd);
      return requests.pool[seq++ % POOL];
    };
    const openSocket = () => {
      open++;
      const sock = net.connect({ host: cmd.host, port: cmd.port, noDelay: true });
      let inFlight = 0, pending = '', stopped = false, connected = false;
      const fill = (n) => {
        if (stopped) return;
        let sent = 0;
        sock.cork();
        for (; sent < n && sending(); sent++) sock.write(next());
        sock.uncork();
        if (sent) { inFlight += sent; t_last = now(); }
        if (inFlight === 0) { stopped = true; sock.end(); }
      };
      sock.on('connect', () => { connected = true; fill(depth); });
      sock.on('data', (chunk) => {
        pending += chunk.toString('latin1');
        let done = 0;
        for (;;) {
          const end = pending.indexOf(HEAD_END);
          if (end < 0) break;
          const length = CONTENT_LENGTH.exec(pending.slice(0, end + 2));
          const size = end + 4 + (length ? +length[1] : 0);
          if (pending.length < size) break;
          if (pending.startsWith('200 ', 9)) ok++; else errors++;
          pending = pending.slice(size);
          done++;
        }
        inFlight -= done;
        if (done) fill(done);
      });
      sock.on('error', () => {});
      sock.on('close', () => {
        errors += connected ? inFlight : 1; // sent and never answered, or could not connect
        inFlight = 0;
        open--;
        if (connected && !stopped && sending()) openSocket(); else finish();
      });
    };
    for (let i = 0; i < nSockets; i++) openSocket();
  });
}

// Send `count` messages (or for `duration_ms`), `rate` per second (0: as fast as `concurrency` allows).
async function publish(cmd) {
  if (cmd.mode === 'http' && !(cmd.rate > 0)) return pipelinedHttp(cmd);
  const send = cmd.mode === 'ws' ? await wsSender(cmd) : httpSender(cmd);
  const t_first = now();
  const deadline = cmd.duration_ms ? t_first + cmd.duration_ms : Infinity;
  let seq = 0, ok = 0, errors = 0, late = 0, t_last = t_first;
  const lane = async () => {
    while (seq < cmd.count && now() < deadline) {
      const i = seq++;
      if (cmd.rate > 0) {
        const due = t_first + (i * 1000) / cmd.rate;
        const wait = due - now();
        if (wait > 0) await sleep(wait); else if (wait < -5) late++;
      }
      t_last = now();
      if (await send(i)) ok++; else errors++;
    }
  };
  await Promise.all(Array.from({ length: cmd.concurrency }, lane));
  out({ type: 'published', ok, errors, late, t_first, t_last, t_end: now() });
}

serve({ publish, exit: () => process.exit(0) });
