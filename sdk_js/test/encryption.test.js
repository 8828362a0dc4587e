import assert from 'node:assert/strict';
import { test } from 'node:test';

import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';

import { decryptEventData, isEncryptedChannel } from '../src/client/encryption.js';

const b64 = (bytes) => Buffer.from(bytes).toString('base64');

function encrypt(key, text) {
  const nonce = new Uint8Array(24).fill(7);
  const ciphertext = xsalsa20poly1305(key, nonce).encrypt(new TextEncoder().encode(text));
  return JSON.stringify({ nonce: b64(nonce), ciphertext: b64(ciphertext) });
}

test('opens what the server relays for private-encrypted channels', () => {
  const key = new Uint8Array(32).fill(3);
  assert.equal(decryptEventData(b64(key), encrypt(key, '{"pin":1234}')), '{"pin":1234}');
});

test('a wrong key is an error, not garbage', () => {
  const data = encrypt(new Uint8Array(32).fill(3), 'secret');
  assert.throws(() => decryptEventData(b64(new Uint8Array(32).fill(4)), data), /Could not decrypt/);
});

test('only private-encrypted- channels are encrypted', () => {
  assert.equal(isEncryptedChannel('private-encrypted-vault'), true);
  assert.equal(isEncryptedChannel('private-vault'), false);
});
