// Pusher HTTP API request signing, as a backend's Pusher library does it (publisher.js,
// capacity_publisher.js).
'use strict';
const crypto = require('node:crypto');

// `path` with its signed query for a POST of `body`: auth_key, auth_timestamp, auth_version and
// body_md5, then auth_signature, the HMAC-SHA256 of "POST\n<path>\n<sorted query>" with the app secret.
function signedPath(app, path, body) {
  const params = {
    auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0',
    body_md5: crypto.createHash('md5').update(body).digest('hex'),
  };
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  const signature = crypto.createHmac('sha256', app.secret).update(`POST\n${path}\n${query}`).digest('hex');
  return `${path}?${query}&auth_signature=${signature}`;
}

module.exports = { signedPath };
