// One pusher-js 8 client, driven by JSON lines on stdin; reports everything on stdout.
// Usage: node pusherjs_client.mjs '{"key":..., "secret":..., "host":..., "port":...}'
// Channel and user authorization sign locally with the official `pusher` server library,
// exactly as a customer's auth endpoint would.
import readline from 'node:readline';
import PusherJS from 'pusher-js';
import PusherServer from 'pusher';

const cfg = JSON.parse(process.argv[2]);
const out = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');
const signer = new PusherServer({
  appId: String(cfg.appId || 1), key: cfg.key, secret: cfg.secret, host: cfg.host, port: String(cfg.port),
  useTLS: false, encryptionMasterKeyBase64: cfg.masterKey,
});
const presence = {};   // channel -> {user_id, user_info} to sign with
const badAuth = new Set();
let signinUser = null;

const client = new PusherJS(cfg.key, {
  cluster: '', wsHost: cfg.host, wsPort: cfg.port, forceTLS: false, enabledTransports: ['ws'],
  activityTimeout: cfg.activityTimeout || 120000,
  channelAuthorization: {
    customHandler: ({ socketId, channelName }, cb) => {
      if (badAuth.has(channelName)) return cb(null, { auth: `${cfg.key}:${'0'.repeat(64)}` });
      const auth = signer.authorizeChannel(socketId, channelName, presence[channelName]);
      cb(null, auth);
    },
  },
  userAuthentication: {
    customHandler: ({ socketId }, cb) => cb(null, signer.authenticateUser(socketId, signinUser)),
  },
});

const report = (channel) => (event, data, metadata) =>
  out({ type: 'event', channel, event, data: data === undefined ? null : data, undefined_data: data === undefined,
        user_id: metadata && metadata.user_id !== undefined ? metadata.user_id : null });
client.connection.bind('state_change', (s) => out({ type: 'state', previous: s.previous, current: s.current,
  socket_id: client.connection.socket_id }));
client.connection.bind('error', (e) => out({ type: 'connection_error', error: e && e.data ? e.data : String(e && e.type) }));
client.bind_global((event, data) => { if (event.startsWith('pusher:error')) out({ type: 'pusher_error', data }); });
client.user.bind_global((event, data) => out({ type: 'user_event', event, data }));
client.user.watchlist && client.user.watchlist.bind_global && client.user.watchlist.bind_global(
  (event, data) => out({ type: 'watchlist', event, data }));

const handlers = {
  subscribe({ channel, user_id, user_info, bad_auth }) {
    if (user_id !== undefined) presence[channel] = { user_id, user_info };
    if (bad_auth) badAuth.add(channel);
    const ch = client.subscribe(channel);
    ch.bind_global(report(channel));
    ch.bind('pusher:subscription_succeeded', (members) => out({ type: 'subscribed', channel,
      members: members && members.count !== undefined ? { count: members.count, me: members.me,
        ids: Object.keys(members.members) } : null }));
    ch.bind('pusher:subscription_error', (e) => out({ type: 'subscription_error', channel, error: e }));
  },
  bind({ channel, event }) {
    // Event-specific callbacks get pusher-js metadata (user_id on presence client events).
    client.channel(channel).bind(event, (data, metadata) => out({ type: 'bound_event', channel, event, data,
      user_id: metadata && metadata.user_id !== undefined ? metadata.user_id : null }));
  },
  unsubscribe({ channel }) { client.unsubscribe(channel); out({ type: 'unsubscribed', channel }); },
  trigger({ channel, event, data }) { out({ type: 'triggered', ok: client.channel(channel).trigger(event, data) }); },
  signin({ user }) {
    signinUser = user;
    client.signin();
    // Reported once the #server-to-user-<id> channel pusher-js subscribes after signin is live.
    client.user.signinDonePromise.then(() => {
      const channel = client.user.serverToUserChannel;
      if (!channel) return out({ type: 'signin_failed' });
      const report = () => out({ type: 'signed_in', user_data: client.user.user_data, channel: channel.name });
      if (channel.subscribed) report(); else channel.bind('pusher:subscription_succeeded', report);
    });
  },
  members({ channel }) {
    const ch = client.channel(channel);
    out({ type: 'members', channel, count: ch.members.count, ids: Object.keys(ch.members.members) });
  },
  disconnect() { client.disconnect(); },
  exit() { client.disconnect(); setTimeout(() => process.exit(0), 50); },
};

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  try { handlers[cmd.op](cmd); } catch (e) { out({ type: 'driver_error', op: cmd.op, error: String(e) }); }
});
process.stdin.on('end', () => process.exit(0));
