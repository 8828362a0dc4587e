// A server refusal (4000-4099) ends in `failed` with a reason, and no retry.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { refusalReason } from '../src/hub/backoff.js';
import { Hub } from '../src/hub/hub.js';
import { PusherSocket } from '../src/hub/socket.js';
import { PROTOCOL_VERSION } from '../src/shared/protocol.js';
import { FakeTimers, fakeWebSocketClass } from './fakes.js';

const ORIGIN_REFUSED = { event: 'pusher:error', data: { code: 4009, message: 'Origin not allowed: https://x.test' } };

test('reasons by close code and message', () => {
  assert.equal(refusalReason(4009, 'Origin not allowed: https://x.test'), 'origin_not_allowed');
  assert.equal(refusalReason(4009, 'Connection not authorized: invalid signin signature'), 'unauthorized');
  assert.equal(refusalReason(4009, 'You got disconnected by the app.'), 'terminated');
  assert.equal(refusalReason(4001, 'Application does not exist: k'), 'app_not_found');
  assert.equal(refusalReason(4003), 'app_disabled');
  assert.equal(refusalReason(4004), 'over_connection_quota');
  assert.equal(refusalReason(4050), 'refused');
});

test('a socket refused for its origin fails with origin_not_allowed and never reconnects', () => {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const states = [];
  const socket = new PusherSocket({
    url: 'ws://h/app/k?protocol=7', WebSocket: FakeWebSocket, timers, onState: (p, c) => states.push(c),
    onFrame: () => {},
  });
  socket.connect();
  sockets[0].receive(ORIGIN_REFUSED);
  sockets[0].serverClose(4009);
  timers.tick(10 * 60 * 1000);
  assert.equal(sockets.length, 1);
  assert.deepEqual(states, ['connecting', 'failed']);
  assert.deepEqual(socket.failure, { reason: 'origin_not_allowed', code: 4009,
    message: 'Origin not allowed: https://x.test' });
  socket.connect(); // a new page load tries again: the old reason is cleared
  assert.equal(socket.failure, null);
});

test('a soft error does not become the reason of a later close', () => {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const socket = new PusherSocket({ url: 'ws://h/app/k', WebSocket: FakeWebSocket, timers, onState: () => {},
    onFrame: () => {} });
  socket.connect();
  sockets[0].establish();
  sockets[0].receive({ event: 'pusher:error', data: { code: 4301, message: 'Client event rejected' } });
  sockets[0].serverClose(4001);
  assert.equal(socket.failure.reason, 'app_not_found');
  assert.equal(socket.failure.message, '');
});

test('the hub tells its tabs why the socket failed', () => {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const hub = new Hub({ timers, socketOptions: { WebSocket: FakeWebSocket, timers } });
  const inbox = [];
  hub.handle({ t: 'hello', tab: 'A', v: PROTOCOL_VERSION, url: 'ws://h/app/k', channels: [] }, (m) => inbox.push(m));
  sockets[0].receive(ORIGIN_REFUSED);
  sockets[0].serverClose(4009);
  const failed = inbox.filter((m) => m.t === 'state' && m.current === 'failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0].failure.reason, 'origin_not_allowed');
  hub.close();
});
