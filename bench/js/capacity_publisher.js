// The capacity check's publisher (bench/capacity.py): signed Pusher HTTP publishes at a steady
// rate, publish i going to channel channels[i % channels.length] through server
// targets[i % targets.length], each on a keep-alive connection (at most `sockets` per server),
// as a backend's Pusher library sends them. JSON lines on stdin/stdout (bench/loadgen.py).
//
//   publish {targets: [{host, port}], app: {app_id, key, secret}, channels, rate, duration_ms,
//            sockets, bytes}
//   -> {ok, errors, statuses: {status: count} of the errors, late, per_target: [ok per target],
//       per_channel: [ok per channel], t_first, t_end}
'use strict';
const http = require('node:http');
const { signedPath } = require('./pusher_sign');
const { now, out, serve } = require('./worker');

function publish(cmd) {
  return new Promise((resolve) => {
    const path = `/apps/${cmd.app.app_id}/events`;
    const agents = cmd.targets.map(() => new http.Agent({ keepAlive: true, maxSockets: cmd.sockets || 8 }));
    const perTarget = cmd.targets.map(() => 0);
    const perChannel = cmd.channels.map(() => 0);
    const statuses = {};
    const filler = 'x'.repeat(Math.max(0, (cmd.bytes || 100) - 20));
    const t_first = now();
    const deadline = t_first + cmd.duration_ms;
    let seq = 0, ok = 0, errors = 0, late = 0, inFlight = 0, stopped = false;

    const send = (i) => {
      const t = i % cmd.targets.length;
      const body = JSON.stringify({ name: 'bench', channels: [cmd.channels[i % cmd.channels.length]],
                                    data: `s=${i};${filler}` });
      inFlight++;
      const req = http.request({ host: cmd.targets[t].host, port: cmd.targets[t].port, method: 'POST',
                                 agent: agents[t], path: signedPath(cmd.app, path, body),
                                 headers: { 'content-type': 'application/json',
                                            'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) { ok++; perTarget[t]++; perChannel[i % cmd.channels.length]++; } else {
              errors++;
              statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
            }
            inFlight--;
            finish();
          });
        });
      req.on('error', (err) => {
        errors++;
        statuses[err.code] = (statuses[err.code] || 0) + 1;
        inFlight--;
        finish();
      });
      req.end(body);
    };
    const finish = () => {
      if (!stopped || inFlight > 0) return;
      for (const agent of agents) agent.destroy();
      out({ type: 'published', ok, errors, statuses, late, per_target: perTarget, per_channel: perChannel, t_first,
            t_end: now() });
      resolve();
    };
    // Every 5 ms: send what is due by now (a request more than 50 ms behind its time is "late").
    const tick = () => {
      const t = now();
      const due = Math.floor((Math.min(t, deadline) - t_first) * cmd.rate / 1000);
      if (due - seq > cmd.rate * 0.05) late += due - seq;
      while (seq < due) send(seq++);
      if (t >= deadline) { stopped = true; finish(); } else setTimeout(tick, 5);
    };
    tick();
  });
}

serve({ publish, exit: () => process.exit(0) });
