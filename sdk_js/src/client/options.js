// Options as pusher-js names them, resolved once into what the SDK needs.

import { SDK_VERSION } from '../shared/protocol.js';

// Loaded by <script src="https://tabcast-host/sdk/v1/tabcast.js">: that host is the default.
const SCRIPT_HOST = (() => {
  try {
    return new URL(document.currentScript.src).host;
  } catch {
    return null;
  }
})();

export function resolveOptions(key, options = {}) {
  if (typeof key !== 'string' || !key) throw new Error('new Tabcast(key, options): the app key is required');
  const host = options.host || options.wsHost || SCRIPT_HOST;
  if (!host) throw new Error('new Tabcast(key, {host}): the Tabcast host is required');
  const forceTLS = options.forceTLS ?? globalThis.location?.protocol === 'https:';
  const query = new URLSearchParams({ protocol: '7', client: 'tabcast-js', version: SDK_VERSION });
  const legacyAuth = { endpoint: options.authEndpoint ?? '/pusher/auth', ...(options.auth || {}) };
  return {
    key,
    host,
    httpOrigin: `${forceTLS ? 'https' : 'http'}://${host}`,
    wsUrl: `${forceTLS ? 'wss' : 'ws'}://${host}/app/${encodeURIComponent(key)}?${query}`,
    transport: options.transport || null,
    debug: options.debug === true, // log transport choice and the hub's log to the console
    workerUrl: options.workerUrl || null,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000, // generous: a first worker start on a busy machine is slow
    channelAuthorization: { ...legacyAuth, ...(options.channelAuthorization || {}) },
    userAuthentication: { endpoint: '/pusher/user-auth', ...(options.userAuthentication || {}) },
    backoff: options.backoff || {}, // {min, max} ms between reconnection attempts
  };
}
