// Authorization runs in the tab, with the page's cookies: the customer's endpoint (or a
// customHandler) signs for the shared socket's socket_id. The app secret never comes here.

export function authorizeChannel(options, socketId, channelName) {
  return callAuthorizer(options, { socket_id: socketId, channel_name: channelName },
    { socketId, channelName }, 'channelAuthorization.endpoint (or authEndpoint)');
}

export function authenticateUser(options, socketId) {
  return callAuthorizer(options, { socket_id: socketId }, { socketId }, 'userAuthentication.endpoint');
}

function callAuthorizer(options, form, handlerParams, what) {
  if (options.customHandler) {
    return new Promise((resolve, reject) => {
      options.customHandler(handlerParams, (error, result) => (error ? reject(toError(error)) : resolve(result)));
    });
  }
  if (!options.endpoint) return Promise.reject(new Error(`No ${what} configured`));
  return postForm(options, form);
}

async function postForm({ endpoint, headers = {}, params = {}, headersProvider, paramsProvider }, form) {
  const body = new URLSearchParams({ ...form, ...params, ...(paramsProvider ? paramsProvider() : {}) });
  const response = await fetch(endpoint, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers,
      ...(headersProvider ? headersProvider() : {}) },
    body,
  });
  if (!response.ok) {
    throw Object.assign(new Error(`Auth endpoint ${endpoint} answered HTTP ${response.status}`),
      { status: response.status });
  }
  return response.json();
}

function toError(error) {
  return error instanceof Error ? error : new Error(String(error));
}
