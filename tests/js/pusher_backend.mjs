// Runs one call of the official `pusher` Node server library and prints its result as JSON.
// Usage: node pusher_backend.mjs '<config json>' '<call json: {"op": ..., ...}>'
import Pusher from 'pusher';

const cfg = JSON.parse(process.argv[2]);
const call = JSON.parse(process.argv[3]);
const pusher = new Pusher({ appId: String(cfg.appId), key: cfg.key, secret: cfg.secret, host: cfg.host,
  port: String(cfg.port), useTLS: false, encryptionMasterKeyBase64: cfg.masterKey });

const ops = {
  trigger: () => pusher.trigger(call.channels, call.event, call.data, call.params || {}),
  triggerBatch: () => pusher.triggerBatch(call.batch),
  get: () => pusher.get({ path: call.path, params: call.params || {} }),
  sendToUser: () => pusher.sendToUser(call.user_id, call.event, call.data),
  terminateUserConnections: () => pusher.terminateUserConnections(call.user_id),
};

try {
  const res = await ops[call.op]();
  const text = await res.text();
  process.stdout.write(JSON.stringify({ status: res.status, body: text ? JSON.parse(text) : null }) + '\n');
} catch (e) {
  const body = e.body !== undefined ? e.body : String(e);
  process.stdout.write(JSON.stringify({ status: e.status || 0, error: body }) + '\n');
}
