import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChannelTable } from '../src/hub/channels.js';
import { recordingIo } from './fakes.js';

const SUBSCRIBE = (channel, extra = {}) => ({ event: 'pusher:subscribe', data: { channel, ...extra } });
const UNSUBSCRIBE = (channel) => ({ event: 'pusher:unsubscribe', data: { channel } });
const succeeded = (channel, data = '{}') => ({ event: 'pusher_internal:subscription_succeeded', channel, data });

test('the socket subscribes once however many tabs want a channel, and leaves with the last tab', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'orders');
  table.add('B', 'orders');
  assert.deepEqual(io.frames, [SUBSCRIBE('orders')]);

  table.frame(succeeded('orders'));
  assert.deepEqual(io.to('A'), [{ t: 'subscribed', channel: 'orders', data: {}, me: null }]);
  assert.deepEqual(io.to('B'), [{ t: 'subscribed', channel: 'orders', data: {}, me: null }]);

  table.remove('A', 'orders');
  assert.deepEqual(io.frames, [SUBSCRIBE('orders')], 'B still wants it');
  table.remove('B', 'orders');
  assert.deepEqual(io.frames, [SUBSCRIBE('orders'), UNSUBSCRIBE('orders')]);
});

test('a tab joining an already subscribed channel is told at once, without a new frame', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'orders');
  table.frame(succeeded('orders'));
  io.clear();
  table.add('C', 'orders');
  assert.deepEqual(io.frames, []);
  assert.deepEqual(io.to('C'), [{ t: 'subscribed', channel: 'orders', data: {}, me: null }]);
});

test('events reach exactly the tabs that want their channel', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'news');
  table.add('B', 'sport');
  table.add('C', 'news');
  io.clear();
  table.frame({ event: 'headline', channel: 'news', data: '{"n":1}' });
  const event = { t: 'event', channel: 'news', event: 'headline', data: '{"n":1}' };
  assert.deepEqual(io.messages, [['A', event], ['C', event]]);
  table.frame({ event: 'headline', channel: 'weather', data: '{}' });
  assert.equal(io.messages.length, 2, 'nobody wants weather');
});

test('private channels are authorized by one interested tab, for the current socket id', () => {
  const io = recordingIo('5.5');
  const table = new ChannelTable(io);
  table.add('A', 'private-x');
  table.add('B', 'private-x');
  assert.deepEqual(io.messages, [['A', { t: 'authorize', channel: 'private-x', socket_id: '5.5' }]]);
  assert.deepEqual(io.frames, []);

  table.authorized('A', { channel: 'private-x', socket_id: '4.4', auth: 'stale' });
  assert.deepEqual(io.frames, [], 'an answer for an old socket is ignored');
  table.authorized('A', { channel: 'private-x', socket_id: '5.5', auth: 'key:sig' });
  assert.deepEqual(io.frames, [SUBSCRIBE('private-x', { auth: 'key:sig' })]);
});

test('if the authorizing tab leaves, another interested tab is asked', () => {
  const io = recordingIo('5.5');
  const table = new ChannelTable(io);
  table.add('A', 'private-x');
  table.add('B', 'private-x');
  table.remove('A', 'private-x');
  assert.deepEqual(io.to('B'), [{ t: 'authorize', channel: 'private-x', socket_id: '5.5' }]);
});

test('a refused authorization reaches every tab that asked, and a later subscribe retries', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'private-x');
  table.add('B', 'private-x');
  const error = { type: 'AuthError', error: 'HTTP 403', status: 403 };
  table.authFailed('A', { channel: 'private-x', error });
  assert.deepEqual(io.to('B'), [{ t: 'sub_error', channel: 'private-x', error }]);
  io.clear();
  table.add('B', 'private-x');
  assert.deepEqual(io.to('B'), [{ t: 'authorize', channel: 'private-x', socket_id: '1.1' }]);
});

test('a server subscription_error is reported to the interested tabs', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'bad channel');
  io.clear();
  table.frame({ event: 'pusher:subscription_error', channel: 'bad channel', data: { type: 'InvalidChannel', status: 4009 } });
  assert.deepEqual(io.to('A'), [{ t: 'sub_error', channel: 'bad channel', error: { type: 'InvalidChannel', status: 4009 } }]);
});

test('presence: later tabs get the current members, kept up to date; me comes from the authorizing tab', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'presence-room');
  const channelData = JSON.stringify({ user_id: 'alice', user_info: { name: 'Alice' } });
  table.authorized('A', { channel: 'presence-room', socket_id: '1.1', auth: 'k:s', channel_data: channelData });
  assert.deepEqual(io.frames.at(-1), SUBSCRIBE('presence-room', { auth: 'k:s', channel_data: channelData }));
  table.frame(succeeded('presence-room', JSON.stringify({
    presence: { ids: ['alice'], hash: { alice: { name: 'Alice' } }, count: 1 } })));
  table.frame({ event: 'pusher_internal:member_added', channel: 'presence-room',
    data: JSON.stringify({ user_id: 'bob', user_info: { name: 'Bob' } }) });
  table.frame({ event: 'pusher_internal:member_added', channel: 'presence-room', data: JSON.stringify({ user_id: 'carol' }) });
  table.frame({ event: 'pusher_internal:member_removed', channel: 'presence-room', data: JSON.stringify({ user_id: 'bob' }) });

  table.add('B', 'presence-room');
  assert.deepEqual(io.to('B'), [{
    t: 'subscribed', channel: 'presence-room', me: { user_id: 'alice', user_info: { name: 'Alice' } },
    data: { presence: { ids: ['alice', 'carol'], hash: { alice: { name: 'Alice' }, carol: null }, count: 2 } },
  }]);
});

test('client events go to the server once and to the other tabs, never back to the sender', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  for (const tab of ['A', 'B', 'C']) table.add(tab, 'private-chat');
  table.authorized('A', { channel: 'private-chat', socket_id: '1.1', auth: 'k:s' });
  table.frame(succeeded('private-chat'));
  table.add('D', 'other');
  io.clear();

  assert.equal(table.trigger('B', { channel: 'private-chat', event: 'client-typing', data: { who: 'B' } }), true);
  assert.deepEqual(io.frames, [{ event: 'client-typing', channel: 'private-chat', data: { who: 'B' } }]);
  const echo = { t: 'event', channel: 'private-chat', event: 'client-typing', data: { who: 'B' } };
  assert.deepEqual(io.messages, [['A', echo], ['C', echo]]);

  assert.equal(table.trigger('D', { channel: 'private-chat', event: 'client-x', data: {} }), false,
    'a tab not subscribed to the channel cannot send on it');
});

test('after a reconnect everything is subscribed again, private channels re-authorized for the new socket', () => {
  const io = recordingIo('1.1');
  const table = new ChannelTable(io);
  table.add('A', 'orders');
  table.add('B', 'private-x');
  table.authorized('B', { channel: 'private-x', socket_id: '1.1', auth: 'k:s' });
  table.frame(succeeded('orders'));
  table.frame(succeeded('private-x'));

  io.socket = null;
  table.disconnected();
  io.clear();
  table.add('C', 'orders'); // wanted while offline: subscribed on reconnect, not before
  assert.deepEqual(io.to('C'), []);

  io.socket = '2.2';
  table.connected();
  assert.deepEqual(io.frames, [SUBSCRIBE('orders')]);
  assert.deepEqual(io.to('B'), [{ t: 'authorize', channel: 'private-x', socket_id: '2.2' }]);
});

test('signin is the #user pseudo-channel: authorized by a tab, user events routed to signed-in tabs', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', '#user');
  table.add('B', 'orders');
  assert.deepEqual(io.to('A'), [{ t: 'authorize', channel: '#user', socket_id: '1.1' }]);
  table.authorized('A', { channel: '#user', socket_id: '1.1', auth: 'k:s', channel_data: '{"id":"u1"}' });
  assert.deepEqual(io.frames.at(-1), { event: 'pusher:signin', data: { auth: 'k:s', user_data: '{"id":"u1"}' } });
  table.frame({ event: 'pusher:signin_success', data: { user_data: '{"id":"u1"}' } });
  table.frame({ event: 'note', channel: '#server-to-user-u1', data: '{"x":1}' });
  assert.deepEqual(io.to('A').slice(1), [
    { t: 'subscribed', channel: '#user', data: { user_data: '{"id":"u1"}' }, me: null },
    { t: 'event', channel: '#server-to-user-u1', event: 'note', data: '{"x":1}' },
  ]);
  assert.equal(io.to('B').length, 0);
});

test('connection-level errors reach every tab once', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'x');
  table.add('A', 'y');
  table.add('B', 'y');
  io.clear();
  table.frame({ event: 'pusher:error', data: { code: 4301, message: 'slow down' } });
  assert.deepEqual(io.messages, [['A', { t: 'error', data: { code: 4301, message: 'slow down' } }],
    ['B', { t: 'error', data: { code: 4301, message: 'slow down' } }]]);
});

test('encrypted channels: the shared secret from the authorizing tab reaches every tab on the channel', () => {
  const io = recordingIo();
  const table = new ChannelTable(io);
  table.add('A', 'private-encrypted-vault');
  table.add('B', 'private-encrypted-vault');
  table.authorized('A', { channel: 'private-encrypted-vault', socket_id: '1.1', auth: 'k:s', shared_secret: 'c2VjcmV0' });
  assert.deepEqual(io.frames.at(-1), SUBSCRIBE('private-encrypted-vault', { auth: 'k:s' }), 'the secret never goes to the server');
  table.frame(succeeded('private-encrypted-vault'));
  const subscribed = { t: 'subscribed', channel: 'private-encrypted-vault', data: {}, me: null, shared_secret: 'c2VjcmV0' };
  assert.deepEqual(io.to('B'), [subscribed]);
  table.add('C', 'private-encrypted-vault');
  assert.deepEqual(io.to('C'), [subscribed]);
});
