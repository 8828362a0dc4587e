// What every bench/js worker shares: its clock and its command loop. A worker reads one JSON
// command a line on stdin ({op, ...args}), runs handlers[op](cmd), answers with JSON lines on
// stdout (bench/loadgen.py's NodeWorker) and exits when stdin ends.
'use strict';
const readline = require('node:readline');

const now = () => performance.timeOrigin + performance.now();
const out = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');

function serve(handlers) {
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const cmd = JSON.parse(line);
    handlers[cmd.op](cmd);
  });
  process.stdin.on('end', () => process.exit(0));
}

module.exports = { now, out, serve };
