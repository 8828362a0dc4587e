// One demo "tab": the SDK as a customer uses it, showing what arrives.
(() => {
  const { key, transport, channel } = document.body.dataset;
  const $ = (id) => document.getElementById(id);
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || '';

  const tabcast = new Tabcast(key, {
    host: location.host,
    transport: transport === 'auto' ? undefined : transport,
    channelAuthorization: {
      endpoint: `/demo/auth?key=${encodeURIComponent(key)}`,
      headers: { 'X-CSRFToken': decodeURIComponent(csrf) },
    },
  });
  window.tabcast = tabcast; // for the browser tests and the curious

  tabcast.connection.bind('state_change', ({ current }) => {
    $('state').textContent = current;
    $('socket').textContent = tabcast.connection.socket_id || '–';
    $('transport').textContent = tabcast.transport || '…';
  });

  function show(text) {
    const item = document.createElement('li');
    item.textContent = text;
    $('events').prepend(item);
    while ($('events').children.length > 6) $('events').lastChild.remove();
  }

  // Every event on the demo channel: the page's publish form, or a curl to /publish.
  tabcast.subscribe(channel).bind_global((event, data) => {
    if (event.startsWith('pusher:')) return;
    show(typeof data === 'object' && data && 'text' in data ? data.text : `${event}: ${JSON.stringify(data)}`);
  });
  const presence = tabcast.subscribe(`presence-${channel}`);
  const showMembers = () => { $('members').textContent = String(presence.members.count); };
  presence.bind('pusher:subscription_succeeded', showMembers);
  presence.bind('pusher:member_added', showMembers);
  presence.bind('pusher:member_removed', showMembers);
  presence.bind('pusher:subscription_error', (e) => show(`presence error: ${e.error}`));
})();
