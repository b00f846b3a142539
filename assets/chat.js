// Web chat of wa-ai-bridge (served at /). Plain JavaScript, no dependencies, no external resources.
// Server text is never inserted as HTML: every message is built from DOM nodes and textContent.
(function () {
  'use strict';

  var PHONE_KEY = 'waChat.phone';
  // number -> the secret of this browser's conversation under it. The secret is the only key to a
  // conversation: it goes in a header, never in a URL, and no other browser can read the conversation.
  var CONVERSATIONS_KEY = 'waChat.conversations';
  var OTHER = '__other';
  var TYPING_TIMEOUT_MS = 120000;
  var HISTORY_RETRIES = 5;

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    botName: $('bot-name'),
    status: $('bot-status'),
    select: $('phone-select'),
    otherForm: $('phone-other'),
    phoneInput: $('phone-input'),
    phoneError: $('phone-error'),
    newConversation: $('new-conversation'),
    body: $('chat-body'),
    modeNotice: $('mode-notice'),
    quietNotice: $('quiet-notice'),
    connNotice: $('conn-notice'),
    list: $('message-list'),
    typing: $('typing-indicator'),
    composer: $('composer'),
    input: $('message-input'),
    send: $('send-button'),
    photoInput: $('photo-input'),
    photoButton: $('photo-button'),
    voiceButton: $('voice-button')
  };

  var state = {
    config: null,
    phone: null,
    secret: null,
    conversationGen: 0,
    messages: new Map(),   // id -> message
    turnSources: new Map(), // turnId -> [{citation, heading}]
    seq: 0,
    es: null,
    connected: false,
    typing: false,
    typingTimer: null,
    reconnectTimer: null,
    reconnectDelay: 2000,
    disconnectNoticeTimer: null,
    historyGen: 0,
    historyTries: 0 // failed history loads in a row
  };

  // ---------- small helpers ----------

  function uuid() {
    try {
      if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    } catch (e) { /* not a secure context: fall through */ }
    // RFC 4122 version 4 from Math.random (good enough for a per-message idempotency key).
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
    });
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }

  function storedConversations() {
    try { return JSON.parse(storageGet(CONVERSATIONS_KEY) || '{}') || {}; } catch (e) { return {}; }
  }
  function storeConversation(phone, secret) {
    var all = storedConversations();
    if (secret) all[phone] = secret; else delete all[phone];
    storageSet(CONVERSATIONS_KEY, JSON.stringify(all));
  }
  function authorized(headers) {
    headers = headers || {};
    headers.authorization = 'Bearer ' + state.secret;
    return headers;
  }

  // "0812-3456 7890" / "+62 812..." -> "6281234567890"; null when it is not a phone number.
  function normalizePhone(raw) {
    var s = String(raw || '').trim().replace(/[\s\-().]/g, '');
    if (s.charAt(0) === '+') s = s.slice(1);
    else if (/^0\d/.test(s)) s = '62' + s.slice(1); // Indonesian local notation
    return /^\d{7,15}$/.test(s) ? s : null;
  }

  function formatPhone(p) {
    if (/^62\d{8,13}$/.test(p)) {
      var rest = p.slice(2);
      return '+62 ' + rest.slice(0, 3) + '-' + rest.slice(3, 7) + (rest.length > 7 ? '-' + rest.slice(7) : '');
    }
    return '+' + p;
  }

  function two(n) { return (n < 10 ? '0' : '') + n; }
  function timeOf(at) {
    var d = new Date(at);
    return two(d.getHours()) + '.' + two(d.getMinutes());
  }
  function dayKey(at) {
    var d = new Date(at);
    return d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate());
  }
  function dayLabel(at) {
    var now = new Date();
    var today = dayKey(now.getTime());
    var yesterday = dayKey(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1).getTime());
    var k = dayKey(at);
    if (k === today) return 'Hari ini';
    if (k === yesterday) return 'Kemarin';
    try {
      return new Date(at).toLocaleDateString('id-ID', { day: 'numeric', month: 'long', year: 'numeric' });
    } catch (e) { return k; }
  }

  function formatNumber(n) {
    try { return Number(n).toLocaleString('id-ID', { maximumFractionDigits: 1 }); } catch (e) { return String(n); }
  }

  function h(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  }

  function svgIcon(kind) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var path = document.createElementNS(ns, 'path');
    if (kind === 'tick') {
      svg.setAttribute('viewBox', '0 0 16 11');
      svg.setAttribute('class', 'tick');
      path.setAttribute('d', 'M11.07.66 5.3 7.78 2.85 5.46a.5.5 0 0 0-.7.03l-.48.5a.5.5 0 0 0 .02.7l3.2 3.05a.5.5 0 0 0 .73-.05L12.66 1.9a.5.5 0 0 0-.08-.7l-.8-.62a.5.5 0 0 0-.7.08z');
      path.setAttribute('fill', 'currentColor');
    } else {
      svg.setAttribute('viewBox', '0 0 16 16');
      svg.setAttribute('class', 'pending');
      path.setAttribute('d', 'M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zm0 1.4a5.1 5.1 0 1 1 0 10.2A5.1 5.1 0 0 1 8 2.9zM7.3 4.5v4.1l3.2 1.9.7-1.1-2.5-1.5V4.5z');
      path.setAttribute('fill', 'currentColor');
    }
    svg.appendChild(path);
    return svg;
  }

  // ---------- WhatsApp-style formatting (assets/wa-format.js) ----------

  // Only links to the business's own domains (WEB_CHAT_LINK_DOMAINS, subdomains included) are clickable:
  // a bot answer must not become a phishing link. The host is read by the URL parser, so
  // a link to klinik.id@evil.example goes to evil.example.
  function linkAllowed(url) {
    var domains = (state.config && Array.isArray(state.config.linkDomains)) ? state.config.linkDomains : [];
    var host;
    try { host = new URL(url).hostname.toLowerCase(); } catch (e) { return false; }
    return domains.some(function (d) {
      d = String(d).toLowerCase();
      return host === d || host.slice(-(d.length + 1)) === '.' + d;
    });
  }

  function renderFormatted(text) {
    return window.WaFormat.render(text, linkAllowed);
  }

  // ---------- messages ----------

  function put(m) {
    var old = state.messages.get(m.id);
    if (old) {
      var changed = false;
      ['from', 'text', 'at', 'turnId', 'status', 'error'].forEach(function (k) {
        if (m[k] !== undefined && old[k] !== m[k]) { old[k] = m[k]; changed = true; }
      });
      if (changed) old.v += 1;
      return old;
    }
    m.seq = state.seq++;
    m.v = 0;
    state.messages.set(m.id, m);
    return m;
  }

  function setSources(turnId, sources) {
    if (!turnId) return;
    state.turnSources.set(turnId, Array.isArray(sources) ? sources : []);
  }

  function sorted() {
    var arr = Array.from(state.messages.values());
    arr.sort(function (a, b) { return (a.at - b.at) || (a.seq - b.seq); });
    return arr;
  }

  function sourcesFor(m, nextMsg) {
    if (m.from !== 'bot') return null;
    if (nextMsg && nextMsg.from === 'bot' && m.turnId && nextMsg.turnId === m.turnId) return null; // not last of turn
    var s = m.turnId ? state.turnSources.get(m.turnId) : m.sources;
    if (!s && m.sources) s = m.sources;
    return s && s.length ? s : null;
  }

  // the heading may repeat the document title: "Title › 2. Jam › 2.1" under "Title, hlm. 3" -> "2. Jam › 2.1"
  function shortHeading(citation, heading) {
    var title = citation.replace(/,\s*(hlm|hal|p|page)\.?\s*[\d\u2013-]+$/i, '').trim();
    if (title && heading.indexOf(title) === 0) return heading.slice(title.length).replace(/^\s*›\s*/, '').trim();
    return heading;
  }

  function buildSources(sources) {
    var box = h('div', 'sources');
    box.setAttribute('data-testid', 'sources');
    box.appendChild(h('span', 'sources-title', 'Sumber:'));
    var ul = document.createElement('ul');
    sources.forEach(function (s) {
      var li = h('li', 'source-item');
      li.setAttribute('data-testid', 'source-item');
      var citation = s && s.citation ? String(s.citation) : 'Dokumen';
      var span = h('span', null, citation);
      var heading = s && s.heading ? shortHeading(citation, String(s.heading)) : '';
      if (heading) {
        span.appendChild(document.createTextNode(' — '));
        span.appendChild(h('span', 'source-heading', heading));
      }
      li.appendChild(span);
      ul.appendChild(li);
    });
    box.appendChild(ul);
    return box;
  }

  function fillMessageRow(li, m, first, sources) {
    li.className = 'msg-row from-' + m.from + (first ? ' first-of-group' : '');
    var bubble = h('div', 'bubble bubble-' + m.from);
    bubble.setAttribute('data-testid', m.from === 'customer' ? 'bubble-customer' : 'bubble-bot');
    if (m.status) bubble.setAttribute('data-status', m.status);
    var label = h('span', 'visually-hidden', m.from === 'customer' ? 'Anda: ' : 'Bot: ');
    bubble.appendChild(label);

    var meta = h('span', 'meta');
    meta.appendChild(h('time', null, timeOf(m.at)));
    meta.lastChild.setAttribute('datetime', new Date(m.at).toISOString());
    if (m.from === 'customer') {
      if (m.status === 'pending') {
        var p = svgIcon('pending'); meta.appendChild(p);
        meta.setAttribute('title', 'Mengirim…');
      } else if (m.status === 'sent') {
        meta.appendChild(svgIcon('tick'));
        meta.setAttribute('title', 'Terkirim');
      } else if (m.status === 'failed') {
        var mark = h('span', 'failed-mark', '!');
        mark.setAttribute('aria-label', 'Gagal terkirim');
        meta.appendChild(mark);
      }
    }
    var main = h('div', 'bubble-main');
    if (m.preview || m.kind === 'image' || m.kind === 'audio') main.appendChild(mediaPreview(m));
    var text = renderFormatted(m.text);
    main.appendChild(text);
    // an invisible spacer as wide as the time keeps the last line clear of it (WhatsApp layout)
    var spacer = h('span', 'meta-spacer ' + (m.from === 'customer' ? 'with-tick' : ''));
    spacer.setAttribute('aria-hidden', 'true');
    var lastBlock = text.lastElementChild;
    if (lastBlock && lastBlock.classList.contains('bullet')) lastBlock.lastElementChild.appendChild(spacer);
    else if (lastBlock && lastBlock.tagName !== 'PRE') lastBlock.appendChild(spacer);
    else text.appendChild(spacer);
    main.appendChild(meta);
    bubble.appendChild(main);

    if (m.from === 'customer' && m.status === 'failed') {
      var note = h('div', 'failed-note');
      note.appendChild(h('span', null, m.error || 'Gagal terkirim.'));
      var retry = h('button', 'retry-button', 'coba lagi');
      retry.type = 'button';
      retry.setAttribute('data-testid', 'retry-button');
      retry.addEventListener('click', function () { post(m); });
      note.appendChild(retry);
      bubble.appendChild(note);
    }
    if (sources) bubble.appendChild(buildSources(sources));
    li.replaceChildren(bubble);
  }

  // A photo or recording sent from this window plays from the browser's own copy; after a reload only its kind is known.
  function mediaPreview(m) {
    var box = h('div', 'media-preview');
    box.setAttribute('data-testid', 'media-preview');
    if (m.preview && m.kind === 'image') {
      var img = h('img', 'media-thumb');
      img.alt = 'Foto yang Anda kirim';
      img.src = m.preview;
      box.appendChild(img);
    } else if (m.preview && m.kind === 'audio') {
      var audio = h('audio');
      audio.controls = true;
      audio.src = m.preview;
      box.appendChild(audio);
    } else {
      box.appendChild(h('span', 'media-label', m.kind === 'audio' ? '🎤 Pesan suara' : '📷 Foto'));
    }
    return box;
  }

  function render() {
    var msgs = sorted();
    var wanted = [];
    var lastDay = null;
    var lastFrom = null;
    msgs.forEach(function (m, i) {
      var d = dayKey(m.at);
      if (d !== lastDay) {
        wanted.push({ key: 'day:' + d, day: m.at, sig: dayLabel(m.at) });
        lastDay = d;
        lastFrom = null;
      }
      var first = m.from !== lastFrom;
      lastFrom = m.from;
      var sources = sourcesFor(m, msgs[i + 1]);
      wanted.push({
        key: 'msg:' + m.id, m: m, first: first, sources: sources,
        sig: m.v + '|' + first + '|' + (sources ? JSON.stringify(sources) : '') + '|' + m.at
      });
    });

    var existing = new Map();
    Array.prototype.forEach.call(el.list.children, function (c) { existing.set(c.getAttribute('data-key'), c); });
    var cursor = el.list.firstElementChild;
    wanted.forEach(function (w) {
      var node = existing.get(w.key);
      if (node) existing.delete(w.key);
      if (!node) {
        node = document.createElement('li');
        node.setAttribute('data-key', w.key);
      }
      if (node.getAttribute('data-sig') !== w.sig) {
        if (w.m) fillMessageRow(node, w.m, w.first, w.sources);
        else {
          node.className = 'day-separator';
          node.replaceChildren(h('span', null, w.sig));
        }
        node.setAttribute('data-sig', w.sig);
      }
      if (node !== cursor) el.list.insertBefore(node, cursor);
      else cursor = cursor.nextElementSibling;
    });
    existing.forEach(function (node) { node.remove(); });
  }

  function nearBottom() {
    return el.body.scrollHeight - el.body.scrollTop - el.body.clientHeight < 140;
  }
  function scrollToBottom() {
    el.body.scrollTop = el.body.scrollHeight;
  }
  function update(forceScroll) {
    var stick = forceScroll || nearBottom();
    render();
    if (stick) scrollToBottom();
  }

  // ---------- status line and typing ----------

  function refreshStatus() {
    el.status.classList.toggle('is-typing', state.typing);
    if (state.typing) el.status.textContent = 'mengetik…';
    else if (state.connected) el.status.textContent = 'online';
    else el.status.textContent = 'menghubungkan…';
  }

  function setTyping(on) {
    clearTimeout(state.typingTimer);
    state.typing = on;
    el.typing.hidden = !on;
    if (on) {
      state.typingTimer = setTimeout(function () { setTyping(false); }, TYPING_TIMEOUT_MS);
      if (nearBottom()) scrollToBottom();
    }
    refreshStatus();
  }

  function showConnNotice(text, actionLabel, action) {
    el.connNotice.replaceChildren(document.createTextNode(text));
    if (actionLabel) {
      var b = h('button', null, actionLabel);
      b.type = 'button';
      b.addEventListener('click', action);
      el.connNotice.appendChild(b);
    }
    el.connNotice.hidden = false;
  }
  function hideConnNotice() { el.connNotice.hidden = true; }

  // ---------- server ----------

  function loadHistory() {
    var secret = state.secret;
    if (!secret) return Promise.resolve();
    var gen = ++state.historyGen;
    return fetch('/api/chat/history', { cache: 'no-store', headers: authorized() })
      .then(function (res) {
        if (res.status === 401 || res.status === 404) throw new Error('gone');
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (data) {
        if (gen !== state.historyGen || secret !== state.secret) return;
        if (state.historyTries) {
          state.historyTries = 0;
          hideConnNotice(); // the "could not load" notice of an earlier try
        }
        var first = state.messages.size === 0;
        (data && Array.isArray(data.messages) ? data.messages : []).forEach(function (raw) {
          if (!raw || !raw.id) return;
          var m = put({
            id: String(raw.id),
            from: raw.from === 'customer' ? 'customer' : 'bot',
            text: raw.text == null ? '' : String(raw.text),
            at: Number(raw.at) || Date.now(),
            turnId: raw.turnId || undefined,
            status: raw.from === 'customer' ? 'sent' : undefined,
            error: raw.from === 'customer' ? null : undefined
          });
          if (raw.kind === 'image' || raw.kind === 'audio') m.kind = raw.kind;
          if (Array.isArray(raw.sources)) {
            m.sources = raw.sources;
            if (raw.turnId) setSources(raw.turnId, raw.sources);
          }
        });
        update(first);
      })
      .catch(function (err) {
        if (secret !== state.secret) return;
        if (err && err.message === 'gone') { conversationGone(); return; }
        showConnNotice('Riwayat chat belum bisa dimuat.', 'coba lagi', function () { hideConnNotice(); loadHistory(); });
        // A busy server or a dropped connection usually passes: try again by itself a few times.
        var tries = state.historyTries + 1;
        state.historyTries = tries;
        if (tries <= HISTORY_RETRIES) {
          setTimeout(function () {
            if (gen === state.historyGen && secret === state.secret) loadHistory();
          }, 1000 * tries);
        }
      });
  }

  // The server no longer knows this conversation (deleted by the retention cleanup): start afresh.
  function conversationGone() {
    storeConversation(state.phone, null);
    openConversation(state.phone, true);
    showConnNotice('Percakapan sebelumnya sudah tidak tersedia; ini percakapan baru.');
  }

  function disconnect() {
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.disconnectNoticeTimer);
    if (state.es) { state.es.abort(); state.es = null; }
    state.connected = false;
  }

  function parseData(data) {
    try { return JSON.parse(data || '{}') || {}; } catch (err) { return {}; }
  }

  var HANDLERS = {
    typing: function () { setTyping(true); },
    message: function (d) {
      if (!d.id) return;
      setTyping(false);
      put({
        id: String(d.id), from: 'bot', text: d.text == null ? '' : String(d.text),
        at: Number(d.at) || Date.now(), turnId: d.turnId || undefined
      });
      update(false);
    },
    sources: function (d) {
      if (!d.turnId) return;
      setSources(d.turnId, d.sources);
      update(false);
    }
  };

  // One Server-Sent Events block ("event: x\ndata: {...}"); comments (keep-alives) have neither.
  function dispatch(block) {
    var name = null;
    var data = [];
    block.split('\n').forEach(function (line) {
      if (line.indexOf('event:') === 0) name = line.slice(6).trim();
      else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
    });
    if (name && HANDLERS.hasOwnProperty(name)) HANDLERS[name](parseData(data.join('\n')));
  }

  // The event stream is read with fetch() rather than EventSource, which cannot send the secret in a header.
  function connect() {
    disconnect();
    if (!state.secret) return;
    var ctrl = new AbortController();
    state.es = ctrl;
    var lost = function () {
      if (state.es !== ctrl) return;
      state.connected = false;
      refreshStatus();
      clearTimeout(state.disconnectNoticeTimer);
      state.disconnectNoticeTimer = setTimeout(function () {
        if (!state.connected && state.es === ctrl) showConnNotice('Koneksi terputus. Menyambungkan ulang…');
      }, 4000);
      state.reconnectTimer = setTimeout(function () { if (state.es === ctrl) connect(); }, state.reconnectDelay);
      state.reconnectDelay = Math.min(state.reconnectDelay * 2, 30000);
    };
    fetch('/api/chat/events', { cache: 'no-store', headers: authorized({ accept: 'text/event-stream' }), signal: ctrl.signal })
      .then(function (res) {
        if (state.es !== ctrl) return;
        if (res.status === 401 || res.status === 404) { conversationGone(); return; }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        state.connected = true;
        state.reconnectDelay = 2000;
        clearTimeout(state.disconnectNoticeTimer);
        hideConnNotice();
        refreshStatus();
        loadHistory(); // catch up with anything missed while disconnected
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        var pump = function () {
          return reader.read().then(function (chunk) {
            if (state.es !== ctrl) return reader.cancel();
            if (chunk.done) throw new Error('stream ended');
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, '\n');
            var end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              dispatch(buffer.slice(0, end));
              buffer = buffer.slice(end + 2);
            }
            return pump();
          });
        };
        return pump();
      })
      .catch(lost);
  }

  function describeFailure(status, body) {
    if (status === 404 && body && /conversation/.test(String(body.error))) return 'Percakapan ini sudah tidak tersedia.';
    if (status === 404) return 'Chat web sedang tidak aktif.';
    if (status === 400) return 'Pesan ditolak' + (body && body.error ? ' (' + String(body.error) + ')' : '') + '.';
    if (status === 413) return 'Pesan atau berkas terlalu besar.';
    if (status === 415) return 'Jenis berkas tidak didukung (foto JPEG/PNG/WebP atau rekaman suara).';
    if (status === 429) return 'Terlalu banyak pesan, tunggu sebentar.';
    return 'Gagal terkirim.';
  }

  function post(m) {
    var secret = state.secret;
    put({ id: m.id, status: 'pending', error: null });
    update(true);
    var request = m.file
      ? { url: '/api/chat/media?clientId=' + encodeURIComponent(m.clientId) + (m.caption ? '&caption=' + encodeURIComponent(m.caption) : ''),
          headers: authorized({ 'content-type': m.file.type || 'application/octet-stream' }), body: m.file }
      : { url: '/api/chat/messages', headers: authorized({ 'content-type': 'application/json' }),
          body: JSON.stringify({ text: m.text, clientId: m.clientId }) };
    var attempt = function (n) {
      return fetch(request.url, {
        method: 'POST',
        headers: request.headers,
        body: request.body
      }).then(function (res) {
        if (res.status === 202 || res.ok) return { ok: true };
        return res.json().catch(function () { return null; }).then(function (body) {
          if (res.status >= 500 && n === 0) return sleep(1000).then(function () { return attempt(1); });
          return { ok: false, error: describeFailure(res.status, body) };
        });
      }, function () {
        // network failure: retry once with the same clientId (the server dedupes it)
        if (n === 0) return sleep(1000).then(function () { return attempt(1); });
        return { ok: false, error: 'Tidak terkirim. Periksa koneksi Anda.' };
      });
    };
    return attempt(0).then(function (r) {
      if (secret !== state.secret || state.messages.get(m.id) !== m) return;
      put({ id: m.id, status: r.ok ? 'sent' : 'failed', error: r.ok ? null : r.error });
      update(false);
    });
  }

  function sendCurrent() {
    var text = el.input.value.replace(/\s+$/, '');
    if (!text.trim() || !state.secret) return;
    if (text.length > 4096) {
      showConnNotice('Pesan terlalu panjang (maks. 4096 karakter).');
      return;
    }
    var clientId = uuid();
    var m = put({ id: 'web.' + clientId, clientId: clientId, from: 'customer', text: text, at: Date.now(), status: 'pending' });
    el.input.value = '';
    autoGrow();
    syncSendButton();
    post(m);
  }

  // ---------- photos and voice notes ----------

  // The text in the box goes with the photo as its caption, as on WhatsApp.
  function sendFile(blob, kind) {
    if (!state.secret || !blob) return;
    var caption = kind === 'image' ? el.input.value.trim() : '';
    if (caption) { el.input.value = ''; autoGrow(); syncSendButton(); }
    var clientId = uuid();
    var m = put({ id: 'web.' + clientId, clientId: clientId, from: 'customer', text: caption, at: Date.now(), status: 'pending' });
    m.kind = kind;
    m.file = blob;
    m.caption = caption;
    m.preview = URL.createObjectURL(blob);
    post(m);
  }

  // Scaled down in the browser: the bot never needs more than 1568 px, and a phone photo shrinks to a fraction.
  function shrinkPhoto(file) {
    var MAX = 1568;
    return new Promise(function (resolve) {
      var img = new Image();
      var url = URL.createObjectURL(file);
      img.onload = function () {
        URL.revokeObjectURL(url);
        var scale = Math.min(1, MAX / Math.max(img.naturalWidth, img.naturalHeight));
        var canvas = document.createElement('canvas');
        canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
        canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
        var ctx = canvas.getContext('2d');
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, canvas.width, canvas.height);
        ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) { resolve(blob || file); }, 'image/jpeg', 0.85);
      };
      img.onerror = function () { URL.revokeObjectURL(url); resolve(file); };
      img.src = url;
    });
  }

  el.photoButton.addEventListener('click', function () { if (state.secret) el.photoInput.click(); });
  el.photoInput.addEventListener('change', function () {
    var file = el.photoInput.files && el.photoInput.files[0];
    el.photoInput.value = '';
    if (file) shrinkPhoto(file).then(function (blob) { sendFile(blob, 'image'); });
  });

  var MAX_RECORDING_MS = 60000;
  var recording = null;
  function stopRecording() {
    if (recording && recording.recorder.state !== 'inactive') recording.recorder.stop();
  }
  el.voiceButton.addEventListener('click', function () {
    if (recording) return stopRecording();
    if (!state.secret) return;
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      showConnNotice('Browser ini tidak bisa merekam suara.');
      return;
    }
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var type = MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported('audio/webm;codecs=opus') ? 'audio/webm;codecs=opus' : '';
      var recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
      var chunks = [];
      recording = { recorder: recorder, timer: setTimeout(stopRecording, MAX_RECORDING_MS) };
      el.voiceButton.classList.add('recording');
      el.voiceButton.setAttribute('aria-pressed', 'true');
      recorder.ondataavailable = function (e) { if (e.data && e.data.size) chunks.push(e.data); };
      recorder.onstop = function () {
        clearTimeout(recording.timer);
        recording = null;
        el.voiceButton.classList.remove('recording');
        el.voiceButton.setAttribute('aria-pressed', 'false');
        stream.getTracks().forEach(function (t) { t.stop(); });
        if (chunks.length) sendFile(new Blob(chunks, { type: (recorder.mimeType || 'audio/webm').split(';')[0] }), 'audio');
      };
      recorder.start();
    }, function () {
      showConnNotice('Izin mikrofon ditolak; pesan suara tidak bisa direkam.');
    });
  });

  // ---------- phone picker ----------

  function setPhone(phone) {
    el.phoneError.hidden = true;
    if (phone === state.phone && state.es) return;
    openConversation(phone, false);
  }

  // The number is only a label: this browser's conversation under it is opened by its stored secret, or a
  // new one is started (and with `fresh`, always).
  function openConversation(phone, fresh) {
    var gen = ++state.conversationGen;
    disconnect();
    state.phone = phone;
    state.secret = null;
    storageSet(PHONE_KEY, phone);
    state.messages = new Map();
    state.turnSources = new Map();
    state.historyTries = 0;
    el.list.replaceChildren();
    setTyping(false);
    hideConnNotice();
    syncSendButton();
    var known = fresh ? null : storedConversations()[phone];
    var ready = known ? Promise.resolve(known) : startConversation(phone);
    ready.then(function (secret) {
      if (gen !== state.conversationGen) return;
      state.secret = secret;
      syncSendButton();
      connect();
      loadHistory(); // right away, without waiting for the stream (a buffering proxy may hold it back)
    }, function (err) {
      if (gen !== state.conversationGen) return;
      var busy = err && err.message === 'busy';
      showConnNotice(busy ? 'Terlalu banyak percakapan baru, tunggu sebentar.' : 'Tidak bisa memulai percakapan.',
        'coba lagi', function () { hideConnNotice(); openConversation(phone, fresh); });
    });
  }

  function startConversation(phone) {
    return fetch('/api/chat/conversations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: phone })
    }).then(function (res) {
      if (res.status === 429) throw new Error('busy');
      if (res.status !== 201) throw new Error('HTTP ' + res.status);
      return res.json();
    }).then(function (body) {
      if (!body || typeof body.secret !== 'string') throw new Error('no secret');
      storeConversation(phone, body.secret);
      return body.secret;
    });
  }

  el.newConversation.addEventListener('click', function () {
    if (state.phone) openConversation(state.phone, true);
  });

  function applyOtherPhone() {
    var p = normalizePhone(el.phoneInput.value);
    if (!p) {
      el.phoneError.textContent = 'Nomor tidak valid. Tulis 7–15 angka, mis. 6281234567890.';
      el.phoneError.hidden = false;
      el.phoneInput.setAttribute('aria-invalid', 'true');
      return;
    }
    el.phoneInput.removeAttribute('aria-invalid');
    el.phoneInput.value = p;
    setPhone(p);
  }

  function buildPhoneOptions(samples, current) {
    el.select.replaceChildren();
    samples.forEach(function (p) {
      var o = document.createElement('option');
      o.value = p;
      o.textContent = formatPhone(p);
      el.select.appendChild(o);
    });
    var other = document.createElement('option');
    other.value = OTHER;
    other.textContent = 'nomor lain…';
    el.select.appendChild(other);
    var isSample = samples.indexOf(current) >= 0;
    el.select.value = isSample ? current : OTHER;
    el.otherForm.hidden = isSample;
    if (!isSample) el.phoneInput.value = current || '';
  }

  el.select.addEventListener('change', function () {
    if (el.select.value === OTHER) {
      el.otherForm.hidden = false;
      if (state.phone && (state.config.samplePhones || []).indexOf(state.phone) < 0) el.phoneInput.value = state.phone;
      el.phoneInput.focus();
    } else {
      el.otherForm.hidden = true;
      el.phoneError.hidden = true;
      setPhone(el.select.value);
    }
  });
  el.otherForm.addEventListener('submit', function (e) { e.preventDefault(); applyOtherPhone(); });
  el.phoneInput.addEventListener('change', function () {
    if (normalizePhone(el.phoneInput.value)) applyOtherPhone();
  });

  // ---------- composer ----------

  function autoGrow() {
    el.input.style.height = 'auto';
    el.input.style.height = Math.min(el.input.scrollHeight, 132) + 'px';
  }
  function syncSendButton() {
    el.send.disabled = !el.input.value.trim() || !state.secret;
  }
  el.input.addEventListener('input', function () { autoGrow(); syncSendButton(); });
  el.input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendCurrent();
    }
  });
  el.composer.addEventListener('submit', function (e) {
    e.preventDefault();
    sendCurrent();
    el.input.focus();
  });

  // ---------- start ----------

  function applyConfig(cfg) {
    state.config = cfg;
    var name = cfg.business ? String(cfg.business) : 'wa-ai-bridge';
    el.botName.textContent = name;
    document.title = name + ' — Chat';
    el.modeNotice.hidden = cfg.llm !== false;
    var q = Number(cfg.quietSeconds);
    if (isFinite(q) && q > 0) {
      el.quietNotice.textContent = 'Bot menjawab setelah Anda diam ' + formatNumber(q) + ' detik.';
      el.quietNotice.hidden = false;
    }
    var samples = (Array.isArray(cfg.samplePhones) ? cfg.samplePhones : [])
      .map(function (p) { return normalizePhone(p); })
      .filter(Boolean);
    var stored = normalizePhone(storageGet(PHONE_KEY));
    var phone = stored || samples[0] || null;
    buildPhoneOptions(samples, phone);
    if (phone) setPhone(phone);
    else {
      el.phoneInput.focus();
      refreshStatus();
    }
  }

  function start() {
    syncSendButton();
    fetch('/api/chat/config', { cache: 'no-store' })
      .then(function (res) {
        if (res.status === 404) throw new Error('disabled');
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(applyConfig)
      .catch(function (err) {
        el.status.textContent = 'offline';
        if (err && err.message === 'disabled') showConnNotice('Chat web sedang tidak aktif.');
        else showConnNotice('Tidak bisa terhubung ke server.', 'coba lagi', function () { hideConnNotice(); start(); });
      });
  }

  start();
})();
