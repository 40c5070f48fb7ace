// Cidadão.AI playground: streamed chat with stop and resume, sessions, and investigations with live progress.
const $ = (selector) => document.querySelector(selector);
const store = window.sessionStorage;
const KEYS = { token: 'pg.token', session: 'pg.session', pending: 'pg.pending', known: 'pg.known' };

// ---------------------------------------------------------------- HTTP and SSE

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  const token = store.getItem(KEYS.token);
  return token ? { ...extra, authorization: `Bearer ${token}` } : { ...extra };
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  return answer(await fetch(path, init));
}

async function answer(res) {
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Reads Server-Sent Events from a fetch response (EventSource cannot send Authorization). */
async function* events(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (;;) {
        const cut = buffer.indexOf('\n\n');
        if (cut < 0) break;
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let id = null;
        let data = null;
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) id = line.slice(4);
          else if (line.startsWith('data: ')) data = line.slice(6);
        }
        if (data !== null) yield { id, data: JSON.parse(data) };
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// ---------------------------------------------------------------- Markdown (escape first, then a few rules)

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]);

function inline(s) {
  return s
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*\w])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
    .replace(
      /\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g,
      '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>',
    );
}

const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
const HEADING = /^(#{1,6})\s+(.*)$/;

/** Renders a small, safe Markdown subset: the input is HTML-escaped before any tag is added. */
export function markdown(source) {
  const lines = escapeHtml(source).split('\n');
  const out = [];
  let i = 0;
  const isBlockStart = (line) =>
    line.startsWith('```') || HEADING.test(line) || BULLET.test(line) || NUMBERED.test(line);
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith('```')) {
      const code = [];
      i++;
      while (i < lines.length && !lines[i].startsWith('```')) code.push(lines[i++]);
      i++;
      out.push(`<pre><code>${code.join('\n')}</code></pre>`);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = Math.min(6, heading[1].length + 2);
      out.push(`<h${level}>${inline(heading[2])}</h${level}>`);
      i++;
      continue;
    }
    const list = BULLET.test(line) ? [BULLET, 'ul'] : NUMBERED.test(line) ? [NUMBERED, 'ol'] : null;
    if (list) {
      const [pattern, tag] = list;
      const items = [];
      while (i < lines.length && pattern.test(lines[i])) {
        items.push(`<li>${inline(pattern.exec(lines[i++])[1])}</li>`);
      }
      out.push(`<${tag}>${items.join('')}</${tag}>`);
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && !(paragraph.length && isBlockStart(lines[i]))) {
      paragraph.push(inline(lines[i++]));
    }
    out.push(`<p>${paragraph.join('<br>')}</p>`);
  }
  return out.join('');
}

// ---------------------------------------------------------------- chat

const chat = { sessionId: store.getItem(KEYS.session), running: null, lastQuestion: null };

function status(text) {
  $('#chat-status').textContent = text ?? '';
}

function setRunning(messageId) {
  chat.running = messageId;
  $('#stop').disabled = !messageId;
  $('#send').disabled = Boolean(messageId);
}

function setSession(id) {
  chat.sessionId = id;
  if (id) store.setItem(KEYS.session, id);
  else store.removeItem(KEYS.session);
  for (const b of document.querySelectorAll('#sessions button')) {
    b.classList.toggle('current', b.dataset.sessionId === id);
  }
}

/** Appends a message bubble; returns a small view to update it as the reply grows. */
function addMessage({ id, role, content = '', status: state = 'completed', agentName }) {
  const el = document.createElement('div');
  el.className = `msg ${role} ${state}`;
  if (id) el.dataset.messageId = id;
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = role === 'user' ? 'Você' : (agentName ?? 'Assistente');
  const body = document.createElement('div');
  body.className = 'body';
  el.append(meta, body);
  $('#messages').append(el);
  let frame = 0;
  let text = content;
  const paint = () => {
    frame = 0;
    if (role === 'user') body.textContent = text;
    else body.innerHTML = markdown(text);
    $('#messages').scrollTop = $('#messages').scrollHeight;
  };
  paint();
  return {
    el,
    setText(next) {
      text = next;
      // One repaint per animation frame however many chunks arrive.
      frame ||= requestAnimationFrame(paint);
    },
    setAgent(name) {
      meta.textContent = name;
    },
    setStatus(next) {
      el.className = `msg ${role} ${next}`;
      if (frame) cancelAnimationFrame(frame);
      paint();
    },
  };
}

function savePending(p) {
  if (p) store.setItem(KEYS.pending, JSON.stringify(p));
  else store.removeItem(KEYS.pending);
}

/** Follows a reply stream; `pending` (message id, cursor, text so far) is saved after every event. */
async function follow(res, pending, view) {
  let current = view;
  try {
    for await (const { id, data } of events(res)) {
      if (data.type === 'start' && pending?.messageId === data.message_id) {
        continue;
      } else if (data.type === 'start') {
        pending = { messageId: data.message_id, sessionId: data.session_id, cursor: id, text: '' };
        setSession(data.session_id);
        rememberSession(data.session_id, chat.lastQuestion);
        current = addMessage({ id: data.message_id, role: 'assistant', status: 'streaming' });
        setRunning(data.message_id);
      } else if (!pending) {
        continue;
      } else if (data.type === 'agent_selected') {
        pending.agentName = data.agent_name;
        current.setAgent(data.agent_name);
      } else if (data.type === 'chunk') {
        pending.text += data.content;
        current.setText(pending.text);
      } else if (data.type === 'complete' || data.type === 'error') {
        current.setStatus(
          data.type === 'error' ? 'failed' : data.finish_reason === 'stopped' ? 'stopped' : 'completed',
        );
        if (data.type === 'error') status(data.message);
        savePending(null);
        pending = null;
        continue;
      } else if (data.type === 'thinking' || data.type === 'detecting' || data.type === 'searching') {
        status(data.message ?? '');
        continue;
      }
      pending.cursor = id;
      savePending(pending);
    }
  } finally {
    setRunning(null);
    if (!pending) status('');
    refreshSessions();
  }
}

async function sendMessage(text) {
  status('');
  chat.lastQuestion = text.slice(0, 80);
  addMessage({ role: 'user', content: text });
  const agent = $('#agent').value;
  const body = { message: text };
  if (chat.sessionId) body.session_id = chat.sessionId;
  if (agent) body.agent_id = agent;
  setRunning('pending');
  try {
    const res = await fetch('/api/v1/chat/stream', {
      method: 'POST',
      headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    await follow(res, null, null);
  } catch (err) {
    status(err.message);
    setRunning(null);
  }
}

/** After a reload mid-reply: show what was received, then continue after the saved cursor. */
async function resume(pending) {
  const view = addMessage({
    id: pending.messageId,
    role: 'assistant',
    status: 'streaming',
    content: pending.text,
    agentName: pending.agentName,
  });
  setRunning(pending.messageId);
  try {
    const url = `/api/v1/chat/stream/${encodeURIComponent(pending.messageId)}?after=${encodeURIComponent(pending.cursor)}`;
    const res = await fetch(url, { headers: headers({ accept: 'text/event-stream' }) });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
    await follow(res, pending, view);
  } catch (err) {
    savePending(null);
    setRunning(null);
    status(err.message);
  }
}

async function stopReply() {
  if (!chat.running || chat.running === 'pending') return;
  try {
    await api('POST', `/api/v1/chat/messages/${encodeURIComponent(chat.running)}/stop`);
  } catch (err) {
    status(err.message);
  }
}

async function loadHistory(sessionId, skipId) {
  $('#messages').replaceChildren();
  try {
    const history = await api('GET', `/api/v1/chat/history/${encodeURIComponent(sessionId)}?limit=200`);
    for (const m of history.messages) {
      if (m.id === skipId) continue;
      addMessage({ id: m.id, role: m.role, content: m.content, status: m.status, agentName: m.agent_name });
    }
  } catch (err) {
    if (err.status === 404) setSession(null);
    status(err.message);
  }
}

// Anonymous sessions cannot be listed by the server: the ones this tab created are remembered here.
function knownSessions() {
  return JSON.parse(store.getItem(KEYS.known) ?? '[]');
}
function rememberSession(id, title) {
  const known = knownSessions();
  const previous = known.find((k) => k.id === id);
  const rest = known.filter((k) => k.id !== id);
  store.setItem(
    KEYS.known,
    JSON.stringify([{ id, title: previous?.title ?? title ?? id }, ...rest].slice(0, 50)),
  );
}

async function refreshSessions() {
  let items;
  if (store.getItem(KEYS.token)) {
    try {
      items = (await api('GET', '/api/v1/chat/sessions?limit=50')).sessions.map((s) => ({
        id: s.id,
        title: s.title || s.id,
      }));
    } catch (err) {
      status(err.message);
      return;
    }
  } else {
    items = knownSessions();
  }
  const list = $('#sessions');
  list.replaceChildren(
    ...items.map(({ id, title }) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.sessionId = id;
      b.textContent = title;
      b.classList.toggle('current', id === chat.sessionId);
      b.addEventListener('click', () => {
        if (chat.running) return;
        setSession(id);
        loadHistory(id);
      });
      li.append(b);
      return li;
    }),
  );
}

async function loadAgents() {
  const select = $('#agent');
  const agents = await api('GET', '/api/v1/chat/agents');
  const auto = new Option('agente automático', '');
  select.replaceChildren(auto, ...agents.map((a) => new Option(`${a.avatar} ${a.name} — ${a.role}`, a.id)));
}

// ---------------------------------------------------------------- investigations

const SEVERITY = (s) => (s >= 0.7 ? 'alta' : s >= 0.4 ? 'média' : 'baixa');
const SEVERITY_CLASS = { alta: 'sev-high', média: 'sev-medium', baixa: 'sev-low' };
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A horizontal bar chart as inline SVG; labels go through textContent, never markup. */
function barChart(title, counts) {
  const entries = [...counts].sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  const row = 22;
  const width = 420;
  const labelWidth = 190;
  const chart = svg('svg', {
    width,
    height: entries.length * row + 4,
    role: 'img',
    'aria-label': title,
    class: 'chart',
  });
  entries.forEach(([label, n], i) => {
    const y = i * row + 2;
    const w = Math.max(2, ((width - labelWidth - 40) * n) / max);
    chart.append(
      svg('text', { x: 0, y: y + 15, 'font-size': 12 }, label),
      svg('rect', { x: labelWidth, y, width: w, height: row - 6, fill: '#12355b', rx: 2 }),
      svg('text', { x: labelWidth + w + 6, y: y + 13, 'font-size': 12 }, String(n)),
    );
  });
  const figure = document.createElement('figure');
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  figure.append(caption, chart);
  return figure;
}

function renderResults(results) {
  $('#inv-summary').textContent = results.summary ?? results.error ?? '';
  const byType = new Map();
  const bySeverity = new Map();
  const rows = results.findings.map((f) => {
    byType.set(f.type, (byType.get(f.type) ?? 0) + 1);
    const sev = SEVERITY(f.severity);
    bySeverity.set(sev, (bySeverity.get(sev) ?? 0) + 1);
    const tr = document.createElement('tr');
    const cells = [f.type, `${sev} (${f.severity})`, f.confidence, f.title, f.contract_ids.length];
    for (const [i, value] of cells.entries()) {
      const td = document.createElement('td');
      td.textContent = String(value);
      if (i === 1) td.className = SEVERITY_CLASS[sev];
      if (i === 3) td.title = f.explanation;
      tr.append(td);
    }
    return tr;
  });
  $('#findings tbody').replaceChildren(...rows);
  $('#findings').hidden = rows.length === 0;
  $('#inv-charts').replaceChildren(
    ...(rows.length ? [barChart('Por tipo', byType), barChart('Por severidade', bySeverity)] : []),
  );
}

async function watchInvestigation(id) {
  $('#inv-run').hidden = false;
  $('#inv-run').dataset.investigationId = id;
  $('#inv-run').dataset.status = 'running';
  $('#inv-progress').value = 0;
  $('#inv-summary').textContent = '';
  $('#inv-charts').replaceChildren();
  $('#findings').hidden = true;
  let found = 0;
  let updates = 0;
  const res = await fetch(`/api/v1/investigations/${encodeURIComponent(id)}/stream`, {
    headers: headers({ accept: 'text/event-stream' }),
  });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  let final = null;
  for await (const { data } of events(res)) {
    if (data.type === 'progress') {
      $('#inv-progress').value = data.progress;
      $('#inv-run').dataset.progressEvents = String(++updates);
      $('#inv-phase').textContent = data.current_phase;
      $('#inv-count').textContent =
        `${data.records_processed} contratos · ${data.anomalies_detected} achados`;
    } else if (data.type === 'anomaly') {
      found++;
      $('#inv-count').textContent = `${found} achados`;
    } else if (data.type === 'completion') {
      final = data;
      break;
    }
  }
  $('#inv-run').dataset.status = final?.status ?? 'unknown';
  if (final?.status === 'completed') {
    $('#inv-progress').value = 1;
    $('#inv-phase').textContent = 'concluída';
    renderResults(await api('GET', `/api/v1/investigations/${encodeURIComponent(id)}/results`));
  } else {
    $('#inv-phase').textContent = final?.status ?? 'interrompida';
    $('#inv-summary').textContent = final?.error ?? '';
  }
  refreshInvestigations();
}

async function startInvestigation(csvFile) {
  const query = $('#inv-query').value.trim();
  try {
    let created;
    if (csvFile) {
      const res = await fetch(`/api/v1/investigations/?query=${encodeURIComponent(query)}`, {
        method: 'POST',
        headers: headers({ 'content-type': 'text/csv' }),
        body: await csvFile.text(),
      });
      created = await answer(res);
    } else {
      created = await api('POST', '/api/v1/investigations/', { query, data_source: 'contracts' });
    }
    await watchInvestigation(created.investigation_id);
  } catch (err) {
    $('#inv-run').hidden = false;
    $('#inv-summary').textContent = err.body?.error?.details
      ? `${err.message}: ${JSON.stringify(err.body.error.details)}`
      : err.message;
  }
}

async function refreshInvestigations() {
  const list = await api('GET', '/api/v1/investigations/').catch(() => []);
  $('#inv-list-hint').hidden = Boolean(store.getItem(KEYS.token));
  $('#inv-list').replaceChildren(
    ...list.map((inv) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = `${inv.query || inv.investigation_id} — ${inv.status}`;
      b.addEventListener('click', () => watchInvestigation(inv.investigation_id));
      li.append(b);
      return li;
    }),
  );
}

// ---------------------------------------------------------------- wiring

function showWho() {
  const token = store.getItem(KEYS.token);
  if (!token) {
    $('#whoami').textContent = 'anônimo';
    return;
  }
  try {
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    $('#whoami').textContent = `usuário ${claims.sub}`;
  } catch {
    $('#whoami').textContent = 'token ilegível';
  }
}

function wire() {
  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => {
      for (const t of document.querySelectorAll('.tab')) t.classList.toggle('active', t === tab);
      for (const p of document.querySelectorAll('.panel')) p.hidden = p.id !== tab.dataset.tab;
      if (tab.dataset.tab === 'investigations') refreshInvestigations();
    });
  }
  $('#token').value = store.getItem(KEYS.token) ?? '';
  $('#token').addEventListener('change', () => {
    const token = $('#token').value.trim();
    if (token) store.setItem(KEYS.token, token);
    else store.removeItem(KEYS.token);
    showWho();
    refreshSessions();
  });
  $('#auth').addEventListener('submit', (e) => e.preventDefault());
  $('#composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('#message').value;
    if (!text.trim() || chat.running) return;
    $('#message').value = '';
    sendMessage(text);
  });
  $('#message').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      $('#composer').requestSubmit();
    }
  });
  $('#stop').addEventListener('click', stopReply);
  $('#new-session').addEventListener('click', () => {
    if (chat.running) return;
    setSession(null);
    $('#messages').replaceChildren();
  });
  $('#inv-sample').addEventListener('click', () => startInvestigation(null));
  $('#inv-csv').addEventListener('change', (e) => {
    const file = e.target.files?.[0];
    if (file) startInvestigation(file);
  });
}

async function main() {
  wire();
  showWho();
  await loadAgents().catch((err) => status(err.message));
  const pending = JSON.parse(store.getItem(KEYS.pending) ?? 'null');
  if (chat.sessionId) await loadHistory(chat.sessionId, pending?.messageId);
  refreshSessions();
  document.body.dataset.ready = 'true';
  if (pending) await resume(pending);
}

main();
