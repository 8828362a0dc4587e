// Watchlist events reach the signed-in tabs (not as connection errors), and a tab that joins
// later gets the current status.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChannelTable } from '../src/hub/channels.js';
import { recordingIo } from './fakes.js';

function signedIn() {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', '#user');
  table.add('B', 'orders');
  table.authorized('A', { channel: '#user', socket_id: '1.1', auth: 'k:s',
    channel_data: '{"id":"u1","watchlist":["x","y"]}' });
  table.frame({ event: 'pusher:signin_success', data: { user_data: '{"id":"u1","watchlist":["x","y"]}' } });
  io.clear();
  return { io, table };
}

test('watchlist events go to the signed-in tabs only, not as errors', () => {
  const { io, table } = signedIn();
  const events = [{ name: 'online', user_ids: ['x'] }, { name: 'offline', user_ids: ['y'] }];
  table.frame({ event: 'pusher_internal:watchlist_events', data: { events } });
  assert.deepEqual(io.to('A'), [{ t: 'watchlist', events }]);
  assert.deepEqual(io.to('B'), []);
  // (data may also come as a JSON string)
  table.frame({ event: 'pusher_internal:watchlist_events',
    data: JSON.stringify({ events: [{ name: 'online', user_ids: ['y'] }] }) });
  assert.deepEqual(io.to('A').at(-1), { t: 'watchlist', events: [{ name: 'online', user_ids: ['y'] }] });
});

test('a tab signing in later gets the current status', () => {
  const { io, table } = signedIn();
  table.frame({ event: 'pusher_internal:watchlist_events',
    data: { events: [{ name: 'online', user_ids: ['x'] }, { name: 'offline', user_ids: ['y'] }] } });
  table.frame({ event: 'pusher_internal:watchlist_events', data: { events: [{ name: 'offline', user_ids: ['x'] }] } });
  table.add('C', '#user');
  assert.deepEqual(io.to('C').at(-1), { t: 'watchlist', events: [{ name: 'offline', user_ids: ['x', 'y'] }] });
  table.disconnected(); // a new socket signs in again and the server sends the whole status
  table.connected();
  table.add('D', '#user');
  assert.equal(io.to('D').filter((m) => m.t === 'watchlist').length, 0);
});
