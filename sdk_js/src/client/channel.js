// Channel objects as pusher-js users know them: bind/unbind/trigger, presence `members`.

import { Dispatcher } from './dispatcher.js';
import { decryptEventData } from './encryption.js';

export class Channel extends Dispatcher {
  constructor(name, client) {
    super();
    this.name = name;
    this.client = client;
    this.subscribed = false;
    this.subscriptionPending = true;
    this.subscriptionCancelled = false;
  }

  /** Send a client event (name must start with "client-") to the channel's other clients,
   * including this browser's other tabs. Returns false if it could not be sent. */
  trigger(event, data) {
    if (!event.startsWith('client-')) {
      throw new Error(`Event '${event}' does not start with 'client-'`);
    }
    if (!this.subscribed) return false;
    return this.client._post({ t: 'trigger', channel: this.name, event, data });
  }

  _subscribed(data) {
    this.subscribed = true;
    this.subscriptionPending = false;
    this.emit('pusher:subscription_succeeded', data);
  }

  _failed(error) {
    this.subscribed = false;
    this.subscriptionPending = false;
    this.emit('pusher:subscription_error', error);
  }

  _event(event, data, metadata) {
    this.emit(event, data, metadata);
  }
}

export class Members {
  constructor() {
    this.reset();
  }

  reset() {
    this.members = {};
    this.count = 0;
    this.myID = null;
    this.me = null;
  }

  get(id) {
    return Object.hasOwn(this.members, id) ? { id, info: this.members[id] } : null;
  }

  each(callback) {
    for (const [id, info] of Object.entries(this.members)) callback({ id, info });
  }

  _setup(presence, me) {
    this.members = { ...(presence?.hash || {}) };
    this.count = Object.keys(this.members).length;
    if (me) {
      this.myID = String(me.user_id);
      this.me = this.get(this.myID) || { id: this.myID, info: me.user_info };
    }
  }

  _add({ user_id: userId, user_info: info }) {
    const id = String(userId);
    if (Object.hasOwn(this.members, id)) return null;
    this.members[id] = info ?? null;
    this.count += 1;
    return this.get(id);
  }

  _remove({ user_id: userId }) {
    const member = this.get(String(userId));
    if (!member) return null;
    delete this.members[member.id];
    this.count -= 1;
    return member;
  }
}

export class PresenceChannel extends Channel {
  constructor(name, client) {
    super(name, client);
    this.members = new Members();
  }

  _subscribed(data, me) {
    this.members._setup(data?.presence, me);
    super._subscribed(this.members);
  }

  _event(event, data, metadata) {
    if (event === 'pusher_internal:member_added') {
      const member = this.members._add(data);
      if (member) this.emit('pusher:member_added', member);
    } else if (event === 'pusher_internal:member_removed') {
      const member = this.members._remove(data);
      if (member) this.emit('pusher:member_removed', member);
    } else {
      super._event(event, data, metadata);
    }
  }
}

export class EncryptedChannel extends Channel {
  constructor(name, client) {
    super(name, client);
    this.sharedSecret = null;
  }

  trigger() {
    throw new Error('Client events are not supported on encrypted channels');
  }

  _subscribed(data, me, sharedSecret) {
    this.sharedSecret = sharedSecret;
    super._subscribed(data);
  }

  _event(event, data, metadata) {
    if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) {
      super._event(event, data, metadata);
      return;
    }
    let plain;
    try {
      plain = decryptEventData(this.sharedSecret, data);
    } catch (err) {
      this.emit('pusher:decryption_error', { event, error: String(err.message || err) });
      return;
    }
    super._event(event, parseJson(plain), metadata);
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
