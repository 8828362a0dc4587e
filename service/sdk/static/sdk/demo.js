// The demo's control page: adds and removes "tab" frames, switches transport, publishes,
// and shows the server's connection count for the app.
(() => {
  const key = document.body.dataset.key;
  const $ = (id) => document.getElementById(id);
  const tabs = $('tabs');
  let transport = 'auto';

  function tabUrl() {
    return `/demo/tab?${new URLSearchParams({ key, transport })}`;
  }

  function addTab() {
    const frame = document.createElement('iframe');
    frame.className = 'demo__tab';
    frame.title = `Tab ${tabs.children.length + 1}`;
    frame.src = tabUrl();
    tabs.append(frame);
    $('stat-frames').textContent = tabs.children.length;
  }

  function removeTab() {
    tabs.lastElementChild?.remove();
    $('stat-frames').textContent = tabs.children.length;
  }

  $('add-tab').addEventListener('click', addTab);
  $('remove-tab').addEventListener('click', removeTab);

  $('transport').addEventListener('change', (e) => {
    transport = e.target.value;
    // Reload every tab with the new transport (same number of tabs).
    for (const frame of tabs.children) frame.src = tabUrl();
  });

  $('publish').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const status = $('publish-status');
    const response = await fetch(form.action, { method: 'POST', body: new FormData(form), credentials: 'same-origin' });
    const body = await response.json().catch(() => ({}));
    status.textContent = response.ok ? 'sent' : body.error || `HTTP ${response.status}`;
    if (response.ok) form.elements.text.value = '';
  });

  async function refreshStats() {
    try {
      const response = await fetch(`/demo/stats?${new URLSearchParams({ key })}`, { cache: 'no-store' });
      if (response.ok) {
        const { connections, tabs: logical } = await response.json();
        $('stat-connections').textContent = connections;
        $('stat-tabs').textContent = logical;
      }
    } finally {
      setTimeout(refreshStats, 500);
    }
  }

  for (let i = 0; i < 3; i += 1) addTab();
  refreshStats();
})();
