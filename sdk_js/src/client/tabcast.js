// The public client, named like pusher-js: `new Tabcast(key, options)`, subscribe/unsubscribe,
// bind/bind_global, channel.trigger, presence members, signin + user.bind, connection states.
// A Tabcast instance is one "tab" of the hub it is linked to; it keeps the list of channels
// it wants and re-sends that list (hello) whenever the hub asks or comes back.

import { holdLock } from '../shared/locks.js';
import { RESUMED_EVENT, alreadySeen } from '../shared/positions.js';
import {
  HEARTBEAT_MS, MISSED_PINGS_LIMIT, PROTOCOL_VERSION, USER_CHANNEL, randomId, tabLockName,
} from '../shared/protocol.js';
import { authenticateUser, authorizeChannel } from './auth.js';
import { Channel, EncryptedChannel, PresenceChannel } from './channel.js';
import { Dispatcher } from './dispatcher.js';
import { isEncryptedChannel } from './encryption.js';
import { resolveOptions } from './options.js';
import { candidateTransports, openTransport } from './transports.js';

class ConnectionView extends Dispatcher {
  constructor() {
    super();
    this.state = 'initialized';
    this.socket_id = null;
    this.failure = null; // once failed: {reason, code?, message?}, e.g. reason 'origin_not_allowed'
  }

  _set(current, socketId, failure = null) {
    this.socket_id = current === 'connected' ? socketId : null;
    const previous = this.state;
    if (previous === current) return;
    this.state = current;
    this.failure = current === 'failed' ? (failure || { reason: 'unavailable' }) : null;
    if (current === 'failed') {
      this.emit('state_change', { previous, current, reason: this.failure.reason, failure: this.failure });
      this.emit(current, this.failure);
    } else {
      this.emit('state_change', { previous, current });
      this.emit(current);
    }
  }
}

export class Tabcast {
  constructor(key, options = {}) {
    this.key = key;
    this.options = resolveOptions(key, options);
    this.tab = randomId();
    this.connection = new ConnectionView();
    this.channels = new Map();
    // channel -> the last stream position this tab had. A new hub (leader failover, restarted
    // worker) learns from the tabs where to resume from; see hub/channels.js.
    this.positions = new Map();
    this.global = new Dispatcher();
    this.user = new Dispatcher();
    this.user.user_data = null;
    // pusher-js's `user.watchlist`: 'online' / 'offline' with {name, user_ids} (signin with a watchlist).
    this.user.watchlist = new Dispatcher();
    this.signinRequested = false;
    this.link = null;
    this.transport = null; // which transport is in use, once linked
    this.suspended = false;
    this.lastPing = Date.now();
    this._handshake = null;
    this._lifecycle();
    this.connect();
  }

  // --- pusher-js API ---

  subscribe(name) {
    let channel = this.channels.get(name);
    if (channel) return channel;
    const Kind = name.startsWith('presence-') ? PresenceChannel
      : isEncryptedChannel(name) ? EncryptedChannel : Channel;
    channel = new Kind(name, this);
    this.channels.set(name, channel);
    this._post({ t: 'subscribe', channel: name });
    return channel;
  }

  unsubscribe(name) {
    const channel = this.channels.get(name);
    if (!channel) return;
    this.channels.delete(name);
    this.positions.delete(name);
    channel.subscribed = false;
    channel.subscriptionCancelled = true;
    this._post({ t: 'unsubscribe', channel: name });
  }

  channel(name) {
    return this.channels.get(name);
  }

  allChannels() {
    return [...this.channels.values()];
  }

  bind(event, fn, context) {
    this.global.bind(event, fn, context);
    return this;
  }

  unbind(event, fn, context) {
    this.global.unbind(event, fn, context);
    return this;
  }

  bind_global(fn) {
    this.global.bind_global(fn);
    return this;
  }

  unbind_global(fn) {
    this.global.unbind_global(fn);
    return this;
  }

  /** Authenticate the user (userAuthentication endpoint or customHandler); user events then
   * arrive on `tabcast.user.bind(...)`. */
  signin() {
    if (this.signinRequested) return;
    this.signinRequested = true;
    this._post({ t: 'subscribe', channel: USER_CHANNEL });
  }

  /** (Re)join the shared connection; called by the constructor. */
  connect() {
    if (this.link || this._handshake) return;
    this.connection._set('connecting');
    this._handshake = this._linkUp().finally(() => { this._handshake = null; });
  }

  /** This tab leaves the shared connection (the socket closes when no tab is left). */
  disconnect() {
    this._post({ t: 'bye' });
    this.link?.close();
    this.link = null;
    for (const channel of this.channels.values()) channel.subscribed = false;
    this.connection._set('disconnected');
  }

  // --- link management ---

  async _linkUp() {
    let candidates;
    try {
      candidates = candidateTransports(this.options.transport);
    } catch (err) {
      return this._fail(err);
    }
    for (const name of candidates) {
      let link = null;
      // Opening a transport can hang (e.g. a frame the page may not embed never answers).
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(new Error(`${name}: timed out`)), this.options.handshakeTimeoutMs);
      try {
        const opening = openTransport(name, {
          options: this.options, tab: this.tab, tabLock: this._tabLock(), signal: abort.signal,
          onMessage: (msg) => this._receive(link, msg),
          onFailure: (err) => this._linkFailed(link, err),
        });
        opening.then((late) => abort.signal.aborted && late.close(), () => {});
        link = await Promise.race([opening, rejectOnAbort(abort.signal)]);
        await this._greet(link, abort.signal);
        return;
      } catch (err) {
        link?.close();
        if (this.link === link) this.link = null;
        this.lastError = err;
        this._debug(`transport ${name} unavailable: ${err?.message || err}`);
        // The server refused this page (e.g. its origin): every other transport would be refused too.
        if (err?.failure) return this._fail(err, err.failure);
      } finally {
        clearTimeout(timer);
      }
    }
    this._fail(this.lastError);
  }

  // This tab's liveness lock (see shared/locks.js), taken once whatever transport is tried.
  _tabLock() {
    this.tabLockHeld ??= holdLock(tabLockName(this.tab));
    return this.tabLockHeld;
  }

  // Say hello and wait for the hub's welcome (or refusal) before trusting the link.
  _greet(link, signal) {
    this.link = link;
    return new Promise((resolve, reject) => {
      const timedOut = () => reject(new Error(`${link.name}: no answer from the hub`));
      if (signal.aborted) timedOut();
      signal.addEventListener('abort', timedOut, { once: true });
      link.greeting = {
        accept: resolve,
        refuse: reject,
      };
      this._hello();
    });
  }

  _linkFailed(link, err) {
    if (link?.greeting) link.greeting.refuse(err);
    else if (link && link === this.link) {
      // A link that worked broke (e.g. the worker died): start over, with fallbacks.
      this.link.close();
      this.link = null;
      this.connect();
    }
  }

  _debug(text) {
    if (this.options.debug) console.debug(`[tabcast ${this.tab}] ${text}`); // eslint-disable-line no-console
  }

  _fail(err, failure = null) {
    this.lastError = err;
    this._failed(failure || { reason: 'unavailable', message: String(err?.message || err) });
    this.connection.emit('error', { type: 'TabcastError', error: String(err?.message || err) });
  }

  // The connection failed: set the state, and say once in the console how to fix a blocked origin.
  _failed(failure, socketId = null) {
    this.connection._set('failed', socketId, failure);
    if (failure?.reason === 'origin_not_allowed' && !this.originReported) {
      this.originReported = true;
      const origin = globalThis.location?.origin || 'this page\'s origin';
      console.error( // eslint-disable-line no-console
        `Tabcast: the app ${this.key} does not allow connections from ${origin}, so the connection `
        + `failed (reason "origin_not_allowed"; it will not retry). To fix it, add ${origin} to the `
        + "app's Allowed origins in the Tabcast dashboard (Settings).");
    }
  }

  // A state from the hub: a failure carries why (see hub/socket.js).
  _setState(msg) {
    if (msg.current === 'failed') this._failed(msg.failure || { reason: 'refused' }, msg.socket_id);
    else this.connection._set(msg.current, msg.socket_id);
  }

  _hello() {
    const channels = [...this.channels.keys()];
    if (this.signinRequested) channels.push(USER_CHANNEL);
    this.link?.post({
      t: 'hello', tab: this.tab, v: PROTOCOL_VERSION, url: this.options.wsUrl, backoff: this.options.backoff, channels,
      positions: Object.fromEntries(this.positions), debug: this.options.debug,
    });
  }

  _post(msg) {
    if (!this.link || this.suspended) return false; // the next hello carries our state
    this.link.post({ ...msg, tab: this.tab });
    return true;
  }

  // --- messages from the hub ---

  _receive(link, msg) {
    if (link !== this.link || !msg) return;
    switch (msg.t) {
      case 'welcome':
        link.greeting?.accept();
        link.greeting = null;
        if (typeof msg.lock === 'string' && msg.lock !== link.hubLock) { // a worker: see hosts/worker.js
          link.hubLock = msg.lock;
          link.watchHub?.(msg.lock);
        }
        this.transport = link.name; // before the state change, so its listeners can see it
        this.lastPing = Date.now();
        this._setState(msg);
        break;
      case 'mismatch':
        link.greeting?.refuse(new Error(`hub speaks protocol ${msg.v}, this tab ${PROTOCOL_VERSION}`));
        break;
      case 'identify': this._hello(); break;
      case 'ping':
        this.lastPing = Date.now();
        this._post({ t: 'pong' });
        break;
      case 'state': this._setState(msg); break;
      case 'authorize': this._authorize(msg); break;
      case 'subscribed': this._subscribed(msg); break;
      case 'sub_error': this.channels.get(msg.channel)?._failed(msg.error); break;
      case 'event': this._event(msg); break;
      case 'watchlist': for (const e of msg.events || []) this.user.watchlist.emit(e.name, e); break;
      case 'error': this.connection.emit('error', { type: 'PusherError', data: msg.data }); break;
      case 'log': this._debug(`hub: ${msg.text}`); break;
      default: break;
    }
  }

  async _authorize({ channel, socket_id: socketId }) {
    const isUser = channel === USER_CHANNEL;
    try {
      const result = isUser
        ? await authenticateUser(this.options.userAuthentication, socketId)
        : await authorizeChannel(this.options.channelAuthorization, socketId, channel);
      const channelData = isUser ? result.user_data : result.channel_data;
      this._post({ t: 'authorized', channel, socket_id: socketId, auth: result.auth, channel_data: channelData,
        shared_secret: result.shared_secret });
    } catch (err) {
      this._post({ t: 'auth_failed', channel,
        error: { type: 'AuthError', error: String(err?.message || err), status: err?.status ?? 0 } });
    }
  }

  _subscribed({ channel: name, data, me, shared_secret: sharedSecret, position }) {
    if (name === USER_CHANNEL) {
      this.user.user_data = parseData(data?.user_data);
      this.user.emit('pusher:signin_success', this.user.user_data);
      return;
    }
    const channel = this.channels.get(name);
    if (!channel) return;
    // After a reconnect the hub may start from before this tab's own position (see _event).
    if (position && !alreadySeen(this.positions.get(name), position)) this.positions.set(name, position);
    channel._subscribed(data, me, sharedSecret);
  }

  _event({ channel: name, event, data: raw, user_id: userId, position }) {
    if (position && this.channels.has(name)) {
      // A hub that took over may resume from before this tab's last message: once is enough.
      // (`tabcast:resumed` carries where the stream now is, which may be a new start.)
      if (event !== RESUMED_EVENT && alreadySeen(this.positions.get(name), position)) return;
      this.positions.set(name, position);
    }
    const data = parseData(raw);
    const metadata = userId === undefined ? {} : { user_id: userId };
    if (name.startsWith('#server-to-user-')) {
      this.user.emit(event, data, metadata);
      return;
    }
    const channel = this.channels.get(name);
    if (!channel) return;
    channel._event(event, data, metadata);
    if (!event.startsWith('pusher_internal:')) this.global.emit(event, data, { ...metadata, channel: name });
  }

  // --- page lifecycle ---

  _lifecycle() {
    if (typeof addEventListener !== 'function') return;
    addEventListener('pagehide', (e) => (e.persisted ? this._suspend() : this._post({ t: 'bye' })));
    addEventListener('pageshow', (e) => e.persisted && this._resume());
    document.addEventListener('freeze', () => this._suspend());
    document.addEventListener('resume', () => this._resume());
    // A hub that forgot us (restarted worker, new leader that missed us) stops pinging:
    // say hello again, which re-registers this tab and its channels.
    setInterval(() => {
      if (this.link && !this.suspended && !this._handshake
          && Date.now() - this.lastPing > HEARTBEAT_MS * (MISSED_PINGS_LIMIT + 1)) {
        this.lastPing = Date.now();
        this._hello();
      }
    }, HEARTBEAT_MS);
  }

  // Entering the back/forward cache: stop the hub posting to us (that would evict the page).
  _suspend() {
    if (this.suspended || !this.link) return;
    this._post({ t: 'suspend' });
    this.suspended = true;
    this.link.suspend?.();
    for (const channel of this.channels.values()) channel.subscribed = false;
  }

  _resume() {
    if (!this.suspended) return;
    this.suspended = false;
    this.link?.resume?.();
    this.lastPing = Date.now();
    this._hello();
  }
}

function rejectOnAbort(signal) {
  return new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

// Server event data is a string holding JSON (Pusher's double encoding); client events may
// carry objects. pusher-js hands callbacks parsed JSON, or the raw string if it is not JSON.
function parseData(data) {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}
