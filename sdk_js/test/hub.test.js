import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Hub } from '../src/hub/hub.js';
import { HEARTBEAT_MS, MISSED_PINGS_LIMIT, PROTOCOL_VERSION } from '../src/shared/protocol.js';
import { FakeTimers, fakeWebSocketClass } from './fakes.js';

const URL = 'ws://h/app/k?protocol=7';

function setup() {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const gone = new Map();
  const hub = new Hub({
    timers,
    watchTab: (tab, onGone) => gone.set(tab, onGone),
    socketOptions: { WebSocket: FakeWebSocket, timers },
  });
  const inbox = new Map();
  const tab = (id, channels = []) => {
    inbox.set(id, []);
    const post = (msg) => inbox.get(id).push(msg);
    const send = (msg) => hub.handle({ ...msg, tab: id }, post);
    send({ t: 'hello', v: PROTOCOL_VERSION, url: URL, channels });
    return { send, inbox: inbox.get(id) };
  };
  const tabsReported = () => sockets.flatMap((s) => s.sent).filter((f) => f.event === 'tabcast:tabs').map((f) => f.data.tabs);
  return { hub, timers, sockets, tab, gone, tabsReported };
}

test('many tabs, one socket; the tab count is reported on connect and on every change', () => {
  const { sockets, tab, gone, tabsReported } = setup();
  const a = tab('A', ['orders']);
  tab('B', ['orders']);
  assert.equal(sockets.length, 1);
  sockets[0].establish();
  assert.deepEqual(sockets[0].sent.slice(0, 2), [
    { event: 'tabcast:tabs', data: { tabs: 2 } },
    { event: 'pusher:subscribe', data: { channel: 'orders' } },
  ]);
  tab('C');
  gone.get('A')(); // A's Web Lock was released: the tab is gone
  assert.deepEqual(tabsReported(), [2, 3, 2]);
  assert.equal(a.inbox[0].t, 'welcome');
  assert.equal(sockets.length, 1);
});

test('every tab hears about connection state changes', () => {
  const { sockets, tab } = setup();
  const a = tab('A');
  const b = tab('B');
  sockets[0].establish('7.7');
  for (const inbox of [a.inbox, b.inbox]) {
    assert.deepEqual(inbox.at(-1), { t: 'state', previous: 'connecting', current: 'connected', socket_id: '7.7' });
  }
  const late = tab('C');
  assert.deepEqual(late.inbox[0], { t: 'welcome', v: PROTOCOL_VERSION, epoch: late.inbox[0].epoch, current: 'connected', socket_id: '7.7' });
});

test('the socket closes when the last tab leaves and reopens for the next one', () => {
  const { sockets, tab } = setup();
  const a = tab('A');
  sockets[0].establish();
  a.send({ t: 'bye' });
  assert.equal(sockets[0].closedByClient, 1000);
  tab('B');
  assert.equal(sockets.length, 2);
});

test('a tab speaking another protocol version is refused, not half-served', () => {
  const { hub, sockets } = setup();
  const replies = [];
  hub.handle({ t: 'hello', tab: 'old', v: PROTOCOL_VERSION + 1, url: URL, channels: ['x'] }, (m) => replies.push(m));
  assert.deepEqual(replies, [{ t: 'mismatch', v: PROTOCOL_VERSION, url: null }]);
  assert.equal(sockets.length, 0);
});

test('a suspended (bfcached) tab is never posted to and does not count', () => {
  const { sockets, tab, tabsReported } = setup();
  const a = tab('A', ['news']);
  tab('B', ['news']);
  sockets[0].establish();
  a.send({ t: 'suspend' });
  const seen = a.inbox.length;
  sockets[0].receive({ event: 'pusher_internal:subscription_succeeded', channel: 'news', data: '{}' });
  sockets[0].receive({ event: 'headline', channel: 'news', data: '{}' });
  assert.equal(a.inbox.length, seen);
  assert.deepEqual(tabsReported(), [2, 1]);
  // Back from the cache: hello resyncs it.
  a.send({ t: 'hello', v: PROTOCOL_VERSION, url: URL, channels: ['news'] });
  assert.deepEqual(a.inbox.at(-1), { t: 'subscribed', channel: 'news', data: {}, me: null });
  assert.deepEqual(tabsReported(), [2, 1, 2]);
});

test('a hello from a known tab replaces its channel list', () => {
  const { sockets, tab } = setup();
  const a = tab('A', ['x', 'y']);
  sockets[0].establish();
  a.send({ t: 'hello', v: PROTOCOL_VERSION, url: URL, channels: ['y', 'z'] });
  const subs = sockets[0].sent.filter((f) => f.event.includes('subscribe')).map((f) => `${f.event}:${f.data.channel}`);
  assert.deepEqual(subs, ['pusher:subscribe:x', 'pusher:subscribe:y', 'pusher:unsubscribe:x', 'pusher:subscribe:z']);
});

test('a tab that stops answering pings is dropped', () => {
  const { hub, sockets, timers, tab } = setup();
  const a = tab('A', ['x']);
  tab('B', ['x']);
  sockets[0].establish();
  const keepAlive = () => a.send({ t: 'pong' });
  for (let i = 0; i <= MISSED_PINGS_LIMIT; i += 1) {
    timers.tick(HEARTBEAT_MS);
    keepAlive();
  }
  assert.deepEqual([...hub.tabs.keys()], ['A']);
});

test('a message from a tab the hub does not know asks it to identify itself', () => {
  const { hub } = setup();
  const replies = [];
  hub.handle({ t: 'subscribe', tab: 'ghost', channel: 'x' }, (m) => replies.push(m));
  assert.deepEqual(replies, [{ t: 'identify' }]);
});

test("tabs that ask for debug get the hub's log; others do not", () => {
  const { hub, sockets } = setup();
  const debugInbox = [];
  const quietInbox = [];
  hub.handle({ t: 'hello', tab: 'D', v: PROTOCOL_VERSION, url: URL, channels: [], debug: true }, (m) => debugInbox.push(m));
  hub.handle({ t: 'hello', tab: 'Q', v: PROTOCOL_VERSION, url: URL, channels: [] }, (m) => quietInbox.push(m));
  sockets[0].establish('3.3');
  hub.handle({ t: 'bye', tab: 'Q' }, () => {});
  const logs = debugInbox.filter((m) => m.t === 'log').map((m) => m.text);
  assert.ok(logs.includes('socket connecting -> connected (3.3)'), logs.join('\n'));
  assert.ok(logs.includes('tab Q dropped: said bye'), logs.join('\n'));
  assert.equal(quietInbox.filter((m) => m.t === 'log').length, 0);
});

test('a tab whose port throws is dropped once, without looping', () => {
  const { hub, sockets } = setup();
  hub.handle({ t: 'hello', tab: 'D', v: PROTOCOL_VERSION, url: URL, channels: [], debug: true }, (m) => {
    if (m.t === 'state') throw new Error('port closed');
  });
  sockets[0].establish();
  assert.equal(hub.tabs.size, 0);
});

test('after a refusal (4000-4099) the socket stays down until a new tab opens', () => {
  const { sockets, tab, timers } = setup();
  const a = tab('A');
  sockets[0].serverClose(4004); // over quota
  timers.tick(HEARTBEAT_MS - 1); // long past any backoff delay
  assert.equal(sockets.length, 1);
  assert.equal(a.inbox.filter((m) => m.t === 'state').at(-1).current, 'failed');
  a.send({ t: 'hello', v: PROTOCOL_VERSION, url: URL, channels: [] }); // the same tab resyncing: no retry
  assert.equal(sockets.length, 1);
  tab('B');
  assert.equal(sockets.length, 2);
});

test("a worker's hub names its lifetime lock in the welcome, for its tabs to wait on", () => {
  const timers = new FakeTimers();
  const { FakeWebSocket } = fakeWebSocketClass();
  const hub = new Hub({ timers, socketOptions: { WebSocket: FakeWebSocket, timers }, lock: 'tabcast-hub:abc123abc' });
  const replies = [];
  hub.handle({ t: 'hello', tab: 'A', v: PROTOCOL_VERSION, url: URL, channels: [] }, (m) => replies.push(m));
  assert.equal(replies[0].t, 'welcome');
  assert.equal(replies[0].lock, 'tabcast-hub:abc123abc');
  hub.close();
});
