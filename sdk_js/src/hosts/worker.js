// The SharedWorker: one hub (and so one WebSocket) for every tab that connects to it.
// Loaded as /sdk/v1/worker.js, or imported by a customer-hosted one-line stub:
//   importScripts('https://realtime.example.com/sdk/v1/worker.js' + self.location.search);

import { Hub } from '../hub/hub.js';
import { holdLock, lockWatcher } from '../shared/locks.js';
import { hubLockName, randomId } from '../shared/protocol.js';

// A worker that dies (crash, browser killing it) leaves its tabs' ports silently dead. It holds
// this lock for its lifetime, and its tabs (told its name in the welcome) queue for it: the
// browser grants it to them only when the worker is gone. They then start a new worker, which
// resumes their channels from the positions they hand it.
const lock = hubLockName(randomId());
holdLock(lock, self.navigator.locks);
const hub = new Hub({ watchTab: lockWatcher(self.navigator.locks), lock });

self.onconnect = (event) => {
  const port = event.ports[0];
  const post = (msg) => port.postMessage(msg);
  port.onmessage = (e) => hub.handle(e.data, post);
};
