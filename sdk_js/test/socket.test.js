import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PusherSocket } from '../src/hub/socket.js';
import { FakeTimers, fakeWebSocketClass } from './fakes.js';

function setup(options = {}) {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const states = [];
  const frames = [];
  const socket = new PusherSocket({
    url: 'ws://h/app/k?protocol=7', WebSocket: FakeWebSocket, timers, random: () => 1,
    backoff: { min: 1000, max: 8000 },
    onState: (previous, current) => states.push(current), onFrame: (f) => frames.push(f), ...options,
  });
  return { socket, sockets, timers, states, frames };
}

test('connects, learns its socket id and passes other frames on', () => {
  const { socket, sockets, states, frames } = setup();
  socket.connect();
  assert.equal(sockets.length, 1);
  sockets[0].establish('9.9');
  assert.deepEqual(states, ['connecting', 'connected']);
  assert.equal(socket.socketId, '9.9');
  sockets[0].receive({ event: 'e', channel: 'c', data: '{}' });
  assert.deepEqual(frames, [{ event: 'e', channel: 'c', data: '{}' }]);
});

test('answers server pings', () => {
  const { socket, sockets } = setup();
  socket.connect();
  sockets[0].establish();
  sockets[0].receive({ event: 'pusher:ping', data: {} });
  assert.deepEqual(sockets[0].sent, [{ event: 'pusher:pong', data: {} }]);
});

test('4000-4099: fails without retrying', () => {
  const { socket, sockets, timers, states } = setup();
  socket.connect();
  sockets[0].establish();
  sockets[0].serverClose(4001);
  timers.tick(60000);
  assert.equal(sockets.length, 1);
  assert.equal(states.at(-1), 'failed');
});

test('4200-4299: reconnects at once', () => {
  const { socket, sockets, timers, states } = setup();
  socket.connect();
  sockets[0].establish();
  sockets[0].serverClose(4200);
  timers.tick(0);
  assert.equal(sockets.length, 2);
  assert.deepEqual(states.slice(-1), ['connecting']);
});

test('unexpected closes back off exponentially until the server is back', () => {
  const { socket, sockets, timers, states } = setup();
  socket.connect();
  sockets[0].serverClose(1006); // never connected
  assert.equal(states.at(-1), 'unavailable');
  timers.tick(999);
  assert.equal(sockets.length, 1);
  timers.tick(1);
  assert.equal(sockets.length, 2, 'first retry after 1 s');
  sockets[1].serverClose(1006);
  timers.tick(1999);
  assert.equal(sockets.length, 2);
  timers.tick(1);
  assert.equal(sockets.length, 3, 'second retry after 2 s');
  sockets[2].establish('2.2');
  assert.equal(states.at(-1), 'connected');
  sockets[2].serverClose(4100); // backoff range; the attempt count restarted on success
  timers.tick(1000);
  assert.equal(sockets.length, 4);
});

test('a silent connection is pinged, and dropped and replaced if no answer comes', () => {
  const { socket, sockets, timers } = setup();
  socket.connect();
  sockets[0].establish('1.1', 10);
  timers.tick(10000);
  assert.deepEqual(sockets[0].sent, [{ event: 'pusher:ping', data: {} }]);
  timers.tick(30000);
  assert.equal(sockets[0].closedByClient, 1000);
  timers.tick(0);
  assert.equal(sockets.length, 2, 'pong timeout reconnects at once (4201)');
});

test('disconnect() is final until connect()', () => {
  const { socket, sockets, timers, states } = setup();
  socket.connect();
  sockets[0].establish();
  socket.disconnect();
  sockets[0].serverClose(1000);
  timers.tick(60000);
  assert.equal(sockets.length, 1);
  assert.equal(states.at(-1), 'disconnected');
  assert.equal(socket.send({ event: 'x' }), false);
});
