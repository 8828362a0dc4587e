// Resume after a reconnect or a hub change (docs/recovery.md): the hub keeps each channel's
// position, resumes once for all its tabs, and replays only to the tabs that missed messages.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Tabcast } from '../src/client/tabcast.js';
import { ChannelTable } from '../src/hub/channels.js';
import { Hub } from '../src/hub/hub.js';
import { alreadySeen, laterPosition } from '../src/shared/positions.js';
import { PROTOCOL_VERSION } from '../src/shared/protocol.js';
import { FakeTimers, fakeWebSocketClass, recordingIo } from './fakes.js';

const SUBSCRIBE = (channel, extra = {}) => ({ event: 'pusher:subscribe', data: { channel, ...extra } });
const succeeded = (channel, position) => ({ event: 'pusher_internal:subscription_succeeded', channel, data: '{}',
  ...(position ? { position } : {}) });
const message = (channel, n, epoch = 'e1') => ({ event: 'msg', channel, data: `{"n":${n}}`, position: `${epoch}:${n}` });
const resumed = (channel, data) => ({ event: 'tabcast:resumed', channel, data: JSON.stringify(data) });
const RECOVERED = { recovered: true, missed: 2 };

// A table whose socket subscribed `channel` for `tabs` and saw messages 1..last.
function live(channel = 'orders', tabs = ['A', 'B'], last = 3) {
  const io = recordingIo('1.1');
  const table = new ChannelTable(io);
  for (const tab of tabs) table.add(tab, channel);
  table.frame(succeeded(channel, 'e1:0'));
  for (let n = 1; n <= last; n += 1) table.frame(message(channel, n));
  return { io, table };
}

function reconnect(io, table, socketId = '2.2') {
  io.socket = null;
  table.disconnected();
  io.clear();
  io.socket = socketId;
  table.connected();
}

const events = (msgs) => msgs.filter((m) => m.t === 'event').map((m) => (m.event === 'msg' ? JSON.parse(m.data).n : m.event));

test('positions: later within an epoch, never across epochs; seen means at or before the last', () => {
  assert.equal(laterPosition(null, 'e1:4'), 'e1:4');
  assert.equal(laterPosition('e1:4', 'e1:10'), 'e1:10');
  assert.equal(laterPosition('e1:10', 'e1:4'), 'e1:10');
  assert.equal(laterPosition('e1:4', 'e2:99'), 'e1:4');
  assert.equal(laterPosition('e1:4', undefined), 'e1:4');
  assert.equal(laterPosition('a:b:4', 'a:b:5'), 'a:b:5', 'the offset is after the last colon');
  assert.equal(alreadySeen('e1:4', 'e1:4'), true);
  assert.equal(alreadySeen('e1:4', 'e1:5'), false);
  assert.equal(alreadySeen('e1:4', 'e2:1'), false);
  assert.equal(alreadySeen(undefined, 'e1:1'), false);
});

test('events carry their position to the tabs; after a reconnect one subscribe resumes for all of them', () => {
  const { io, table } = live();
  reconnect(io, table);
  assert.deepEqual(io.frames, [SUBSCRIBE('orders', { position: 'e1:3' })]);

  table.frame(succeeded('orders', 'e1:5'));
  table.frame(message('orders', 4));
  table.frame(message('orders', 5));
  table.frame(resumed('orders', RECOVERED));
  table.frame(message('orders', 6));
  for (const tab of ['A', 'B']) {
    assert.deepEqual(io.to(tab)[0], { t: 'subscribed', channel: 'orders', data: {}, me: null, position: 'e1:3' });
    assert.deepEqual(events(io.to(tab)), [4, 5, 'tabcast:resumed', 6]);
    assert.deepEqual(io.to(tab)[3], { t: 'event', channel: 'orders', event: 'tabcast:resumed',
      data: JSON.stringify(RECOVERED), position: 'e1:5' });
  }
  assert.deepEqual(io.to('A')[1], { t: 'event', channel: 'orders', event: 'msg', data: '{"n":4}', position: 'e1:4' });
});

test("without any event yet, the subscription's position is the one to resume from", () => {
  const { io, table } = live('orders', ['A'], 0);
  reconnect(io, table);
  assert.deepEqual(io.frames, [SUBSCRIBE('orders', { position: 'e1:0' })]);
});

test('a tab joining a live channel starts from now: no frame, no replay, the current position', () => {
  const { io, table } = live();
  io.clear();
  table.add('C', 'orders');
  assert.deepEqual(io.frames, []);
  assert.deepEqual(io.to('C'), [{ t: 'subscribed', channel: 'orders', data: {}, me: null, position: 'e1:3' }]);
  table.frame(message('orders', 4));
  assert.deepEqual(events(io.to('C')), [4]);
});

test('a tab that joined while the socket was down gets neither the replay nor tabcast:resumed', () => {
  const { io, table } = live();
  io.socket = null;
  table.disconnected();
  table.add('C', 'orders'); // a new page load while offline
  io.clear();
  io.socket = '2.2';
  table.connected();
  table.frame(succeeded('orders', 'e1:5'));
  table.add('D', 'orders'); // ...and one joining during the replay
  table.frame(message('orders', 4));
  table.frame(message('orders', 5));
  table.frame(resumed('orders', RECOVERED));
  table.frame(message('orders', 6));
  assert.deepEqual(events(io.to('A')), [4, 5, 'tabcast:resumed', 6]);
  for (const tab of ['C', 'D']) {
    assert.deepEqual(io.to(tab)[0], { t: 'subscribed', channel: 'orders', data: {}, me: null, position: 'e1:5' });
    assert.deepEqual(events(io.to(tab)), [6]);
  }
  // Once caught up they are tabs like the others: the next reconnect resumes for them too.
  reconnect(io, table, '3.3');
  table.frame(succeeded('orders', 'e1:7'));
  table.frame(message('orders', 7));
  table.frame(resumed('orders', RECOVERED));
  for (const tab of ['A', 'C', 'D']) assert.deepEqual(events(io.to(tab)), [7, 'tabcast:resumed']);
});

test('a drop in the middle of a replay resumes from the last message replayed', () => {
  const { io, table } = live();
  reconnect(io, table);
  table.frame(succeeded('orders', 'e1:9'));
  table.frame(message('orders', 4));
  reconnect(io, table, '3.3');
  assert.deepEqual(io.frames, [SUBSCRIBE('orders', { position: 'e1:4' })]);
});

test('not recovered: the tabs are told, and the stream goes on from the subscription position', () => {
  const { io, table } = live();
  reconnect(io, table);
  table.frame(succeeded('orders', 'e2:40'));
  const lost = { recovered: false, missed: 0, reason: 'epoch_changed' };
  table.frame(resumed('orders', lost));
  for (const tab of ['A', 'B']) {
    assert.deepEqual(io.to(tab).at(-1), { t: 'event', channel: 'orders', event: 'tabcast:resumed',
      data: JSON.stringify(lost), position: 'e2:40' });
  }
  reconnect(io, table, '3.3');
  assert.deepEqual(io.frames, [SUBSCRIBE('orders', { position: 'e2:40' })]);
});

test('a gap the server could not repair (tabcast:resumed unasked) reaches every tab of the channel', () => {
  const { io, table } = live();
  io.clear();
  const gap = { recovered: false, missed: 0, reason: 'too_old' };
  table.frame(resumed('orders', gap));
  table.frame(message('orders', 9));
  for (const tab of ['A', 'B']) assert.deepEqual(events(io.to(tab)), ['tabcast:resumed', 9]);
});

test('a channel every tab left forgets its position', () => {
  const { io, table } = live('orders', ['A']);
  table.remove('A', 'orders');
  table.add('A', 'orders');
  assert.deepEqual(io.frames.at(-1), SUBSCRIBE('orders'));
});

test('private channels resume too: the position goes with the authorized subscribe', () => {
  const io = recordingIo('1.1');
  const table = new ChannelTable(io);
  table.add('A', 'private-x');
  table.authorized('A', { channel: 'private-x', socket_id: '1.1', auth: 'k:s' });
  table.frame(succeeded('private-x', 'e1:0'));
  table.frame(message('private-x', 1));
  reconnect(io, table);
  table.authorized('A', { channel: 'private-x', socket_id: '2.2', auth: 'k:s2' });
  assert.deepEqual(io.frames, [SUBSCRIBE('private-x', { auth: 'k:s2', position: 'e1:1' })]);
});

test('a server without positions (history off): plain subscribes, and tabs that joined offline are not held back', () => {
  const io = recordingIo('1.1');
  const table = new ChannelTable(io);
  table.add('A', 'orders');
  table.frame(succeeded('orders'));
  table.frame({ event: 'msg', channel: 'orders', data: '{}' });
  reconnect(io, table);
  assert.deepEqual(io.frames, [SUBSCRIBE('orders')]);

  // History turned off while the socket was down: the resume is answered without a position.
  const other = live('news', ['A']);
  other.io.socket = null;
  other.table.disconnected();
  other.table.add('C', 'news');
  other.io.socket = '2.2';
  other.table.connected();
  other.table.frame(succeeded('news'));
  other.table.frame({ event: 'msg', channel: 'news', data: '{"n":1}' });
  assert.deepEqual(events(other.io.to('C')), [1]);
});

// --- a new hub (restarted worker, new leader) learns where to resume from its tabs ---

function hubWithTabs() {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const hub = new Hub({ timers, socketOptions: { WebSocket: FakeWebSocket, timers } });
  const inbox = new Map();
  const hello = (tab, channels, positions) => {
    inbox.set(tab, inbox.get(tab) || []);
    hub.handle({ t: 'hello', tab, v: PROTOCOL_VERSION, url: 'ws://h/app/k', channels, positions },
      (m) => inbox.get(tab).push(m));
  };
  const subscribes = () => sockets.flatMap((s) => s.sent).filter((f) => f.event === 'pusher:subscribe');
  return { hub, sockets, hello, inbox, subscribes };
}

test('a new hub resumes each channel from the latest position its tabs had', () => {
  const { hub, sockets, hello, subscribes } = hubWithTabs();
  hello('A', ['orders', 'news'], { orders: 'e1:7', news: 'e5:2' });
  hello('B', ['orders'], { orders: 'e1:9' });
  hello('C', ['orders'], { orders: 'e0:50' }); // from a stream that is gone: cannot be compared
  hello('D', ['news', 'fresh']); // a new page: nothing to resume
  sockets[0].establish();
  assert.deepEqual(subscribes(), [
    SUBSCRIBE('orders', { position: 'e1:9' }), SUBSCRIBE('news', { position: 'e5:2' }), SUBSCRIBE('fresh')]);
  hub.close();
});

test('a tab back on a channel the hub kept live starts from now, and is told if it missed messages', () => {
  const { hub, sockets, hello, inbox, subscribes } = hubWithTabs();
  hello('A', ['orders', 'news']);
  sockets[0].establish();
  sockets[0].receive(succeeded('orders', 'e1:3'));
  sockets[0].receive(succeeded('news', 'e1:8'));
  hello('B', ['orders', 'news'], { orders: 'e1:1', news: 'e1:8' }); // e.g. back from the back/forward cache
  assert.equal(subscribes().length, 2, 'no new subscribe, no replay');
  assert.deepEqual(inbox.get('B').slice(-3), [
    { t: 'subscribed', channel: 'orders', data: {}, me: null, position: 'e1:3' },
    { t: 'event', channel: 'orders', event: 'tabcast:resumed', position: 'e1:3',
      data: JSON.stringify({ recovered: false, missed: 0, reason: 'rejoined' }) },
    { t: 'subscribed', channel: 'news', data: {}, me: null, position: 'e1:8' }, // nothing missed there
  ]);
  hub.close();
});

// --- the tab side: its own positions, and each message once ---

function inertTab() {
  // An unknown transport fails at once: a Tabcast with no link, no socket and no timers,
  // fed hub messages by hand.
  const tc = new Tabcast('k', { host: 'h', transport: 'none' });
  const posted = [];
  tc.link = { name: 'test', post: (m) => posted.push(m), close() {} };
  return { tc, posted, hub: (msg) => tc._receive(tc.link, msg) };
}

test('a tab keeps its last position per channel, drops what it already had, and hands positions to a new hub', () => {
  const { tc, posted, hub } = inertTab();
  const got = [];
  const orders = tc.subscribe('orders');
  orders.bind('msg', (data) => got.push(data.n));
  orders.bind('tabcast:resumed', (data) => got.push(data));
  tc.subscribe('news');
  hub({ t: 'subscribed', channel: 'orders', data: {}, me: null, position: 'e1:0' });
  for (const n of [1, 2, 3]) hub({ t: 'event', channel: 'orders', event: 'msg', data: `{"n":${n}}`, position: `e1:${n}` });
  // A new hub that resumed from before this tab's last message replays 2 and 3 again.
  hub({ t: 'subscribed', channel: 'orders', data: {}, me: null, position: 'e1:1' });
  for (const n of [2, 3, 4]) hub({ t: 'event', channel: 'orders', event: 'msg', data: `{"n":${n}}`, position: `e1:${n}` });
  hub({ t: 'event', channel: 'orders', event: 'tabcast:resumed', data: '{"recovered":true,"missed":3}', position: 'e1:4' });
  assert.deepEqual(got, [1, 2, 3, 4, { recovered: true, missed: 3 }]);
  assert.equal(orders.subscribed, true);

  tc._hello();
  assert.deepEqual(posted.at(-1).positions, { orders: 'e1:4' });
  tc.unsubscribe('orders');
  tc._hello();
  assert.deepEqual(posted.at(-1).positions, {});
});

test('a tab follows the stream to a new epoch after recovered: false', () => {
  const { tc, hub } = inertTab();
  const got = [];
  tc.subscribe('orders').bind('msg', (data) => got.push(data.n));
  hub({ t: 'event', channel: 'orders', event: 'msg', data: '{"n":8}', position: 'e1:8' });
  hub({ t: 'event', channel: 'orders', event: 'tabcast:resumed', data: '{"recovered":false,"missed":0}', position: 'e2:0' });
  hub({ t: 'event', channel: 'orders', event: 'msg', data: '{"n":1}', position: 'e2:1' });
  assert.deepEqual(got, [8, 1]);
  assert.equal(tc.positions.get('orders'), 'e2:1');
});
