import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BACKOFF, NOW, STOP, backoffDelay, closeAction } from '../src/hub/backoff.js';

test('close codes follow the Pusher ranges', () => {
  assert.equal(closeAction(4001), STOP);
  assert.equal(closeAction(4099), STOP);
  assert.equal(closeAction(4100), BACKOFF);
  assert.equal(closeAction(4199), BACKOFF);
  assert.equal(closeAction(4200), NOW);
  assert.equal(closeAction(4299), NOW);
  assert.equal(closeAction(1006), BACKOFF, 'a dropped network connection backs off');
  assert.equal(closeAction(1000), BACKOFF);
});

test('backoff doubles up to the cap, with jitter in the upper half', () => {
  const low = () => 0;
  const high = () => 1;
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(n, { min: 1000, max: 30000 }, low)), [500, 1000, 2000, 4000]);
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(n, { min: 1000, max: 30000 }, high)), [1000, 2000, 4000, 8000]);
  assert.equal(backoffDelay(20, { min: 1000, max: 30000 }, high), 30000);
  assert.equal(backoffDelay(20, { min: 1000, max: 30000 }, low), 15000);
});
