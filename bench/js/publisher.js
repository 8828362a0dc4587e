// The load generator's publisher: frames on a WebSocket (baselines) or signed Pusher HTTP
// API requests (Tabcast). Each payload carries its send time ("@t=<epoch ms>") so
// subscribers can measure publish->deliver latency. JSON lines on stdin/stdout.
'use strict';
const crypto = require('node:crypto');
const http = require('node:http');
const readline = require('node:readline');
const WebSocket = require('ws');

const now = () => performance.timeOrigin + performance.now();
const out = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');
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

// Pusher HTTP API signature: HMAC-SHA256 of "POST\n<path>\n<sorted query>" with the app secret.
function signedRequest(app, path, body) {
  const params = {
    auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0',
    body_md5: crypto.createHash('md5').update(body).digest('hex'),
  };
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  const signature = crypto.createHmac('sha256', app.secret).update(`POST\n${path}\n${query}`).digest('hex');
  return `${path}?${query}&auth_signature=${signature}`;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function httpSender(cmd) {
  const path = `/apps/${cmd.app.app_id}/events`;
  return (seq) => new Promise((resolve) => {
    const body = JSON.stringify({ name: 'bench', channels: [cmd.channel], data: payload(seq) });
    const req = http.request({ host: cmd.host, port: cmd.port, method: 'POST', agent,
                               path: signedRequest(cmd.app, path, body),
                               headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode === 200)); });
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

// Send `count` messages (or for `duration_ms`), `rate` per second (0: as fast as `concurrency` allows).
async function publish(cmd) {
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

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === 'publish') await publish(cmd);
  else if (cmd.op === 'exit') process.exit(0);
});
process.stdin.on('end', () => process.exit(0));
