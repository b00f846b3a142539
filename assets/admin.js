// Admin page of wa-ai-bridge (served at /admin). Plain JavaScript, no dependencies, no external resources.
// Server text is only ever put into the page with textContent / createTextNode (never innerHTML).
(function () {
  'use strict';

  var TOKEN_KEY = 'waAdmin.token';
  var REFRESH_MS = 10000;
  var SLOW_EVERY = 6; // stats + charts every 6th refresh (60 s)
  var SVGNS = 'http://www.w3.org/2000/svg';

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    loginView: $('login-view'), loginForm: $('login-form'), tokenInput: $('token-input'),
    loginError: $('login-error'), loginButton: $('login-button'),
    dashboard: $('dashboard'), logout: $('logout-button'), serverMeta: $('server-meta'),
    refreshState: $('refresh-state'), globalError: $('global-error'),
    cards: $('status-cards'), statsTiles: $('stats-tiles'),
    chartMessages: $('chart-messages'), chartReply: $('chart-reply'),
    convList: $('conversation-list'), transcriptHead: $('transcript-head'), transcript: $('transcript'),
    sendForm: $('send-form'), sendTo: $('send-to'), sendToHint: $('send-to-hint'), sendAccountBox: $('send-account-box'),
    sendAccount: $('send-account'), sendText: $('send-text'), sendButton: $('send-button'), sendError: $('send-error'),
    sendResult: $('send-result'), sendPreview: $('send-preview'), sendParts: $('send-parts'),
    sendTextBox: $('send-text-box'), sendTemplateBox: $('send-template-box'), sendTemplate: $('send-template'),
    sendTemplateHint: $('send-template-hint'), sendValues: $('send-values'), sendTextLabel: $('send-text-label'),
    sendFile: $('send-file'), sendFilePick: $('send-file-pick'), sendFileChosen: $('send-file-chosen'),
    sendFileName: $('send-file-name'), sendFileRemove: $('send-file-remove'), sendFileHint: $('send-file-hint'),
    templatesSummary: $('templates-summary'), templatesAccountBox: $('templates-account-box'), templatesAccount: $('templates-account'),
    templatesSync: $('templates-sync'), templatesRefresh: $('templates-refresh'), templatesList: $('templates-list'),
    templateForm: $('template-form'), tfName: $('tf-name'), tfLanguage: $('tf-language'), tfCategory: $('tf-category'),
    tfBody: $('tf-body'), tfExamples: $('tf-examples'), tfSubmit: $('tf-submit'), tfProblems: $('tf-problems'),
    campaignsList: $('campaigns-list'), campaignReport: $('campaign-report'), reportTitle: $('report-title'),
    reportExport: $('report-export'), reportClose: $('report-close'), reportBody: $('report-body'), reportMore: $('report-more'),
    campaignForm: $('campaign-form'), cfName: $('cf-name'), cfAccountBox: $('cf-account-box'), cfAccount: $('cf-account'),
    cfTemplate: $('cf-template'), cfCsvBox: $('cf-csv-box'), cfFile: $('cf-file'), cfCsvSummary: $('cf-csv-summary'),
    cfColumns: $('cf-columns'), cfTagBox: $('cf-tag-box'), cfTag: $('cf-tag'), cfValues: $('cf-values'), cfAt: $('cf-at'),
    cfHours: $('cf-hours'), cfHolidays: $('cf-holidays'), cfRate: $('cf-rate'), cfSubmit: $('cf-submit'),
    cfProblems: $('cf-problems'), cfResult: $('cf-result'), cfPreview: $('cf-preview'), cfPreviewWho: $('cf-preview-who'),
    docsSummary: $('docs-summary'), refreshButton: $('refresh-button'), refreshReport: $('refresh-report'),
    filesBody: $('files-body'), skippedBox: $('skipped-box'), errorsList: $('errors-list'),
    evalBox: $('eval-box'), unansweredList: $('unanswered-list'),
    outboxList: $('outbox-list'), outboxFollowed: $('outbox-followed'), outboxFollowedBox: $('outbox-followed-box'),
    inboxTabCount: $('inbox-tab-count'), inboxSummary: $('inbox-summary'),
    composer: $('composer'), replyInput: $('reply-input'), replySend: $('reply-send'),
    replyNotice: $('reply-notice'), replyError: $('reply-error'),
    contactsFilter: $('contacts-filter'), contactsQ: $('contacts-q'), contactsTag: $('contacts-tag'),
    contactsConsent: $('contacts-consent'), contactsFile: $('contacts-file'), contactsExport: $('contacts-export'),
    contactsImport: $('contacts-import'), contactsBody: $('contacts-body'), contactsSummary: $('contacts-summary'),
    contactsPrev: $('contacts-prev'), contactsNext: $('contacts-next'), contactDetail: $('contact-detail')
  };

  var state = {
    token: null,
    timer: null,
    tick: 0,
    selectedId: null,
    selectedSig: null,
    transcriptData: null,
    inbox: { rows: {}, order: [], waiting: 0, paused: 0, offset: 0, loaded: false },
    stream: null, // the open inbox event stream (its AbortController)
    streamUp: false,
    streamConnecting: false,
    streamTimer: null,
    streamDelay: 1000,
    reply: { id: null, text: null, key: null }, // the message being sent and its idempotency key
    sending: false,
    modeBusy: false,
    windowTimer: null,
    loading: false,
    refreshingKb: false,
    followed: {}, // id -> message an operator sent again, watched until it is out
    retrying: {}, // id -> true while its Retry request runs, so a redraw keeps the button off
    outboxSeq: 0,
    followTimer: null,
    contacts: { offset: 0, total: 0, selected: null, seq: 0 }
  };

  // ---------- helpers ----------

  function h(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = String(text);
    return n;
  }
  function s(tag, attrs, text) {
    var n = document.createElementNS(SVGNS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text != null) n.textContent = String(text);
    return n;
  }
  function num(n, digits) {
    if (n == null || !isFinite(Number(n))) return '–';
    return Number(n).toLocaleString('id-ID', { maximumFractionDigits: digits == null ? 0 : digits, minimumFractionDigits: 0 });
  }
  function pct(r) {
    if (r == null || !isFinite(Number(r))) return '–';
    return (Number(r) * 100).toLocaleString('id-ID', { maximumFractionDigits: 1 }) + '%';
  }
  function two(n) { return (n < 10 ? '0' : '') + n; }
  function clock(at, withSeconds) {
    var d = new Date(at);
    return two(d.getHours()) + '.' + two(d.getMinutes()) + (withSeconds ? '.' + two(d.getSeconds()) : '');
  }
  function sameDay(a, b) { return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate(); }
  function dateLabel(at) {
    var d = new Date(at);
    var now = new Date();
    if (sameDay(d, now)) return 'Hari ini';
    var y = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (sameDay(d, y)) return 'Kemarin';
    return d.toLocaleDateString('id-ID', { day: 'numeric', month: 'short', year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric' });
  }
  function when(at) {
    if (at == null || !isFinite(Number(at))) return '–';
    var d = new Date(Number(at));
    var now = new Date();
    if (sameDay(d, now)) return clock(at);
    return dateLabel(at) + ' ' + clock(at);
  }
  function ago(at) {
    if (at == null || !isFinite(Number(at))) return '–';
    var sec = Math.round((Date.now() - Number(at)) / 1000);
    if (sec < 45) return 'baru saja';
    if (sec < 3600) return Math.max(1, Math.round(sec / 60)) + ' mnt lalu';
    if (sec < 86400) return Math.round(sec / 3600) + ' jam lalu';
    return when(at);
  }
  function duration(seconds) {
    if (seconds == null || !isFinite(Number(seconds))) return '–';
    var t = Math.floor(Number(seconds));
    var d = Math.floor(t / 86400), hh = Math.floor((t % 86400) / 3600), mm = Math.floor((t % 3600) / 60);
    if (d > 0) return d + ' hari ' + hh + ' jam';
    if (hh > 0) return hh + ' jam ' + mm + ' mnt';
    if (mm > 0) return mm + ' mnt ' + (t % 60) + ' dtk';
    return t + ' dtk';
  }
  function yesNo(v, yes, no) {
    var span = h('span', v ? 'yes' : 'no', v ? (yes || 'ya') : (no || 'tidak'));
    return span;
  }
  function pill(kind, text) { return h('span', 'pill ' + kind, text); }
  // {at, message} | string | null -> {at, message} | null
  function incident(v) {
    if (v == null || v === false) return null;
    if (typeof v === 'string') return { at: null, message: v };
    if (typeof v === 'object') return { at: v.at == null ? null : v.at, message: v.message == null ? JSON.stringify(v) : String(v.message) };
    return { at: null, message: String(v) };
  }

  // ---------- API ----------

  function ApiError(status, body) {
    this.status = status;
    this.body = body;
    this.message = (body && body.error) ? String(body.error) : 'HTTP ' + status;
  }

  function api(path, opts) {
    opts = opts || {};
    var headers = { Accept: 'application/json' };
    if (opts.token || state.token) headers.Authorization = 'Bearer ' + (opts.token || state.token);
    var init = { method: opts.method || 'GET', headers: headers, cache: 'no-store' };
    if (opts.form !== undefined) {
      // a multipart form (FormData) goes as it is: the browser writes its Content-Type with the boundary
      init.body = opts.form;
    } else if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    // a hung request must not stop the auto-refresh for good
    if (window.AbortSignal && typeof AbortSignal.timeout === 'function') init.signal = AbortSignal.timeout(opts.timeoutMs || 20000);
    return fetch(path, init)
      .then(function (res) {
        return res.text().then(function (txt) {
          var body = null;
          try { body = txt ? JSON.parse(txt) : null; } catch (e) { body = null; }
          if (!res.ok) throw new ApiError(res.status, body);
          return body;
        });
      });
  }

  function showError(text) {
    el.globalError.hidden = false;
    el.globalError.textContent = text;
  }

  function handleAuthFailure(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 503)) {
      logout(err.status === 401 ? 'Token salah atau sudah diganti. Silakan masuk lagi.' : 'Halaman admin dimatikan');
      return true;
    }
    return false;
  }

  // ---------- login ----------

  function showLoginError(text) {
    el.loginError.textContent = text;
    el.loginError.hidden = !text;
    if (text) el.tokenInput.setAttribute('aria-invalid', 'true'); else el.tokenInput.removeAttribute('aria-invalid');
  }

  function tryLogin(token, fromStorage) {
    el.loginButton.disabled = true;
    el.loginButton.textContent = 'Memeriksa…';
    return api('/api/whatsapp/stats?days=14', { token: token })
      .then(function (stats) {
        state.token = token;
        try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* storage off: keep in memory */ }
        showLoginError('');
        showDashboard(stats);
      })
      .catch(function (err) {
        if (fromStorage) { try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ } }
        var msg;
        if (err instanceof ApiError && err.status === 401) msg = 'Token salah';
        else if (err instanceof ApiError && err.status === 503) msg = 'Halaman admin dimatikan';
        else if (err instanceof ApiError) msg = 'Server menjawab ' + err.status + ': ' + err.message;
        else msg = 'Tidak bisa menghubungi server. Coba lagi.';
        showLogin(msg);
      })
      .then(function () {
        el.loginButton.disabled = false;
        el.loginButton.textContent = 'Masuk';
      });
  }

  function showLogin(error) {
    stopTimer();
    el.dashboard.hidden = true;
    el.loginView.hidden = false;
    showLoginError(error || '');
    el.tokenInput.focus();
    if (error) el.tokenInput.select();
  }

  function logout(reason) {
    state.token = null;
    state.selectedId = null;
    state.selectedSig = null;
    state.autoSelected = false;
    state.transcriptData = null;
    disconnectInbox();
    state.inbox = { rows: {}, order: [], waiting: 0, paused: 0, offset: 0, loaded: false };
    el.convList.replaceChildren();
    el.inboxTabCount.hidden = true;
    el.inboxSummary.textContent = '';
    clearTimeout(state.windowTimer);
    resetComposer();
    el.composer.hidden = true;
    el.transcript.replaceChildren();
    el.transcriptHead.replaceChildren(h('span', 'muted', 'Pilih percakapan untuk melihat isinya.'));
    el.refreshReport.hidden = true;
    state.followed = {};
    state.retrying = {};
    clearTimeout(state.followTimer);
    el.outboxList.replaceChildren();
    el.outboxFollowed.replaceChildren();
    el.outboxFollowedBox.hidden = true;
    state.contacts = { offset: 0, total: 0, selected: null, seq: 0 };
    el.contactsBody.replaceChildren();
    el.contactsImport.hidden = true;
    el.contactDetail.hidden = true;
    templateLists = {};
    accountsShown = false;
    clearTimeout(camp.timer);
    camp.list = [];
    camp.report = null;
    el.campaignsList.replaceChildren();
    el.campaignReport.hidden = true;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
    el.tokenInput.value = '';
    showLogin(reason || '');
    document.title = 'Admin — wa-ai-bridge';
  }

  el.loginForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var token = el.tokenInput.value.trim();
    if (!token) { showLoginError('Isi token admin dulu.'); return; }
    tryLogin(token, false);
  });
  el.logout.addEventListener('click', function () { logout(''); });

  // ---------- dashboard lifecycle ----------

  function showDashboard(stats) {
    el.loginView.hidden = true;
    el.dashboard.hidden = false;
    state.tick = 0;
    renderStats(stats);
    connectInbox();
    refreshAll(true);
    loadContacts();
    startTimer();
  }

  function startTimer() {
    stopTimer();
    state.timer = setInterval(function () {
      if (document.hidden || !state.token) return;
      state.tick += 1;
      refreshAll(state.tick % SLOW_EVERY === 0);
    }, REFRESH_MS);
    updateRefreshState();
  }
  function stopTimer() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  document.addEventListener('visibilitychange', function () {
    updateRefreshState();
    if (!document.hidden && state.token && !el.dashboard.hidden) {
      refreshAll(true);
      // what arrived in the open conversation while the tab was away is read now
      var sel = state.inbox.rows[state.selectedId];
      if (sel && sel.unread > 0) loadTranscript(state.selectedId, false);
    }
  });

  var lastRefreshAt = null;
  var lastRefreshFailed = false;
  function updateRefreshState() {
    el.refreshState.className = 'refresh-state' + (document.hidden ? ' paused' : '') + (lastRefreshFailed ? ' failed' : '');
    if (lastRefreshFailed) el.refreshState.textContent = 'Gagal memperbarui, dicoba lagi…';
    else if (lastRefreshAt) el.refreshState.textContent = 'Diperbarui ' + clock(lastRefreshAt, true) + ' · otomatis tiap 10 dtk';
    else el.refreshState.textContent = '';
  }

  function refreshAll(includeSlow) {
    if (!state.token || state.loading) return Promise.resolve();
    state.loading = true;
    var jobs = [
      api('/api/whatsapp/status').then(renderStatus),
      // the stream keeps the inbox current; without it the list is read here
      state.streamUp || state.streamConnecting ? Promise.resolve(renderInbox()) : loadInbox(),
      // delivery ticks, drafts and minutes waiting in the open conversation
      state.selectedId != null ? loadTranscript(state.selectedId, false) : Promise.resolve(),
      loadOutbox(),
      api('/api/admin/errors?limit=50').then(renderErrors),
      api('/api/admin/unanswered?limit=50').then(renderUnanswered)
    ];
    if (includeSlow) {
      jobs.push(api('/api/admin/activity?hours=48').then(renderActivity));
      jobs.push(api('/api/whatsapp/stats?days=14').then(renderStats));
    }
    var failed = null;
    return Promise.all(jobs.map(function (j) { return j.catch(function (err) { failed = failed || err; }); }))
      .then(function () {
        state.loading = false;
        if (failed && handleAuthFailure(failed)) return;
        lastRefreshFailed = !!failed;
        if (!failed) lastRefreshAt = Date.now();
        el.globalError.hidden = !failed;
        if (failed) el.globalError.textContent = 'Sebagian data gagal dimuat: ' + (failed.message || String(failed));
        updateRefreshState();
      });
  }

  // ---------- status cards ----------

  function card(title, status, rows, extra) {
    var c = h('article', 'card status-card');
    var h3 = h('h3');
    h3.appendChild(h('span', null, title));
    if (status) h3.appendChild(status);
    c.appendChild(h3);
    var dl = h('dl', 'kv');
    rows.forEach(function (r) {
      if (!r) return;
      var sub = /^\s/.test(r[0]);
      dl.appendChild(h('dt', sub ? 'sub' : null, r[0].trim()));
      var dd = h('dd', r[2] || null);
      if (r[1] instanceof Node) dd.appendChild(r[1]); else dd.textContent = r[1] == null ? '–' : String(r[1]);
      dl.appendChild(dd);
    });
    c.appendChild(dl);
    (extra || []).forEach(function (x) { if (x) c.appendChild(x); });
    return c;
  }

  function incidentNote(label, inc) {
    if (!inc) return null;
    var p = h('p', 'note bad');
    p.appendChild(h('span', 'when', label + (inc.at ? ' · ' + when(inc.at) : '')));
    p.appendChild(document.createTextNode(inc.message));
    return p;
  }

  function renderStatus(st) {
    st = st || {};
    var webhook = st.webhook || {};
    var ai = st.ai || {};
    var db = st.database || {};
    var kb = st.knowledgeBase || {};
    var llm = st.llm || {};
    var wa = st.whatsapp || {};
    var buf = st.buffer || {};
    var sessions = st.sessions || {};

    el.serverMeta.textContent = 'versi ' + (st.version || '?') + ' · aktif ' + duration(st.uptimeSeconds);

    var cards = [];
    cards.push(card('Konfigurasi', st.isFullyConfigured ? pill('ok', 'Lengkap') : pill('warn', 'Belum lengkap'), [
      ['WhatsApp (' + (CONN_PROVIDER[wa.provider] || wa.provider || '?') + ')', yesNo(webhook.isConfigured, 'siap', 'belum')]
    ].concat((webhook.settings || []).map(function (setting) {
      return ['  ' + setting.name, yesNo(setting.set)];
    })).concat([
      ['AI', yesNo(ai.isConfigured, 'siap', 'belum')],
      ['  Kunci OpenRouter', yesNo(ai.openRouterApiKey)],
      ['  Database', yesNo(ai.databaseUrl)],
      ['  Basis pengetahuan', yesNo(ai.knowledgeBaseLoaded, 'dimuat', 'belum')]
    ])));

    cards.push(card('Database', db.healthy === true ? pill('ok', 'Sehat') : db.healthy === false ? pill('bad', 'Bermasalah') : pill('plain', 'tak diketahui'), [
      ['Jenis', db.backend || '–'],
      ['Sehat', db.healthy == null ? '–' : yesNo(db.healthy)],
      ['Sesi aktif', num(sessions.activeSessions)],
      ['Jeda diam', buf.quietSeconds != null ? num(buf.quietSeconds, 1) + ' dtk' : '–'],
      ['Tunggu maks.', buf.maxWaitSeconds != null ? num(buf.maxWaitSeconds, 1) + ' dtk' : '–']
    ]));

    var kbPill = kb.refreshing ? pill('warn', 'Memuat ulang…') : kb.loaded ? (kb.skippedFiles ? pill('warn', num(kb.skippedFiles) + ' dilewati') : pill('ok', 'Dimuat')) : pill('bad', 'Belum dimuat');
    cards.push(card('Basis pengetahuan', kbPill, [
      ['Dokumen', num(kb.documents)],
      ['Halaman', num(kb.pages)],
      ['Potongan', num(kb.chunks)],
      ['Dilewati', num(kb.skippedFiles)],
      ['Dibangun', kb.builtAt ? when(kb.builtAt) + ' (' + ago(kb.builtAt) + ')' : '–'],
      ['Sedang dimuat ulang', yesNo(!!kb.refreshing)]
    ]));

    var lastErr = incident(llm.lastError);
    var fb = Array.isArray(llm.fallbackModels) ? llm.fallbackModels : [];
    cards.push(card('LLM', !ai.openRouterApiKey ? pill('plain', 'Tanpa AI') : lastErr ? pill('warn', 'Ada kesalahan') : pill('ok', 'Siap'), [
      ['Model', llm.model || '–', 'wrap'],
      fb.length ? ['Cadangan', fb.join(', '), 'wrap'] : null,
      ['Kunci API', yesNo(ai.openRouterApiKey, 'ada', 'tidak ada')]
    ], [incidentNote('Kesalahan terakhir', lastErr)]));

    var sendErr = incident(wa.lastSendError);
    // The provider's own word on the link wins over "configured": a WAHA
    // session waiting for its QR scan is configured but not connected.
    var linkState = wa.connection && wa.connection.state !== 'connected' && CONN_LABEL[wa.connection.state];
    var waPill = !webhook.isConfigured ? pill('plain', 'Belum diatur')
      : linkState ? pill(linkState[0], linkState[1])
      : sendErr ? pill('warn', 'Ada kesalahan kirim') : pill('ok', 'Terhubung');
    cards.push(card('WhatsApp', waPill, [
      ['Dikonfigurasi', yesNo(webhook.isConfigured)],
      ['Webhook terakhir', wa.webhookLastSeen ? when(wa.webhookLastSeen) + ' (' + ago(wa.webhookLastSeen) + ')' : 'belum pernah']
    ], [incidentNote('Gagal kirim terakhir', sendErr)]));

    var numbers = Array.isArray(wa.accounts) ? wa.accounts : [];
    state.numbers = numbers.length;
    renderAccounts(numbers);
    if (numbers.length > 1) {
      var numbersCard = card('Nomor WhatsApp', pill('plain', num(numbers.length) + ' nomor'), numbers.map(function (a) {
        var link = a.connection && CONN_LABEL[a.connection.state];
        var said = !a.isConfigured ? 'belum diatur' : link ? link[1] : 'siap';
        return [a.name + ' · ' + (CONN_PROVIDER[a.provider] || a.provider), said, 'wrap'];
      }));
      numbersCard.setAttribute('data-testid', 'wa-numbers');
      cards.push(numbersCard);
    }

    cards.push(inboxCard(state.inbox.loaded ? state.inbox : st.inbox));
    cards.push(outboxCard(st.outbox));

    cards.push(card('Server', pill('ok', 'Berjalan'), [
      ['Versi', st.version || '–'],
      ['Aktif selama', duration(st.uptimeSeconds)],
      ['Timer jeda', num(buf.timersInThisProcess)]
    ]));

    el.cards.replaceChildren.apply(el.cards, cards);
    el.cards.removeAttribute('aria-busy');
    renderDocuments(kb);
    renderConnection(wa.connection);
  }

  // ---------- WhatsApp connection (provider session, QR code, controls) ----------

  var CONN_LABEL = {
    connected: ['ok', 'Terhubung'], scan_qr: ['warn', 'Menunggu pindai kode QR'], starting: ['warn', 'Sedang memulai'],
    stopped: ['bad', 'Berhenti'], failed: ['bad', 'Gagal'], disconnected: ['bad', 'Tidak terhubung'],
    unknown: ['plain', 'Tidak diketahui']
  };
  var CONN_PROVIDER = { waha: 'WAHA (WhatsApp Web)', cloud_api: 'WhatsApp Cloud API', fonnte: 'Fonnte' };
  var QUALITY_LABEL = { GREEN: 'Hijau (baik)', YELLOW: 'Kuning (waspada)', RED: 'Merah (berisiko dibatasi)', UNKNOWN: 'Belum dinilai' };
  var QR_EVERY_MS = 20000; // WhatsApp changes the code about every 20 s
  var conn = { qrUrl: null, qrAt: 0, qrBusy: false, busy: false };

  function renderConnection(c) {
    var box = $('wa-connection');
    if (!box) return;
    if (!c || !c.provider) { box.hidden = true; return; }
    var label = CONN_LABEL[c.state] || CONN_LABEL.unknown;
    var detail = c.detail || {};
    var waha = c.provider === 'waha';
    var fonnte = c.provider === 'fonnte';
    var scanning = waha && c.state === 'scan_qr';
    box.hidden = false;
    var h3 = h('h3');
    h3.appendChild(h('span', null, 'Koneksi WhatsApp'));
    var badge = pill(label[0], label[1]);
    badge.setAttribute('data-testid', 'wa-connection-state');
    h3.appendChild(badge);
    var dl = h('dl', 'kv');
    [['Penyedia', CONN_PROVIDER[c.provider] || c.provider],
      detail.session ? ['Sesi', detail.session] : null,
      detail.me ? ['Nomor', detail.me + (detail.pushName ? ' (' + detail.pushName + ')' : '')] : null,
      fonnte && (detail.name || detail.device) ? ['Perangkat', [detail.name, detail.device].filter(Boolean).join(' · ')] : null,
      fonnte && detail.package ? ['Paket', detail.package] : null,
      fonnte && detail.quota != null ? ['Sisa kuota', num(detail.quota) + ' pesan'] : null,
      fonnte && detail.expires ? ['Berlaku sampai', detail.expires] : null,
      detail.verifiedName ? ['Nama terverifikasi', detail.verifiedName] : null,
      detail.number ? ['Nomor', detail.number] : null,
      detail.qualityRating ? ['Kualitas', QUALITY_LABEL[detail.qualityRating] || detail.qualityRating] : null,
      detail.messagingLimitTier ? ['Batas pesan', detail.messagingLimitTier] : null,
      ['Dicek', c.checkedAt ? ago(c.checkedAt) : '–'],
      detail.error ? ['Kesalahan', detail.error] : null
    ].forEach(function (r) {
      if (!r) return;
      dl.appendChild(h('dt', null, r[0]));
      dl.appendChild(h('dd', null, r[1]));
    });
    var body = h('div', 'conn-body');
    body.appendChild(dl);
    if (scanning) {
      var qrBox = h('div');
      var img = h('img', 'conn-qr');
      img.alt = 'Kode QR untuk menautkan nomor WhatsApp';
      img.setAttribute('data-testid', 'wa-qr');
      if (conn.qrUrl) img.src = conn.qrUrl; else img.hidden = true;
      qrBox.appendChild(img);
      qrBox.appendChild(h('p', 'conn-help', 'Buka WhatsApp di ponsel bisnis › Perangkat tertaut › Tautkan perangkat, lalu pindai kode ini. Kode diperbarui tiap 20 detik.'));
      body.appendChild(qrBox);
      if (!conn.qrBusy && Date.now() - conn.qrAt >= QR_EVERY_MS) loadQr();
    } else if (conn.qrUrl) {
      URL.revokeObjectURL(conn.qrUrl);
      conn.qrUrl = null;
      conn.qrAt = 0;
    }
    var parts = [h3, body];
    if (waha) {
      var actions = h('div', 'conn-actions');
      [['start', 'Mulai'], ['stop', 'Hentikan'], ['restart', 'Mulai ulang']].forEach(function (a) {
        var b = h('button', 'btn', a[1]);
        b.type = 'button';
        b.disabled = conn.busy;
        b.setAttribute('data-testid', 'wa-session-' + a[0]);
        b.addEventListener('click', function () { controlSession(a[0]); });
        actions.appendChild(b);
      });
      parts.push(actions);
    }
    box.replaceChildren.apply(box, parts);

    function loadQr() {
      conn.qrBusy = true;
      fetch('/api/admin/whatsapp/qr', { headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' })
        .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.blob(); })
        .then(function (blob) {
          if (conn.qrUrl) URL.revokeObjectURL(conn.qrUrl);
          conn.qrUrl = URL.createObjectURL(blob);
          conn.qrAt = Date.now();
          var shown = box.querySelector('[data-testid="wa-qr"]');
          if (shown) { shown.src = conn.qrUrl; shown.hidden = false; }
        })
        .catch(function () { conn.qrAt = Date.now() - QR_EVERY_MS / 2; })
        .then(function () { conn.qrBusy = false; });
    }

    function controlSession(action) {
      if (action === 'stop' && !window.confirm('Hentikan sesi WhatsApp? Bot tidak bisa menerima atau mengirim pesan sampai sesi dimulai lagi.')) return;
      conn.busy = true;
      renderConnection(c);
      api('/api/admin/whatsapp/session/' + action, { method: 'POST' })
        .catch(function (err) { if (!handleAuthFailure(err)) showError('Sesi WhatsApp: ' + (err.message || err)); })
        .then(function () {
          conn.busy = false;
          conn.qrAt = 0;
          return api('/api/whatsapp/status').then(function (st) { renderConnection(st && st.whatsapp && st.whatsapp.connection); });
        })
        .catch(function () { conn.busy = false; });
    }
  }

  function inboxCard(counts) {
    var waiting = counts ? Number(counts.waiting) || 0 : 0;
    var paused = counts ? Number(counts.paused) || 0 : 0;
    var status = counts == null ? pill('plain', 'tak diketahui')
      : waiting ? pill('bad', num(waiting) + ' menunggu CS') : pill('ok', 'Tidak ada antrean');
    var box = card('Kotak masuk', status, [
      ['Menunggu CS', num(waiting), waiting ? 'alert' : null],
      ['Bot dijeda', num(paused)]
    ]);
    box.setAttribute('data-testid', 'inbox-card');
    return box;
  }

  // ---------- stats tiles ----------

  function renderStats(st) {
    st = st || {};
    var tiles = [
      ['Pesan', num(st.messages)],
      ['Pengguna aktif', num(st.activeUsers)],
      ['Giliran dijawab', num(st.turnsAnswered)],
      ['Rata-rata balasan', st.replySecondsAvg == null ? '–' : num(st.replySecondsAvg, 1), 'dtk'],
      ['P95 balasan', st.replySecondsP95 == null ? '–' : num(st.replySecondsP95, 1), 'dtk'],
      ['Jawaban cadangan LLM', num(st.llmFallbacks)],
      ['Token', num(st.tokens)],
      ['Terkirim', pct(st.deliveryRate)],
      ['Dibaca', pct(st.readRate)],
      ['Berkas pelanggan', num(mediaCount(st.media))],
      ['Suara ditranskripsi', num(st.media && st.media.transcribedSeconds ? st.media.transcribedSeconds / 60 : 0, 1), 'mnt']
    ];
    el.statsTiles.replaceChildren.apply(el.statsTiles, tiles.map(function (t) {
      var d = h('div', 'stat');
      var v = h('div', 'v', t[1]);
      if (t[2] && t[1] !== '–') v.appendChild(h('small', null, t[2]));
      d.appendChild(v);
      d.appendChild(h('div', 'k', t[0]));
      return d;
    }));
  }

  // Files customers sent in the period, whatever became of them.
  function mediaCount(media) {
    var total = 0;
    var files = (media && media.files) || {};
    Object.keys(files).forEach(function (kind) {
      Object.keys(files[kind] || {}).forEach(function (outcome) { total += Number(files[kind][outcome]) || 0; });
    });
    return total;
  }

  // ---------- charts (inline SVG, drawn here) ----------

  // top of the y axis: 4 grid steps of a round size (counts: 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k; seconds: 1, 2, 2.5, 5 × 10^k)
  function niceMax(v, integer) {
    if (!(v > 0)) return integer ? 4 : 1;
    var raw = v / 4;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = integer ? [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10] : [1, 2, 2.5, 5, 10];
    var step = p * 10;
    for (var i = 0; i < steps.length; i++) { if (steps[i] * p >= raw - 1e-9) { step = steps[i] * p; break; } }
    if (integer) step = Math.max(1, Math.ceil(step));
    return step * 4;
  }

  function chartFrame(hours, maxV, unit, integer) {
    var W = 600, H = 230, L = 38, R = 10, T = 24, B = 34;
    var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', preserveAspectRatio: 'xMidYMid meet' });
    var iw = W - L - R, ih = H - T - B;
    var top = niceMax(maxV, integer);
    for (var g = 0; g <= 4; g++) {
      var y = T + ih - (ih * g) / 4;
      svg.appendChild(s('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }));
      var val = (top * g) / 4;
      svg.appendChild(s('text', { x: L - 6, y: y + 3.5, 'text-anchor': 'end', class: 'axis' }, num(val, Math.abs(val % 1) > 1e-9 ? 1 : 0)));
    }
    var n = hours.length;
    var step = n ? iw / n : iw;
    hours.forEach(function (hr, i) {
      var d = new Date(hr.start);
      var x = L + i * step;
      if (d.getHours() === 0 && i > 0) svg.appendChild(s('line', { x1: x, x2: x, y1: T, y2: T + ih, class: 'day' }));
      if (d.getHours() % 6 === 0) {
        svg.appendChild(s('text', { x: x + step / 2, y: H - B + 15, 'text-anchor': 'middle', class: 'axis' }, two(d.getHours()) + '.00'));
        if (d.getHours() === 0) svg.appendChild(s('text', { x: x + step / 2, y: H - B + 28, 'text-anchor': 'middle', class: 'axis' }, dateLabel(hr.start)));
      }
    });
    if (unit) svg.appendChild(s('text', { x: L - 6, y: 10, 'text-anchor': 'end', class: 'axis' }, unit));
    return { svg: svg, L: L, T: T, iw: iw, ih: ih, step: step, top: top, W: W, H: H };
  }

  function hourTitle(hr) {
    var a = new Date(hr.start);
    return dateLabel(hr.start) + ' ' + two(a.getHours()) + '.00–' + two((a.getHours() + 1) % 24) + '.00';
  }

  function renderActivity(data) {
    var hours = (data && Array.isArray(data.hours) ? data.hours : []).filter(function (x) { return x && isFinite(Number(x.start)); });
    // messages per hour: bars
    var maxM = hours.reduce(function (m, x) { return Math.max(m, Number(x.messages) || 0); }, 0);
    var f = chartFrame(hours, maxM, 'pesan', true);
    var total = 0;
    hours.forEach(function (hr, i) {
      var v = Number(hr.messages) || 0;
      total += v;
      if (!v) return;
      var bh = (f.ih * v) / f.top;
      var bw = Math.max(1, f.step * 0.72);
      var rect = s('rect', { x: f.L + i * f.step + (f.step - bw) / 2, y: f.T + f.ih - bh, width: bw, height: bh, rx: Math.min(2, bw / 3), class: 'bar' });
      rect.appendChild(s('title', null, hourTitle(hr) + ': ' + num(v) + ' pesan, ' + num(hr.turns) + ' jawaban'));
      f.svg.appendChild(rect);
    });
    f.svg.setAttribute('aria-label', 'Pesan per jam selama 48 jam terakhir, total ' + num(total));
    if (!total) f.svg.appendChild(s('text', { x: f.L + f.iw / 2, y: f.T + f.ih / 2, 'text-anchor': 'middle', class: 'empty' }, 'Belum ada pesan dalam 48 jam terakhir'));
    el.chartMessages.replaceChildren(f.svg);

    // time to reply: line with points, gaps where no answer happened
    var maxR = hours.reduce(function (m, x) { return x.replySecondsAvg == null ? m : Math.max(m, Number(x.replySecondsAvg) || 0); }, 0);
    var g = chartFrame(hours, maxR, 'detik');
    var segs = [];
    var cur = [];
    var points = [];
    hours.forEach(function (hr, i) {
      if (hr.replySecondsAvg == null || !isFinite(Number(hr.replySecondsAvg))) {
        if (cur.length) segs.push(cur);
        cur = [];
        return;
      }
      var v = Number(hr.replySecondsAvg);
      var p = { x: g.L + i * g.step + g.step / 2, y: g.T + g.ih - (g.ih * v) / g.top, hr: hr, v: v };
      cur.push(p);
      points.push(p);
    });
    if (cur.length) segs.push(cur);
    segs.forEach(function (seg) {
      if (seg.length > 1) {
        var d = seg.map(function (p, k) { return (k ? 'L' : 'M') + p.x.toFixed(1) + ' ' + p.y.toFixed(1); }).join(' ');
        var base = (g.T + g.ih).toFixed(1);
        g.svg.appendChild(s('path', { d: d + ' L' + seg[seg.length - 1].x.toFixed(1) + ' ' + base + ' L' + seg[0].x.toFixed(1) + ' ' + base + ' Z', class: 'area' }));
        g.svg.appendChild(s('path', { d: d, class: 'line' }));
      }
    });
    points.forEach(function (p) {
      var c = s('circle', { cx: p.x.toFixed(1), cy: p.y.toFixed(1), r: 3.2, class: 'pt' });
      c.appendChild(s('title', null, hourTitle(p.hr) + ': rata-rata ' + num(p.v, 1) + ' dtk'));
      g.svg.appendChild(c);
    });
    g.svg.setAttribute('aria-label', 'Rata-rata waktu balas per jam selama 48 jam terakhir');
    if (!points.length) g.svg.appendChild(s('text', { x: g.L + g.iw / 2, y: g.T + g.ih / 2, 'text-anchor': 'middle', class: 'empty' }, 'Belum ada jawaban dalam 48 jam terakhir'));
    el.chartReply.replaceChildren(g.svg);
  }

  // ---------- outbox: messages that did not go out ----------

  var SEND_STATE = {
    failed_permanent: 'Gagal', dead: 'Mati', failed_retryable: 'Dicoba ulang',
    queued: 'Antre', sending: 'Mengirim', sent: 'Terkirim', cancelled: 'Dibatalkan'
  };
  // a message in these states will not change any more: no need to ask again
  var SETTLED = { sent: true, cancelled: true };
  var RETRYABLE_BY_HAND = { failed_permanent: true, dead: true };
  // Graph codes an operator meets most; the server's own text is shown beside them
  var GRAPH_HINT = {
    131047: 'di luar jendela 24 jam',
    131026: 'nomor tidak bisa menerima pesan',
    131056: 'terlalu banyak pesan ke nomor ini'
  };
  var FOLLOW_MS = 1000;

  function outboxCard(counts) {
    var c = counts || {};
    var n = function (k) { return Number(c[k]) || 0; };
    var stuck = n('failed_permanent') + n('dead');
    var status = counts == null ? pill('plain', 'tak diketahui')
      : stuck ? pill('bad', num(stuck) + ' tidak terkirim')
      : n('failed_retryable') ? pill('warn', 'Dicoba ulang') : pill('ok', 'Lancar');
    var box = card('Pengiriman', status, [
      ['Antre', num(n('queued'))],
      ['Mengirim', num(n('sending'))],
      ['Dicoba ulang', num(n('failed_retryable')), n('failed_retryable') ? 'warn' : null],
      ['Gagal', num(n('failed_permanent')), n('failed_permanent') ? 'alert' : null],
      ['Mati', num(n('dead')), n('dead') ? 'alert' : null]
    ]);
    box.setAttribute('data-testid', 'outbox-card');
    return box;
  }

  // The list, plus the messages an operator sent again and that left it since
  // (asked one by one, so the page can say "Terkirim" without a reload).
  function loadOutbox() {
    var seq = ++state.outboxSeq;
    return api('/api/admin/outbox?limit=50').then(function (data) {
      var list = data && Array.isArray(data.messages) ? data.messages : [];
      var listed = {};
      list.forEach(function (m) { listed[m.id] = true; });
      // a sent (or cancelled) message stays so: only the others are asked again
      var ids = Object.keys(state.followed).filter(function (id) { return !SETTLED[state.followed[id].state] && !listed[id]; });
      return Promise.all(ids.map(function (id) {
        return api('/api/admin/outbox/' + encodeURIComponent(id)).then(function (m) { return { id: id, m: m }; }, function (err) {
          if (err instanceof ApiError && err.status === 404) return { id: id, m: null };
          throw err;
        });
      })).then(function (found) {
        // an answer overtaken by a newer one must not undo what that one saw
        if (seq !== state.outboxSeq || !state.token) return;
        list.forEach(function (m) { delete state.followed[m.id]; });
        found.forEach(function (f) { if (f.m) state.followed[f.id] = f.m; else delete state.followed[f.id]; });
        renderOutbox(list);
        followWhilePending();
      });
    });
  }

  function followWhilePending() {
    clearTimeout(state.followTimer);
    var pending = Object.keys(state.followed).some(function (id) { return !SETTLED[state.followed[id].state]; });
    if (pending) {
      state.followTimer = setTimeout(function () {
        if (state.token) loadOutbox().catch(handleAuthFailure);
      }, FOLLOW_MS);
    }
  }

  function renderOutbox(list) {
    el.outboxList.replaceChildren.apply(el.outboxList, list.length ? list.map(outboxRow)
      : [h('li', 'empty-state', 'Tidak ada pesan yang gagal.')]);
    var followed = Object.keys(state.followed).map(function (id) { return state.followed[id]; })
      .sort(function (a, b) { return b.updatedAt - a.updatedAt; });
    el.outboxFollowed.replaceChildren.apply(el.outboxFollowed, followed.map(outboxRow));
    el.outboxFollowedBox.hidden = !followed.length;
  }

  function outboxRow(m) {
    var li = h('li', 'outbox-row');
    li.setAttribute('data-testid', 'outbox-row');
    li.setAttribute('data-id', String(m.id));
    li.setAttribute('data-state', String(m.state));
    var top = h('div', 'outbox-top');
    top.appendChild(h('span', 'conv-person', m.person || '–'));
    var channel = m.channel === 'whatsapp' ? 'whatsapp' : 'web';
    top.appendChild(h('span', 'tag ' + channel, CHANNEL_LABEL[channel]));
    var tag = h('span', 'tag state-' + m.state, SEND_STATE[m.state] || m.state);
    tag.setAttribute('data-testid', 'outbox-state');
    top.appendChild(tag);
    top.appendChild(h('span', 'conv-time', when(m.updatedAt)));
    li.appendChild(top);
    li.appendChild(h('p', 'outbox-text' + (m.text == null ? ' missing' : ''), m.text == null ? '(tidak disimpan)' : m.text));
    var facts = ['Percobaan: ' + num(m.attempts)];
    if (m.state === 'failed_retryable' && m.nextAttemptAt) facts.push('dicoba lagi ' + when(m.nextAttemptAt));
    li.appendChild(h('p', 'outbox-meta', facts.join(' · ')));
    if (m.state !== 'sent' && (m.errorCode != null || m.error)) {
      var err = h('p', 'outbox-error');
      err.setAttribute('data-testid', 'outbox-error');
      if (m.errorCode != null) {
        var hint = GRAPH_HINT[m.errorCode];
        err.appendChild(h('strong', null, 'Kode ' + m.errorCode + (hint ? ' (' + hint + ')' : '')));
        if (m.error) err.appendChild(document.createTextNode(': '));
      }
      if (m.error) err.appendChild(document.createTextNode(m.error));
      li.appendChild(err);
    }
    if (RETRYABLE_BY_HAND[m.state]) li.appendChild(retryButton(m));
    return li;
  }

  function retryButton(m) {
    var busy = !!state.retrying[m.id];
    var b = h('button', 'btn btn-primary btn-small', busy ? 'Mengirim ulang…' : 'Kirim ulang');
    b.type = 'button';
    b.disabled = busy;
    b.setAttribute('data-testid', 'outbox-retry');
    b.addEventListener('click', function () {
      // off at once: a double click sends one request (the server is idempotent as well)
      if (state.retrying[m.id]) return;
      state.retrying[m.id] = true;
      b.disabled = true;
      b.textContent = 'Mengirim ulang…';
      api('/api/admin/outbox/' + encodeURIComponent(m.id) + '/retry', { method: 'POST' })
        .then(function (answer) {
          delete state.retrying[m.id];
          state.followed[m.id] = Object.assign({}, m, { state: answer.state });
          // the next refresh says it if this one fails: the retry itself went through
          loadOutbox().catch(handleAuthFailure);
        }, function (err) {
          delete state.retrying[m.id];
          if (handleAuthFailure(err)) return;
          b.disabled = false;
          b.textContent = 'Kirim ulang';
          showError(err instanceof ApiError && err.status === 404
            ? 'Pesan itu sudah tidak ada.' : 'Gagal mengirim ulang: ' + (err.message || String(err)));
        });
    });
    return b;
  }

  // ---------- inbox: every conversation, live ----------
  // The list comes from GET /api/admin/inbox/events (Server-Sent Events, read with fetch() so the token goes in a
  // header): an "inbox" event holds the order of the listed conversations and the rows that changed. While the
  // stream is down, the 10 s refresh reads GET /api/admin/inbox instead.

  var STATE_LABEL = { idle: 'diam', buffered: 'menunggu', answering: 'menjawab' };
  var CHANNEL_LABEL = { web: 'Web', whatsapp: 'WhatsApp' };
  var LAST_FROM = { bot: 'Bot: ', agent: 'Agen: ', phone: 'HP: ', app: 'Aplikasi: ' };
  var STREAM_RETRY_MAX_MS = 30000;

  function serverNow() { return Date.now() + state.inbox.offset; }

  // "< 1 mnt", "5 mnt", "2 jam 10 mnt": how long someone has been waiting
  function waited(since) {
    var seconds = Math.max(0, (serverNow() - Number(since)) / 1000);
    return seconds < 60 ? '< 1 mnt' : duration(seconds).replace(/ \d+ dtk$/, '');
  }

  function who(by) {
    if (by === 'customer') return 'pelanggan';
    if (by === 'phone') return 'HP (WhatsApp Business)';
    if (by === 'expiry') return 'waktu jeda habis';
    return by || '–';
  }

  // data: a stream event {order, rows, waiting, paused, serverTime} or the list {conversations, ...}
  function applyInbox(data) {
    var inbox = state.inbox;
    var rows = Array.isArray(data.rows) ? data.rows : Array.isArray(data.conversations) ? data.conversations : [];
    var order = Array.isArray(data.order) ? data.order : rows.map(function (r) { return r.id; });
    rows.forEach(function (r) { inbox.rows[r.id] = r; });
    var kept = {};
    order.forEach(function (id) { if (inbox.rows[id]) kept[id] = inbox.rows[id]; });
    inbox.rows = kept;
    inbox.order = order.filter(function (id) { return kept[id]; });
    inbox.waiting = Number(data.waiting) || 0;
    inbox.paused = Number(data.paused) || 0;
    if (isFinite(Number(data.serverTime))) inbox.offset = Number(data.serverTime) - Date.now();
    inbox.loaded = true;
    renderInbox();
  }

  function loadInbox() {
    return api('/api/admin/inbox').then(applyInbox);
  }

  function inboxItem(c) {
    var li = h('li');
    var b = h('button', 'conv-item' + (c.group === 'waiting' ? ' waiting' : ''));
    b.type = 'button';
    b.setAttribute('data-testid', 'conversation-item');
    b.setAttribute('data-id', String(c.id));
    b.setAttribute('data-group', String(c.group));
    if (String(c.id) === String(state.selectedId)) b.setAttribute('aria-current', 'true');
    var channel = c.channel === 'whatsapp' ? 'whatsapp' : 'web';
    var av = h('span', 'conv-avatar ' + channel, channel === 'web' ? 'WEB' : 'WA');
    av.setAttribute('aria-hidden', 'true');
    b.appendChild(av);
    var main = h('span', 'conv-main');
    var top = h('span', 'conv-top');
    top.appendChild(h('span', 'conv-person', c.person || '–'));
    var number = accountTag(c);
    if (number) top.appendChild(number);
    top.appendChild(h('span', 'conv-time', ago(c.lastActivity)));
    main.appendChild(top);
    var last = c.lastMessage;
    var preview = h('span', 'conv-preview');
    if (last) {
      preview.textContent = (LAST_FROM[last.from] || '') + (last.text == null ? '(tanpa teks)' : last.text);
    } else {
      preview.textContent = 'Belum ada pesan';
    }
    main.appendChild(preview);
    var bottom = h('span', 'conv-bottom');
    bottom.appendChild(h('span', 'conv-name', c.name || CHANNEL_LABEL[channel]));
    var badges = h('span', 'conv-badges');
    if (c.group === 'waiting') {
      var wait = h('span', 'tag waiting', 'Menunggu CS · ' + waited(c.waitingSince));
      wait.setAttribute('data-testid', 'waiting-badge');
      badges.appendChild(wait);
    }
    if (c.mode === 'human' && c.group !== 'waiting') {
      var paused = h('span', 'tag paused', 'Bot dijeda');
      paused.setAttribute('data-testid', 'paused-badge');
      badges.appendChild(paused);
    }
    if (c.unread > 0) {
      var unread = h('span', 'unread', c.unread > 99 ? '99+' : String(c.unread));
      unread.setAttribute('data-testid', 'unread-count');
      unread.setAttribute('aria-label', c.unread + ' pesan belum dibaca');
      badges.appendChild(unread);
    }
    bottom.appendChild(badges);
    main.appendChild(bottom);
    b.appendChild(main);
    b.addEventListener('click', function () { selectConversation(c.id); });
    li.appendChild(b);
    return li;
  }

  function renderInbox() {
    var inbox = state.inbox;
    var waiting = inbox.waiting;
    var card = el.cards.querySelector('[data-testid="inbox-card"]');
    if (card && inbox.loaded) el.cards.replaceChild(inboxCard(inbox), card);
    el.inboxTabCount.textContent = waiting ? String(waiting) : '';
    el.inboxTabCount.hidden = !waiting;
    el.inboxSummary.textContent = inbox.loaded
      ? num(waiting) + ' menunggu CS · ' + num(inbox.paused) + ' bot dijeda'
      : '';
    document.title = (waiting ? '(' + waiting + ') ' : '') + 'Admin — wa-ai-bridge';
    var list = inbox.order.map(function (id) { return inbox.rows[id]; });
    if (!list.length) {
      el.convList.replaceChildren(h('li', 'empty-state', inbox.loaded ? 'Belum ada percakapan.' : 'Memuat…'));
      return;
    }
    el.convList.replaceChildren.apply(el.convList, list.map(inboxItem));
    if (state.selectedId == null && !state.autoSelected) {
      state.autoSelected = true; // open the first conversation once, so the transcript is not empty
      selectConversation(list[0].id);
      return;
    }
    var sel = inbox.rows[state.selectedId];
    if (sel && rowSig(sel) !== state.selectedSig) loadTranscript(state.selectedId, false);
  }

  // what makes an open transcript stale (not the unread count: reading it changes that)
  function rowSig(c) {
    var last = c.lastMessage || {};
    return [last.at, last.status, c.mode, c.group, c.pausedUntil, c.waitingSince].join('|');
  }

  function connectInbox() {
    disconnectInbox();
    if (!state.token) return;
    var ctrl = new AbortController();
    state.stream = ctrl;
    state.streamConnecting = true;
    var retry = function (err) {
      if (state.stream !== ctrl) return;
      state.streamUp = false;
      state.streamConnecting = false;
      if (err instanceof ApiError && handleAuthFailure(err)) return;
      state.streamTimer = setTimeout(function () { if (state.stream === ctrl) connectInbox(); }, state.streamDelay);
      state.streamDelay = Math.min(state.streamDelay * 2, STREAM_RETRY_MAX_MS);
      if (state.token) loadInbox().catch(handleAuthFailure);
    };
    fetch('/api/admin/inbox/events', {
      cache: 'no-store', signal: ctrl.signal,
      headers: { Accept: 'text/event-stream', Authorization: 'Bearer ' + state.token }
    }).then(function (res) {
      if (state.stream !== ctrl) return null;
      if (!res.ok || !res.body) throw new ApiError(res.status, null);
      state.streamUp = true;
      state.streamConnecting = false;
      state.streamDelay = 1000;
      return readEvents(res.body.getReader(), function (name, data) {
        if (state.stream === ctrl && name === 'inbox') applyInbox(data);
      });
    }).then(function () { throw new Error('stream ended'); }).catch(retry);
  }

  function disconnectInbox() {
    clearTimeout(state.streamTimer);
    var open = state.stream;
    state.stream = null;
    state.streamUp = false;
    state.streamConnecting = false;
    if (open) open.abort();
  }

  // Calls onEvent(name, parsed data) for each event block until the stream ends; comments (keep-alives) are skipped.
  function readEvents(reader, onEvent) {
    var decoder = new TextDecoder();
    var pending = '';
    function block(text) {
      var name = null;
      var lines = [];
      text.split('\n').forEach(function (line) {
        if (line.indexOf('event:') === 0) name = line.slice(6).trim();
        if (line.indexOf('data:') === 0) lines.push(line.slice(5).replace(/^ /, ''));
      });
      if (!name || !lines.length) return;
      var data = null;
      try { data = JSON.parse(lines.join('\n')); } catch (e) { return; }
      onEvent(name, data);
    }
    function next() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return null;
        pending += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, '\n');
        var parts = pending.split('\n\n');
        pending = parts.pop();
        parts.forEach(block);
        return next();
      });
    }
    return next();
  }

  function selectConversation(id) {
    if (String(state.selectedId) !== String(id)) resetComposer();
    state.selectedId = id;
    Array.prototype.forEach.call(el.convList.querySelectorAll('.conv-item'), function (b) {
      if (b.getAttribute('data-id') === String(id)) b.setAttribute('aria-current', 'true'); else b.removeAttribute('aria-current');
    });
    loadTranscript(id, true);
  }

  var KIND_LABEL = {
    llm: 'AI', offline: 'dari dokumen', fallback: 'jawaban cadangan', unreadable: 'tak terbaca', handoff: 'pesan serah ke CS', text: null,
    audio: 'pesan suara', image: 'gambar', document: 'dokumen', video: 'video', location: 'lokasi', contacts: 'kontak'
  };
  var MEDIA_OUTCOME = {
    too_large: 'terlalu besar', refused_type: 'jenis tidak diizinkan', not_found: 'tidak ditemukan di WhatsApp',
    timed_out: 'unduhan terlalu lama', transcription_failed: 'gagal ditranskripsi', unreadable: 'tidak terbaca',
    over_turn_limit: 'tidak dibaca (terlalu banyak berkas)', not_configured: 'tidak diunduh (tanpa token)'
  };
  // Object URLs of files already fetched, by message id: a transcript redrawn every few seconds does not fetch them again.
  var mediaUrls = {};
  var STATUS_LABEL = {
    sent: '✓ terkirim', delivered: '✓✓ diterima', read: '✓✓ dibaca', failed: '✗ gagal',
    queued: '⏱ antre', sending: '⏱ mengirim', failed_retryable: '⏱ dicoba ulang', failed_permanent: '✗ gagal',
    dead: '✗ mati', cancelled: '⊘ dibatalkan (diambil alih petugas)'
  };
  var STATUS_CLASS = { failed: 'failed', failed_permanent: 'failed', dead: 'failed', read: 'read' };

  function loadTranscript(id, scrollDown) {
    if (scrollDown) {
      el.transcript.replaceChildren(h('p', 'empty-state', 'Memuat…'));
    }
    var row = state.inbox.rows[id];
    var sig = row ? rowSig(row) : null;
    return api('/api/admin/conversations/' + encodeURIComponent(id)).then(function (t) {
      if (String(state.selectedId) !== String(id)) return;
      state.selectedSig = sig;
      var unchanged = !scrollDown && JSON.stringify(t) === JSON.stringify(state.transcriptData);
      state.transcriptData = t;
      // an unchanged transcript is left alone, so a text the agent is selecting stays selected
      if (unchanged) {
        renderHead(t);
        updateComposer();
      } else {
        renderTranscript(t, scrollDown);
      }
      markRead(id, t);
    }).catch(function (err) {
      if (handleAuthFailure(err)) return;
      if (String(state.selectedId) !== String(id)) return;
      el.transcript.replaceChildren(h('p', 'empty-state', err instanceof ApiError && err.status === 404 ? 'Percakapan tidak ditemukan.' : 'Gagal memuat percakapan: ' + (err.message || err)));
    });
  }

  // An open conversation on a visible page has been seen, up to the newest customer message it shows.
  function markRead(id, t) {
    var row = state.inbox.rows[id];
    if (document.hidden || (row && !(row.unread > 0))) return;
    var upTo = null;
    (t.messages || []).forEach(function (m) { if (m.from === 'customer' && m.at != null) upTo = Math.max(upTo || 0, Number(m.at)); });
    if (upTo == null) return;
    api('/api/admin/conversations/' + encodeURIComponent(id) + '/read', { method: 'POST', body: { upTo: upTo } })
      .catch(handleAuthFailure);
  }

  // "Title › 2. Jam › 2.1" under the citation "Title, hlm. 3" -> "2. Jam › 2.1"
  function shortHeading(citation, heading) {
    var title = citation.replace(/,\s*(hlm|hal|p|page)\.?\s*[\d\u2013-]+$/i, '').trim();
    if (title && heading.indexOf(title) === 0) {
      var rest = heading.slice(title.length).replace(/^\s*›\s*/, '').trim();
      return rest;
    }
    return heading;
  }

  // One line for a pause, in the header and in the transcript: why, by whom, until when.
  function pauseLine(reason, by, until) {
    var why = reason === 'customer_asked' ? 'Pelanggan minta dilayani CS; bot dijeda'
      : reason === 'agent_reply' ? 'Bot dijeda: ' + who(by) + ' membalas'
      : reason === 'phone_reply' ? 'Bot dijeda: dibalas dari HP (WhatsApp Business)'
      : 'Bot dijeda oleh ' + who(by);
    return why + (until ? ' sampai ' + when(until) : ' sampai dilanjutkan');
  }

  function pauseText(t) {
    return pauseLine(t.pauseReason, t.pausedBy, t.pausedUntil);
  }

  // The conversation's state as the live list last said it (the transcript may be older).
  // Which of the business's numbers a conversation came to, once there
  // is more than one.
  function accountTag(c) {
    if (!(state.numbers > 1) || c.channel !== 'whatsapp' || !c.account) return null;
    var tag = h('span', 'tag account', 'ke ' + c.account);
    tag.setAttribute('data-testid', 'conv-account');
    return tag;
  }

  function stateOf(t) {
    return state.inbox.rows[t.id] || t;
  }

  function renderHead(t) {
    var c = stateOf(t);
    var head = [];
    var channel = t.channel === 'whatsapp' ? 'whatsapp' : 'web';
    var id = h('div', 'head-who');
    id.appendChild(h('span', 'who', t.person || '–'));
    if (t.name) id.appendChild(h('span', 'muted', t.name));
    id.appendChild(h('span', 'tag ' + channel, CHANNEL_LABEL[channel]));
    var number = accountTag(t);
    if (number) id.appendChild(number);
    if (t.state && t.state !== 'idle') id.appendChild(h('span', 'tag ' + t.state, STATE_LABEL[t.state] || t.state));
    head.push(id);
    var mode = h('div', 'head-mode');
    var label;
    if (c.waitingSince != null) {
      label = h('span', 'pill bad', 'Menunggu CS sejak ' + when(c.waitingSince) + ' (' + waited(c.waitingSince) + ')');
    } else if (c.mode === 'human') {
      label = h('span', 'pill warn', pauseText(c));
    } else {
      label = h('span', 'pill ok', 'Bot aktif');
    }
    label.setAttribute('data-testid', 'mode-state');
    mode.appendChild(label);
    if (c.waitingSince != null && c.mode === 'human') mode.appendChild(h('span', 'muted', pauseText(c)));
    mode.appendChild(modeButton(t.id, c.mode === 'human'));
    head.push(mode);
    el.transcriptHead.replaceChildren.apply(el.transcriptHead, head);
  }

  function modeButton(id, paused) {
    var b = h('button', 'btn btn-small ' + (paused ? 'btn-primary' : 'btn-outline'), paused ? 'Lanjutkan bot' : 'Jeda bot');
    b.type = 'button';
    b.setAttribute('data-testid', paused ? 'resume-button' : 'pause-button');
    b.title = paused ? 'Bot menjawab lagi pesan berikutnya dari pelanggan' : 'Bot diam; Anda yang membalas';
    b.disabled = !!state.modeBusy;
    b.addEventListener('click', function () {
      if (state.modeBusy) return;
      state.modeBusy = true;
      b.disabled = true;
      api('/api/admin/conversations/' + encodeURIComponent(id) + (paused ? '/resume' : '/pause'), { method: 'POST' })
        .then(function () {
          state.modeBusy = false;
          if (String(state.selectedId) === String(id)) loadTranscript(id, false);
        }, function (err) {
          state.modeBusy = false;
          b.disabled = false;
          if (handleAuthFailure(err)) return;
          showError((paused ? 'Gagal melanjutkan bot: ' : 'Gagal menjeda bot: ') + (err.message || String(err)));
        });
    });
    return b;
  }

  function eventText(e) {
    if (e.action === 'resume') return 'Bot dilanjutkan' + (e.by === 'expiry' ? ': waktu jeda habis' : ' oleh ' + who(e.by));
    return pauseLine(e.reason, e.by, e.until);
  }

  function bubble(m) {
    var from = m.type === 'draft' ? 'draft' : ({ customer: 'customer', agent: 'agent', phone: 'phone', app: 'app' }[m.from] || 'bot');
    var row = h('div', 't-row ' + from);
    if (from === 'draft') row.classList.add('bot');
    var b = h('div', 't-bubble');
    if (from !== 'customer') {
      var author = from === 'draft' ? 'Draf bot · tidak dikirim'
        : from === 'agent' ? (m.author || 'Agen')
        : from === 'phone' ? 'Dari HP (WhatsApp Business)'
        : from === 'app' ? 'Aplikasi · ' + (m.author || '?') : 'Bot';
      b.appendChild(h('span', 't-author', author));
    }
    if (m.media) b.appendChild(mediaBlock(m));
    if (m.text == null) { if (!m.media) b.appendChild(h('span', 't-text missing', '(tidak disimpan)')); }
    else b.appendChild(h('span', 't-text', m.text));
    var meta = h('div', 't-meta');
    if (m.kind && KIND_LABEL[m.kind] !== null) meta.appendChild(h('span', 'tag', KIND_LABEL[m.kind] || m.kind));
    if (m.status && from !== 'draft') {
      var st = h('span', 'tag ' + (STATUS_CLASS[m.status] || ''), STATUS_LABEL[m.status] || m.status);
      st.setAttribute('data-testid', 'message-status');
      meta.appendChild(st);
    }
    meta.appendChild(h('span', null, m.at ? clock(m.at) : ''));
    b.appendChild(meta);
    if (STATUS_CLASS[m.status] === 'failed' && (m.errorCode != null || m.error)) {
      var hint = m.errorCode != null ? GRAPH_HINT[m.errorCode] : null;
      var err = h('p', 't-error', (m.errorCode != null ? 'Kode ' + m.errorCode + (hint ? ' (' + hint + ')' : '') : '') +
        (m.errorCode != null && m.error ? ': ' : '') + (m.error || ''));
      err.setAttribute('data-testid', 'message-error');
      b.appendChild(err);
    }
    if (Array.isArray(m.sources) && m.sources.length) {
      var src = h('div', 't-sources');
      src.appendChild(h('strong', null, 'Sumber:'));
      var ul = h('ul');
      m.sources.forEach(function (x) {
        var cit = x && x.citation ? String(x.citation) : 'Dokumen';
        var heading = x && x.heading ? shortHeading(cit, String(x.heading)) : '';
        ul.appendChild(h('li', null, cit + (heading ? ' — ' + heading : '')));
      });
      src.appendChild(ul);
      b.appendChild(src);
    }
    row.appendChild(b);
    return row;
  }

  // The customer's file, fetched with the admin token (a plain <img src> could not carry it) and shown as a player,
  // a thumbnail or a download; what was read from it (a transcript, a document's text) beneath.
  function mediaBlock(m) {
    var media = m.media;
    var box = h('div', 't-media');
    box.setAttribute('data-testid', 'message-media');
    var mime = String(media.mime || '');
    var failed = MEDIA_OUTCOME[media.outcome];
    if (failed) box.appendChild(h('span', 'tag failed', failed));
    if (media.url) {
      var slot = h('div', 't-media-file');
      box.appendChild(slot);
      var show = function (url) {
        var shown;
        if (mime.indexOf('image/') === 0) { shown = h('img', 't-thumb'); shown.alt = 'gambar dari pelanggan'; }
        else if (mime.indexOf('audio/') === 0) { shown = h('audio'); shown.controls = true; }
        else if (mime.indexOf('video/') === 0) { shown = h('video', 't-thumb'); shown.controls = true; }
        else { shown = h('a', null, 'Unduh ' + (media.fileName || 'berkas')); shown.download = media.fileName || 'berkas'; }
        if (shown.tagName === 'A') shown.href = url; else shown.src = url;
        slot.appendChild(shown);
      };
      if (mediaUrls[m.id]) show(mediaUrls[m.id]);
      else {
        fetch(media.url, { headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' })
          .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.blob(); })
          .then(function (blob) { mediaUrls[m.id] = URL.createObjectURL(blob); show(mediaUrls[m.id]); })
          .catch(function () { slot.appendChild(h('span', 't-text missing', '(berkas tidak tersedia)')); });
      }
    } else if (!failed && media.outcome) {
      box.appendChild(h('span', 't-text missing', '(berkas sudah dihapus)'));
    }
    if (media.text) {
      var details = h('details', 't-media-text');
      details.appendChild(h('summary', null, mime.indexOf('audio/') === 0 ? 'Transkrip' : 'Isi dokumen'));
      details.appendChild(h('p', null, media.text));
      if (mime.indexOf('audio/') === 0) details.open = true;
      box.appendChild(details);
    }
    return box;
  }

  function renderTranscript(t, scrollDown) {
    t = t || {};
    renderHead(t);
    // in conversation order: messages, the bot's drafts and every pause and resume
    var items = Array.isArray(t.messages) ? t.messages : [];

    var nearBottom = el.transcript.scrollHeight - el.transcript.scrollTop - el.transcript.clientHeight < 80;
    var rows = [];
    var lastDay = null;
    items.forEach(function (m) {
      var day = m.at ? new Date(m.at).toDateString() : null;
      if (day && day !== lastDay) { rows.push(h('div', 't-day', dateLabel(m.at))); lastDay = day; }
      if (m.type === 'handoff') {
        var ev = h('div', 't-event', eventText(m) + ' · ' + clock(m.at));
        ev.setAttribute('data-testid', 'handoff-event');
        rows.push(ev);
      } else {
        rows.push(bubble(m));
      }
    });
    if (!rows.length) rows.push(h('p', 'empty-state', 'Belum ada pesan.'));
    el.transcript.replaceChildren.apply(el.transcript, rows);
    if (scrollDown || nearBottom) el.transcript.scrollTop = el.transcript.scrollHeight;
    updateComposer();
  }

  // ---------- reply box ----------

  function randomKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (x) { return (x < 16 ? '0' : '') + x.toString(16); }).join('');
  }

  // A key per typed message: the same text sent again (a retry after a failure) keeps it, so it goes out once.
  function idempotencyKey(id, text) {
    var r = state.reply;
    if (r.key && String(r.id) === String(id) && r.text === text) return r.key;
    var key = randomKey();
    state.reply = { id: id, text: text, key: key };
    return key;
  }

  // ---------- message templates (shared by Kirim pesan, Template and Kampanye) ----------

  var MEDIA_HEADER = { image: 'gambar', video: 'video', document: 'dokumen' };
  var templateLists = {}; // account ('' = the default number) -> promise of GET /api/templates

  function templatesOf(account, fresh) {
    if (fresh || !templateLists[account]) {
      var asked = api('/api/templates' + (account ? '?account=' + encodeURIComponent(account) : ''));
      templateLists[account] = asked;
      // a failed read is asked again next time rather than remembered
      asked.catch(function () { if (templateLists[account] === asked) delete templateLists[account]; });
    }
    return templateLists[account];
  }

  function templateId(t) { return t.name + '|' + t.language; }

  // Everything a send of `t` is given, in the order the customer reads it (as src/templates/fill.rs asks for it).
  function slotsOf(t) {
    var slots = [];
    var header = t.header;
    if (header && header.type === 'text') {
      (header.parameters || []).forEach(function (p) { slots.push({ part: 'header', key: p, label: 'Judul {{' + p + '}}' }); });
    } else if (header && MEDIA_HEADER[header.type]) {
      slots.push({ part: 'media', key: 'url', label: 'Alamat berkas ' + MEDIA_HEADER[header.type] + ' (https://…)' });
      if (header.type === 'document') slots.push({ part: 'media', key: 'filename', label: 'Nama berkas (boleh kosong)', optional: true });
    }
    (t.body && t.body.parameters || []).forEach(function (p) { slots.push({ part: 'body', key: p, label: 'Isi {{' + p + '}}' }); });
    (t.buttons || []).forEach(function (b, i) {
      if (b.type === 'url' && /\{\{/.test(b.target || '')) slots.push({ part: 'button', key: i, label: 'Tombol “' + b.text + '”: akhir alamat' });
      else if (b.type === 'copy_code') slots.push({ part: 'button', key: i, label: 'Tombol “' + b.text + '”: kode' });
    });
    return slots;
  }
  function slotId(slot) { return slot.part + ':' + slot.key; }

  // The values in the send API's shape ({header, body, buttons, media}); valueOf(slot) gives each one's text.
  function templateValues(t, valueOf) {
    var out = {};
    slotsOf(t).forEach(function (slot) {
      var v = String(valueOf(slot) || '').trim();
      if (slot.part === 'button') {
        out.buttons = out.buttons || (t.buttons || []).map(function () { return null; });
        out.buttons[slot.key] = v;
      } else if (slot.part === 'media') {
        if (v || !slot.optional) { out.media = out.media || {}; out.media[slot.key] = v; }
      } else {
        out[slot.part] = out[slot.part] || {};
        out[slot.part][slot.key] = v;
      }
    });
    return out;
  }

  // `text` with each {{placeholder}} that has a value replaced; the others stay visible, so a gap shows.
  function substitute(text, valueOf) {
    return String(text || '').replace(/\{\{([^}]*)\}\}/g, function (all, name) { return valueOf(name.trim()) || all; });
  }

  // The message as the customer's WhatsApp shows it: header, body, footer, then the buttons under the bubble.
  function templatePreview(t, valueOf) {
    var of = function (part) { return function (key) { return String(valueOf({ part: part, key: key }) || '').trim(); }; };
    var box = h('div', 'tpl-preview');
    var header = t.header;
    if (header && header.type === 'text') box.appendChild(h('div', 'tpl-header', substitute(header.text, of('header'))));
    else if (header && MEDIA_HEADER[header.type]) {
      var file = of('media')('filename') || of('media')('url');
      box.appendChild(h('div', 'tpl-media', MEDIA_HEADER[header.type] + (file ? ': ' + file : '')));
    }
    box.appendChild(window.WaFormat.render(substitute(t.body && t.body.text, of('body'))));
    if (t.footer) box.appendChild(h('div', 'tpl-footer', t.footer));
    if (t.buttons && t.buttons.length) {
      var list = h('ul', 'tpl-buttons');
      t.buttons.forEach(function (b, i) {
        var li = h('li', null, b.text);
        var value = of('button')(i);
        var target = b.type === 'copy_code' ? value : b.target ? substitute(b.target, function () { return value; }) : '';
        if (target) li.appendChild(h('span', 'tpl-target', target));
        list.appendChild(li);
      });
      box.appendChild(list);
    }
    return box;
  }

  // Inputs for the values of `t` in `box`; returns the valueOf templateValues and templatePreview read.
  function valueFields(box, t, prefix, onInput) {
    var inputs = {};
    box.replaceChildren.apply(box, [].concat.apply([], slotsOf(t).map(function (slot, i) {
      var input = h('input');
      input.id = prefix + '-value-' + i;
      input.autocomplete = 'off';
      input.setAttribute('data-testid', prefix + '-value');
      input.setAttribute('data-slot', slotId(slot));
      input.addEventListener('input', onInput);
      inputs[slotId(slot)] = input;
      var label = h('label', null, slot.label);
      label.htmlFor = input.id;
      return [label, input];
    })));
    return function (slot) { var input = inputs[slotId(slot)]; return input ? input.value : ''; };
  }

  // Fills `select` with the approved templates of the number `account` shows, keeping the one chosen if it is
  // still there; then `use(approved, changed)` unless another number was picked meanwhile.
  function offerTemplates(account, select, use) {
    var name = account.value;
    return templatesOf(name).then(function (list) {
      if (account.value !== name) return;
      var approved = (list && list.templates || []).filter(function (t) { return t.status === 'APPROVED'; });
      var chosen = select.value;
      var first = h('option', null, approved.length ? 'Pilih template…' : 'Belum ada template yang disetujui');
      first.value = '';
      select.replaceChildren.apply(select, [first].concat(approved.map(function (t) {
        var o = h('option', null, t.name + ' · ' + t.language + ' · ' + t.category);
        o.value = templateId(t);
        return o;
      })));
      if (approved.some(function (t) { return templateId(t) === chosen; })) select.value = chosen;
      use(approved, select.value !== chosen);
    }, function (err) {
      if (!handleAuthFailure(err)) showError('Daftar template gagal dimuat: ' + (err.message || err));
    });
  }

  function button(cls, text, testid, onClick) {
    var b = h('button', 'btn ' + cls, text);
    b.type = 'button';
    b.setAttribute('data-testid', testid);
    b.addEventListener('click', onClick);
    return b;
  }

  var REFUSAL = {
    outside_window: 'Pelanggan ini tidak menulis dalam 24 jam terakhir, jadi pesan bebas tidak bisa dikirim. Kirim template yang disetujui.',
    template_not_approved: 'Template ini belum disetujui Meta (atau dijeda/ditolak); pilih template yang disetujui.',
    opted_out: 'Pelanggan ini menolak promosi (membalas STOP); template marketing tidak dikirim kepadanya.',
    invalid_parameters: 'Ada yang belum benar; tidak ada yang dikirim atau disimpan:',
    unknown_template: 'Template ini tidak ada (lagi) di nomor ini; perbarui daftar template.',
    too_large: 'Berkas terlalu besar untuk dikirim; tidak ada yang dikirim.'
  };

  // A refusal in `box`: what it means, the server's own words under it, or instead a 400's list of problems
  // (its message repeats them all; the list scrolls, a CSV can give many). `line` rewrites each problem for the
  // form it came from.
  function showRefusal(box, err, line) {
    var body = err && err.body;
    var listed = body && Array.isArray(body.problems) && body.problems.length;
    var said = listed ? null : (err && err.message) || String(err);
    var meaning = err && err.status === 403 ? 'Hanya token admin yang bisa melakukan ini dari halaman ini.' : REFUSAL[body && body.code];
    var parts = [h('p', null, meaning || said || 'Ada yang belum benar:')];
    if (meaning && said) parts.push(h('p', 'refusal-detail', said));
    if (listed) {
      var list = h('ul', 'problem-list');
      list.setAttribute('data-testid', 'problem-list');
      list.tabIndex = 0; // scrollable by keyboard
      body.problems.forEach(function (p) { list.appendChild(h('li', null, line ? line(p) : p)); });
      parts.push(list);
    }
    box.replaceChildren.apply(box, parts);
    box.hidden = false;
  }

  // Every account <select> of the page, with the box shown only when there is a choice.
  function fillAccounts(select, box, accounts) {
    var names = accounts.map(function (a) { return a.name; });
    box.hidden = names.length < 2;
    var current = Array.prototype.map.call(select.options, function (o) { return o.value; });
    if (current.join() === names.join()) return false;
    select.replaceChildren.apply(select, accounts.map(function (a) {
      var o = h('option', null, a.name + ' · ' + (CONN_PROVIDER[a.provider] || a.provider));
      o.value = a.name;
      return o;
    }));
    return true;
  }

  var accountsShown = false;
  function renderAccounts(accounts) {
    var changed = [
      fillAccounts(el.sendAccount, el.sendAccountBox, accounts),
      fillAccounts(el.templatesAccount, el.templatesAccountBox, accounts),
      fillAccounts(el.cfAccount, el.cfAccountBox, accounts)
    ].some(Boolean);
    if (changed || !accountsShown) {
      accountsShown = true;
      loadTemplatesView(false);
      loadSendTemplates();
      loadCampaignTemplates();
    }
  }

  // ---------- send a message (the send API, with the admin token) ----------

  var WA_PART_CHARS = 4096;
  var WA_CAPTION_CHARS = 1024; // WhatsApp's limit on a file's caption; the server refuses a longer one
  var MB = 1024 * 1024;
  // The server's limits (it checks again, by the bytes); checked here so a file that cannot go is never uploaded.
  var FILE_LIMIT = { image: 5 * MB, document: 16 * MB, video: 16 * MB, audio: 16 * MB };
  var FILE_KIND = { image: 'gambar', document: 'dokumen', video: 'video', audio: 'audio' };
  var FILE_BADGE = { image: 'IMG', document: 'DOC', video: 'VID', audio: 'AUD' };
  var FILE_HINT = el.sendFileHint.textContent; // what the page says while no file is chosen
  // file: the attached file { file, kind, url (an image's blob: address), view (its preview) } or null
  var send = { key: null, draft: null, busy: false, follow: null, templates: [], valueOf: null, file: null };

  // The number as the server will read it (it decides; this only shows the admin what it will be).
  function writtenNumber(raw) {
    var v = String(raw || '').trim().replace(/@c\.us$/, '');
    if (!v) return { error: '' };
    var plus = v.charAt(0) === '+';
    var rest = plus ? v.slice(1) : v;
    if (!/^[0-9 .()-]+$/.test(rest)) return { error: 'Hanya angka, spasi, tanda hubung, titik dan kurung.' };
    var d = rest.replace(/\D/g, '');
    if (!plus) {
      if (d.indexOf('08') === 0) d = '62' + d.slice(1);
      else if (d.charAt(0) === '8') d = '62' + d;
      else if (d.indexOf('62') !== 0) return { error: 'Nomor Indonesia diawali 08, 8, +62 atau 62 (negara lain: + dan kodenya).' };
    }
    if (d.length < 8 || d.length > 15) return { error: 'Nomor WhatsApp 8–15 angka termasuk kode negara.' };
    return { number: d };
  }

  function sendMode() { return el.sendForm.querySelector('input[name="send-mode"]:checked').value; }

  // ----- an attached file (sent as a multipart form; the text becomes its caption) -----

  // What WhatsApp shows the file as: the send API's `type`. By the browser's type, or by the name's ending when
  // the browser could not tell; the server checks the bytes, so a wrong guess is refused there, not sent.
  function fileKind(file) {
    var type = String(file.type || '').toLowerCase();
    if (!type) {
      var ext = ((/\.([a-z0-9]+)$/i.exec(file.name || '') || [])[1] || '').toLowerCase();
      if (/^(jpe?g|png)$/.test(ext)) return 'image';
      if (/^(mp4|3gp)$/.test(ext)) return 'video';
      if (/^(aac|amr|mp3|m4a|ogg|opus)$/.test(ext)) return 'audio';
      return 'document';
    }
    if (type === 'image/jpeg' || type === 'image/png') return 'image';
    if (type.indexOf('video/') === 0) return 'video';
    if (type.indexOf('audio/') === 0) return 'audio';
    return 'document';
  }

  function fileSize(bytes) {
    if (bytes < 1024) return num(bytes) + ' B';
    if (bytes < MB) return num(bytes / 1024, bytes < 10 * 1024 ? 1 : 0) + ' KB';
    return num(bytes / MB, 1) + ' MB';
  }

  // Characters as the server counts them (code points, not UTF-16 halves).
  function chars(text) { return Array.from(text).length; }

  // The caption that goes with the file: audio takes none (WhatsApp shows no text on it).
  function fileCaption(f, text) { return f.kind === 'audio' ? '' : String(text || '').trim(); }

  // Why the attached file cannot go as it is, before anything is uploaded; null when it can.
  function fileProblem(f, text) {
    if (!f) return null;
    var limit = FILE_LIMIT[f.kind];
    if (f.file.size > limit) {
      return 'Berkas terlalu besar (' + fileSize(f.file.size) + '): ' + FILE_KIND[f.kind] + ' paling besar ' + fileSize(limit) +
        '. Kecilkan atau pilih berkas lain; tidak ada yang dikirim.';
    }
    if (!f.file.size) return 'Berkas ini kosong; pilih berkas lain.';
    var n = chars(fileCaption(f, text));
    if (n > WA_CAPTION_CHARS) {
      return 'Keterangan terlalu panjang: ' + num(n) + ' karakter, paling banyak ' + num(WA_CAPTION_CHARS) + '. Pendekkan dulu sebelum mengirim.';
    }
    return null;
  }

  function chooseSendFile(file) {
    dropSendFile();
    if (file) {
      var kind = fileKind(file);
      send.file = { file: file, kind: kind, url: kind === 'image' ? URL.createObjectURL(file) : null, view: null };
    }
    el.sendError.hidden = true;
    renderSendDraft();
  }

  function dropSendFile() {
    if (send.file && send.file.url) URL.revokeObjectURL(send.file.url);
    send.file = null;
    el.sendFile.value = ''; // so choosing the same file again is a change
  }

  // The file as the customer will see it above the caption: a photo as itself, anything else as its name.
  // Built once per file, so typing the caption does not reload the picture.
  function filePreview(f) {
    if (f.view) return f.view;
    var line = h('div', 'send-preview-file');
    line.setAttribute('data-testid', 'send-preview-file');
    // the name's ending as a badge ("PDF"), not an emoji: not every machine has a font for those
    var ext = (/\.([a-z0-9]{1,4})$/i.exec(f.file.name) || [])[1];
    var icon = h('span', 'send-file-icon', ext ? ext.toUpperCase() : FILE_BADGE[f.kind]);
    icon.setAttribute('aria-hidden', 'true');
    line.appendChild(icon);
    line.appendChild(h('span', 'send-file-label', f.file.name));
    line.appendChild(h('span', 'muted', fileSize(f.file.size)));
    if (!f.url) return (f.view = line);
    var img = h('img', 'send-preview-image');
    img.alt = f.file.name;
    img.src = f.url;
    img.setAttribute('data-testid', 'send-preview-image');
    // not a picture after all (the server will refuse it): show its name instead of a broken image
    img.addEventListener('error', function () { f.view = line; if (img.parentNode) img.replaceWith(line); });
    return (f.view = img);
  }

  // The file row, the text box's label and the hint under them, for the attached file (or none).
  function showSendFile(f, text) {
    el.sendFileChosen.hidden = !f;
    el.sendFilePick.textContent = f ? 'Ganti berkas' : 'Lampirkan berkas';
    el.sendFileName.textContent = f ? f.file.name + ' · ' + FILE_KIND[f.kind] + ' · ' + fileSize(f.file.size) : '';
    var audio = !!f && f.kind === 'audio';
    el.sendTextLabel.textContent = !f ? 'Pesan' : audio ? 'Keterangan (audio tanpa keterangan)' : 'Keterangan (boleh kosong)';
    el.sendText.disabled = audio;
    var problem = fileProblem(f, text);
    var note = !f ? FILE_HINT
      : audio ? 'Audio dikirim tanpa keterangan (WhatsApp tidak menampilkan teks pada audio); teks di kotak pesan tidak ikut dikirim.'
      : 'Teks menjadi keterangan berkas: ' + num(chars(fileCaption(f, text))) + '/' + num(WA_CAPTION_CHARS) + ' karakter.';
    el.sendFileHint.textContent = problem || note;
    el.sendFileHint.className = 'send-hint' + (problem ? ' bad' : '');
  }

  // The send API's multipart form: the same fields as the JSON body, and the file itself as `file`
  // (a document keeps its name from there).
  function sendForm(body, file) {
    var form = new FormData();
    Object.keys(body).forEach(function (k) { if (k !== 'file') form.append(k, body[k]); });
    form.append('file', file, file.name);
    return form;
  }

  function sendTemplate() {
    var id = el.sendTemplate.value;
    return send.templates.filter(function (t) { return templateId(t) === id; })[0] || null;
  }

  function renderSendDraft() {
    var to = writtenNumber(el.sendTo.value);
    el.sendToHint.textContent = to.number ? 'Dikirim ke ' + to.number : (to.error || '');
    el.sendToHint.className = 'send-hint' + (to.error ? ' bad' : '');
    var byTemplate = sendMode() === 'template';
    el.sendTextBox.hidden = byTemplate;
    el.sendTemplateBox.hidden = !byTemplate;
    if (byTemplate) {
      var t = sendTemplate();
      el.sendPreview.replaceChildren(t ? templatePreview(t, send.valueOf) : h('span', 'muted', 'Pilih template untuk melihat pratinjaunya.'));
      el.sendParts.textContent = t ? '· ' + t.name + ' (' + t.language + ')' : '';
      el.sendButton.disabled = send.busy || !to.number || !t;
      return;
    }
    var text = el.sendText.value;
    var f = send.file;
    showSendFile(f, text);
    if (f) {
      var caption = fileCaption(f, text);
      el.sendPreview.replaceChildren(filePreview(f));
      if (caption) el.sendPreview.appendChild(window.WaFormat.render(caption));
      el.sendParts.textContent = '· ' + FILE_KIND[f.kind] + ' ' + fileSize(f.file.size) +
        (caption ? ', keterangan ' + num(chars(caption)) + ' karakter' : '');
      el.sendButton.disabled = send.busy || !to.number || !!fileProblem(f, text);
      return;
    }
    var shown = text.trim() ? text : 'Pratinjau pesan muncul di sini.';
    el.sendPreview.replaceChildren(window.WaFormat.render(shown));
    var parts = Math.max(1, Math.ceil(text.trim().length / WA_PART_CHARS));
    el.sendParts.textContent = text.trim() ? '· ' + num(text.trim().length) + ' karakter' + (parts > 1 ? ', ' + parts + ' pesan' : '') : '';
    el.sendButton.disabled = send.busy || !to.number || !text.trim();
  }

  function chooseSendTemplate() {
    var t = sendTemplate();
    send.valueOf = t ? valueFields(el.sendValues, t, 'send', renderSendDraft) : null;
    if (!t) el.sendValues.replaceChildren();
    renderSendDraft();
  }

  function loadSendTemplates() {
    return offerTemplates(el.sendAccount, el.sendTemplate, function (approved, changed) {
      send.templates = approved;
      el.sendTemplateHint.textContent = approved.length ? '' : 'Nomor ini belum punya template yang disetujui (lihat bagian Template).';
      if (changed || !send.valueOf) chooseSendTemplate();
    });
  }

  function setSendMode(mode) {
    el.sendForm.querySelector('input[name="send-mode"][value="' + mode + '"]').checked = true;
    el.sendError.hidden = true;
    renderSendDraft();
    if (mode === 'template') el.sendTemplate.focus();
  }

  function sendMessage() {
    var to = writtenNumber(el.sendTo.value);
    var byTemplate = sendMode() === 'template';
    var t = byTemplate ? sendTemplate() : null;
    var f = byTemplate ? null : send.file;
    var text = el.sendText.value.trim();
    if (send.busy || !to.number || (byTemplate ? !t : !(text || f))) return;
    // too large, empty or a caption too long: the hint says why, and nothing reaches the server
    if (fileProblem(f, text)) { renderSendDraft(); return; }
    var body = { to: to.number };
    if (!el.sendAccountBox.hidden && el.sendAccount.value) body.account = el.sendAccount.value;
    if (t) {
      body.template = templateValues(t, send.valueOf);
      body.template.name = t.name;
      body.template.language = t.language;
    } else if (f) {
      body.type = f.kind;
      if (fileCaption(f, text)) body.caption = fileCaption(f, text);
      // names the file in the draft below (the bytes go in the form): the same file keeps the key
      body.file = { name: f.file.name, size: f.file.size, lastModified: f.file.lastModified };
    } else {
      body.text = text;
    }
    var draft = JSON.stringify(body);
    // the same draft sent again (after a lost answer) keeps its key, so it goes out once
    if (send.draft !== draft) { send.draft = draft; send.key = randomKey(); }
    body.idempotency_key = send.key;
    send.busy = true;
    el.sendError.hidden = true;
    renderSendDraft();
    // a file may take a while to upload: more time than a JSON request gets
    var request = f
      ? api('/api/messages', { method: 'POST', form: sendForm(body, f.file), timeoutMs: 180000 })
      : api('/api/messages', { method: 'POST', body: body });
    request
      .then(function (res) {
        followSent(res.message);
        if (t) chooseSendTemplate();
        // audio took no caption: the text was not sent, so it stays
        else if (!f || f.kind !== 'audio') el.sendText.value = '';
        if (f && send.file === f) dropSendFile();
        send.draft = null;
      })
      .catch(function (err) {
        if (handleAuthFailure(err)) return;
        if (!(err instanceof ApiError)) {
          // no answer: it may have arrived; the draft keeps its key, so pressing again cannot send it twice
          el.sendError.replaceChildren(h('p', null, 'Tidak ada jawaban dari server (' + (err.message || String(err)) +
            '). Tekan Kirim lagi: pesan yang sama tidak akan terkirim dua kali.'));
          el.sendError.hidden = false;
          return;
        }
        showRefusal(el.sendError, err);
        if (err.body && err.body.code === 'outside_window') {
          el.sendError.appendChild(button('btn-outline btn-small', 'Kirim dengan template', 'send-use-template', function () { setSendMode('template'); }));
        }
      })
      .then(function () { send.busy = false; renderSendDraft(); });
  }

  // Shows the message's state until it settles (or for a minute).
  function followSent(message) {
    clearTimeout(send.follow);
    var asked = 0;
    var show = function (m) {
      var last = m.parts[m.parts.length - 1];
      var status = last && last.statuses.length ? last.statuses[last.statuses.length - 1].status : null;
      var label = status ? (STATUS_LABEL[status] || status) : (SEND_STATE[m.state] || m.state);
      el.sendResult.replaceChildren(
        h('strong', null, 'Pesan #' + m.id + ' ke ' + m.to + ': '),
        h('span', 'tag state-' + m.state, label)
      );
      var error = m.parts.map(function (p) { return p.error; }).filter(Boolean)[0];
      if (error) el.sendResult.appendChild(h('p', 'outbox-error', error));
      el.sendResult.setAttribute('data-state', m.state);
      el.sendResult.hidden = false;
      if (!SETTLED[m.state] && !RETRYABLE_BY_HAND[m.state] && asked < 30) {
        send.follow = setTimeout(function () {
          asked += 1;
          api('/api/messages/' + m.id).then(show).catch(function () { /* shown again at the next look */ });
        }, 2000);
      }
    };
    show(message);
  }

  el.sendForm.addEventListener('submit', function (e) { e.preventDefault(); sendMessage(); });
  el.sendTo.addEventListener('input', renderSendDraft);
  el.sendText.addEventListener('input', renderSendDraft);
  el.sendFile.addEventListener('change', function () { chooseSendFile(el.sendFile.files && el.sendFile.files[0]); });
  el.sendFileRemove.addEventListener('click', function () { chooseSendFile(null); el.sendFile.focus(); });
  Array.prototype.forEach.call(el.sendForm.querySelectorAll('input[name="send-mode"]'), function (r) {
    r.addEventListener('change', function () { setSendMode(r.value); });
  });
  el.sendTemplate.addEventListener('change', chooseSendTemplate);
  el.sendAccount.addEventListener('change', loadSendTemplates);
  renderSendDraft();

  function resetComposer() {
    state.reply = { id: null, text: null, key: null };
    el.replyInput.value = '';
    showReplyError('');
  }

  function showReplyError(text) {
    el.replyError.textContent = text;
    el.replyError.hidden = !text;
  }

  // When WhatsApp's 24-hour window closes: the transcript's word, else the list's.
  function windowOf(t) {
    return t.windowOpenUntil !== undefined ? t.windowOpenUntil : stateOf(t).windowOpenUntil;
  }

  // Why the agent cannot write here, before they type; null when they can.
  function closedReason(t) {
    if (!t || t.channel !== 'whatsapp') return null;
    var until = windowOf(t);
    // Open with no end: a number on Fonnte or WAHA, which has no window.
    if (t.canReply === true && until == null) return null;
    if (t.canReply !== false && until != null && Number(until) > serverNow()) return null;
    return until == null
      ? 'Pelanggan ini belum pernah menulis, jadi WhatsApp belum menerima pesan biasa darinya.'
      : 'Pesan terakhir pelanggan sudah lebih dari 24 jam (' + when(Number(until) - 86400000) + ').';
  }

  function updateComposer() {
    var t = state.transcriptData;
    clearTimeout(state.windowTimer);
    el.composer.hidden = !t || String(t.id) !== String(state.selectedId);
    if (el.composer.hidden) return;
    var reason = closedReason(t);
    el.replyNotice.hidden = !reason;
    el.replyNotice.replaceChildren();
    if (reason) {
      el.replyNotice.appendChild(h('strong', null, 'Balasan tidak bisa dikirim. '));
      el.replyNotice.appendChild(document.createTextNode(reason + ' Di luar jendela layanan 24 jam WhatsApp menolak pesan bebas (kode 131047). Tunggu pelanggan menulis lagi, atau hubungi lewat cara lain.'));
    } else if (t.channel === 'whatsapp' && windowOf(t) != null) {
      // the window may close while the page is open
      var left = Number(windowOf(t)) - serverNow() + 500;
      if (left < 86400000) state.windowTimer = setTimeout(updateComposer, left);
    }
    el.replyInput.disabled = !!reason;
    el.replySend.disabled = !!reason || state.sending;
    el.replySend.textContent = state.sending ? 'Mengirim…' : 'Kirim';
  }

  function sendReply() {
    var t = state.transcriptData;
    var text = el.replyInput.value.trim();
    if (!t || state.sending || !text || closedReason(t)) return;
    var id = t.id;
    var key = idempotencyKey(id, text);
    state.sending = true;
    showReplyError('');
    updateComposer();
    api('/api/admin/conversations/' + encodeURIComponent(id) + '/messages', { method: 'POST', body: { text: text, idempotencyKey: key } })
      .then(function () {
        state.sending = false;
        if (String(state.selectedId) === String(id)) {
          // only what was sent is cleared: the agent may have typed on meanwhile
          if (el.replyInput.value.trim() === text) el.replyInput.value = '';
          state.reply = { id: null, text: null, key: null };
          loadTranscript(id, true);
        }
        updateComposer();
      }, function (err) {
        state.sending = false;
        updateComposer();
        if (handleAuthFailure(err)) return;
        var code = err.body && err.body.code;
        if (err instanceof ApiError && err.status === 409 && (code === 'outside_window' || /window/i.test(err.message))) {
          showReplyError('Tidak terkirim: di luar jendela layanan 24 jam WhatsApp (kode 131047).');
          loadTranscript(id, false);
        } else if (err instanceof ApiError && err.status === 400) {
          showReplyError('Balasan ditolak: ' + err.message);
        } else if (err instanceof ApiError && err.status === 404) {
          showReplyError('Percakapan ini sudah tidak ada.');
        } else {
          // same text, same key: pressing Kirim again cannot send it twice
          showReplyError('Gagal mengirim (' + (err.message || String(err)) + '). Tekan Kirim untuk mencoba lagi.');
        }
      });
  }

  el.composer.addEventListener('submit', function (e) {
    e.preventDefault();
    sendReply();
  });
  el.replyInput.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendReply();
    }
  });

  // ---------- documents ----------

  function renderDocuments(kb) {
    var files = Array.isArray(kb.files) ? kb.files : [];
    var skipped = Array.isArray(kb.skipped) ? kb.skipped : [];
    var sum = [];
    function strong(t) { return h('strong', null, t); }
    sum.push(strong(num(kb.documents != null ? kb.documents : files.length)), document.createTextNode(' dokumen · '));
    sum.push(strong(num(kb.pages)), document.createTextNode(' halaman · '));
    sum.push(strong(num(kb.chunks)), document.createTextNode(' potongan'));
    if (kb.builtAt) sum.push(document.createTextNode(' · indeks dibangun ' + when(kb.builtAt)));
    if (kb.refreshing) sum.push(document.createTextNode(' · sedang dimuat ulang…'));
    el.docsSummary.replaceChildren.apply(el.docsSummary, sum);

    if (!files.length) {
      var tr = h('tr');
      var td = h('td', 'empty-state', kb.loaded ? 'Tidak ada dokumen terindeks.' : 'Indeks belum dimuat.');
      td.colSpan = 5;
      tr.appendChild(td);
      el.filesBody.replaceChildren(tr);
    } else {
      el.filesBody.replaceChildren.apply(el.filesBody, files.map(function (f) {
        var tr = h('tr');
        tr.appendChild(h('td', 'file', f.file || '–'));
        tr.appendChild(h('td', null, f.title || '–'));
        tr.appendChild(h('td', 'num', num(f.pages)));
        tr.appendChild(h('td', 'num', num(f.chunks)));
        var cache = f.from_cache != null ? f.from_cache : f.fromCache;
        tr.appendChild(h('td', null, cache ? 'dari cache' : 'diindeks baru'));
        return tr;
      }));
    }
    el.skippedBox.replaceChildren();
    if (skipped.length) el.skippedBox.appendChild(skippedList('Berkas yang dilewati', skipped, 'skipped'));
    el.evalBox.hidden = !kb.eval;
    if (kb.eval) el.evalBox.replaceChildren.apply(el.evalBox, evalParts(kb.eval));
    if (!state.refreshingKb) setRefreshBusy(!!kb.refreshing);
  }

  function share(r) { return r == null ? '–' : num(Number(r) * 100, 0) + '%'; }

  // What eval.jsonl found in a build: recall, the previous build's when
  // this one is worse, each miss and each line that could not be read.
  function evalParts(ev) {
    var kids = [];
    var worse = ev.previous_recall_at_4 != null && ev.recall_at_4 < ev.previous_recall_at_4;
    var line = h('p', 'eval-recall' + (worse ? ' bad' : ''));
    line.setAttribute('data-testid', 'eval-recall');
    line.appendChild(h('strong', null, 'Uji pertanyaan (eval.jsonl): '));
    var text = num(ev.questions) + ' pertanyaan · ketemu di 4 teratas ' + share(ev.recall_at_4) + ' · di urutan pertama ' + share(ev.recall_at_1);
    if (ev.previous_recall_at_4 != null) text += worse ? ' · TURUN, sebelumnya ' + share(ev.previous_recall_at_4) : ' · sebelumnya ' + share(ev.previous_recall_at_4);
    line.appendChild(document.createTextNode(text));
    kids.push(line);
    var misses = Array.isArray(ev.misses) ? ev.misses : [];
    if (misses.length) {
      kids.push(h('p', 'sub', 'Tidak ketemu (' + misses.length + ')'));
      var ul = h('ul');
      misses.forEach(function (m) {
        var li = h('li');
        li.setAttribute('data-testid', 'eval-miss');
        li.appendChild(h('strong', null, m.question || '?'));
        li.appendChild(document.createTextNode(' — mencari “' + (m.expected || '') + '”; yang ketemu: ' + ((m.found || []).join('; ') || 'tidak ada')));
        ul.appendChild(li);
      });
      kids.push(ul);
    }
    var errors = Array.isArray(ev.errors) ? ev.errors : [];
    if (errors.length) {
      kids.push(h('p', 'sub', 'Baris eval.jsonl yang tidak terbaca (' + errors.length + ')'));
      var bad = h('ul');
      errors.forEach(function (e) { bad.appendChild(h('li', null, 'baris ' + e.line + ': ' + e.reason)); });
      kids.push(bad);
    }
    return kids;
  }

  function skippedList(title, skipped, cls) {
    var box = h('div', cls);
    box.appendChild(h(cls === 'skipped' ? 'h3' : 'p', cls === 'skipped' ? null : 'sub', title + ' (' + skipped.length + ')'));
    var ul = h('ul');
    skipped.forEach(function (x) {
      var li = h('li');
      li.appendChild(h('span', 'file', x && x.file ? x.file : '?'));
      li.appendChild(document.createTextNode(': ' + (x && x.reason ? x.reason : 'tidak diketahui')));
      ul.appendChild(li);
    });
    box.appendChild(ul);
    return box;
  }

  function setRefreshBusy(busy) {
    el.refreshButton.disabled = busy;
    el.refreshButton.classList.toggle('is-busy', busy);
    el.refreshButton.setAttribute('aria-busy', busy ? 'true' : 'false');
    el.refreshButton.querySelector('.label').textContent = busy ? 'Memuat ulang…' : 'Muat ulang dokumen';
  }

  function renderReport(report, errorText) {
    var r = report || {};
    var box = el.refreshReport;
    box.className = 'refresh-report' + (errorText ? ' bad' : '');
    var kids = [];
    kids.push(h('h3', null, errorText ? 'Gagal memuat ulang: ' + errorText : 'Dokumen selesai dimuat ulang'));
    if (report) {
      var secs = r.duration_ms != null ? num(Number(r.duration_ms) / 1000, 1) + ' detik' : '–';
      kids.push(h('p', 'totals', num(r.files) + ' berkas · ' + num(r.pages) + ' halaman · ' + num(r.chunks) + ' potongan · ' + num((r.skipped || []).length) + ' dilewati · ' + secs));
      if (r.kept_previous_index) kids.push(h('p', null, 'Indeks sebelumnya tetap dipakai.'));
      var docs = Array.isArray(r.documents) ? r.documents : [];
      if (docs.length) {
        kids.push(h('p', 'sub', 'Terindeks (' + docs.length + ')'));
        var ul = h('ul');
        docs.forEach(function (d) {
          var li = h('li');
          li.setAttribute('data-testid', 'report-file');
          li.appendChild(h('span', 'file', d.file || '?'));
          var info = ' — ' + num(d.pages) + ' halaman, ' + num(d.chunks) + ' potongan';
          if (d.from_cache || d.fromCache) info += ', dari cache';
          li.appendChild(document.createTextNode(info));
          ul.appendChild(li);
        });
        kids.push(ul);
      }
      var sk = Array.isArray(r.skipped) ? r.skipped : [];
      if (sk.length) kids.push(skippedList('Dilewati', sk, 'report-skipped'));
      if (r.eval) kids = kids.concat(evalParts(r.eval));
    }
    box.replaceChildren.apply(box, kids);
    box.hidden = false;
  }

  el.refreshButton.addEventListener('click', function () {
    if (state.refreshingKb) return;
    state.refreshingKb = true;
    setRefreshBusy(true);
    api('/api/whatsapp/refresh-kb', { method: 'POST', timeoutMs: 600000 })
      .then(function (report) { renderReport(report, null); })
      .catch(function (err) {
        if (handleAuthFailure(err)) return;
        if (err instanceof ApiError && err.status === 422) renderReport(err.body && err.body.report, err.message);
        else if (err instanceof ApiError && err.status === 409) renderReport(null, 'pemuatan ulang lain sedang berjalan');
        else renderReport(null, err.message || String(err));
      })
      .then(function () {
        state.refreshingKb = false;
        setRefreshBusy(false);
        if (state.token) refreshAll(false);
      });
  });

  // ---------- errors ----------

  var ERROR_KIND = { llm: 'LLM', send: 'Kirim WA', knowledge: 'Dokumen', webhook: 'Webhook', store: 'Database' };

  function renderErrors(data) {
    var list = data && Array.isArray(data.errors) ? data.errors : [];
    if (!list.length) {
      el.errorsList.replaceChildren(h('li', 'empty-state', 'Tidak ada kesalahan tercatat.'));
      return;
    }
    el.errorsList.replaceChildren.apply(el.errorsList, list.map(function (e) {
      var li = h('li');
      li.appendChild(h('span', 'when', when(e.at)));
      li.appendChild(h('span', null)).appendChild(h('span', 'tag failed', ERROR_KIND[e.kind] || e.kind || '?'));
      li.appendChild(h('span', 'msg', e.message == null ? '' : e.message));
      return li;
    }));
  }

  // ---------- unanswered questions ----------

  var REASONS = { no_passages: 'tak ada yang cocok', low_score: 'skor rendah', model_unsure: 'AI tidak tahu' };

  function renderUnanswered(data) {
    var groups = data && Array.isArray(data.groups) ? data.groups : [];
    if (!groups.length) {
      el.unansweredList.replaceChildren(h('li', 'empty-state', 'Belum ada pertanyaan tak terjawab. Bagus!'));
      return;
    }
    el.unansweredList.replaceChildren.apply(el.unansweredList, groups.map(function (g) {
      var li = h('li');
      li.setAttribute('data-testid', 'unanswered-group');
      var main = h('div', 'q');
      main.appendChild(h('span', 'count', g.count + '×'));
      main.appendChild(h('span', 'example', g.example));
      li.appendChild(main);
      var meta = h('div', 'meta');
      (g.reasons || []).forEach(function (r) { meta.appendChild(h('span', 'tag', REASONS[r] || r)); });
      meta.appendChild(h('span', 'when', 'terakhir ' + when(g.latestAt) + (g.person ? ' · ' + g.person : '')));
      var others = (g.wordings || []).filter(function (w) { return w !== g.example; });
      if (others.length) meta.appendChild(h('span', 'others', 'juga: ' + others.join(' · ')));
      li.appendChild(meta);
      li.appendChild(dismissButton(g));
      return li;
    }));
  }

  function dismissButton(g) {
    var b = h('button', 'btn btn-outline btn-small', 'Selesai');
    b.type = 'button';
    b.title = 'Dokumennya sudah ditambah: hapus kelompok ini dari daftar';
    b.addEventListener('click', function () {
      b.disabled = true;
      api('/api/admin/unanswered/dismiss', { method: 'POST', body: { ids: g.ids } })
        .then(function () { return api('/api/admin/unanswered?limit=50').then(renderUnanswered); })
        .catch(function (err) {
          if (handleAuthFailure(err)) return;
          b.disabled = false;
          showError('Gagal menandai selesai: ' + (err.message || String(err)));
        });
    });
    return b;
  }

  // ---------- contacts ----------

  var CONTACTS_PAGE = 50;
  var CONSENT = { opted_in: 'Setuju', unknown: 'Belum ditanya', opted_out: 'Menolak' };

  function consentTag(consent) { return h('span', 'tag consent-' + consent, CONSENT[consent] || consent); }

  function sourceLabel(source) {
    if (!source) return '';
    if (source === 'customer:phrase') return 'pelanggan sendiri';
    if (source === 'import') return 'impor CSV';
    // an agent by name, the admin token as "admin"
    if (source.indexOf('admin:') === 0) return source.slice(6);
    return source;
  }

  // the filters as typed; with the page's place, for the list
  function contactsQuery(paged) {
    var p = new URLSearchParams();
    if (el.contactsQ.value.trim()) p.set('q', el.contactsQ.value.trim());
    if (el.contactsTag.value.trim()) p.set('tag', el.contactsTag.value.trim());
    if (el.contactsConsent.value) p.set('consent', el.contactsConsent.value);
    if (!paged) return p.toString();
    p.set('limit', String(CONTACTS_PAGE));
    p.set('offset', String(state.contacts.offset));
    return p.toString();
  }

  function loadContacts() {
    var seq = ++state.contacts.seq;
    return api('/api/admin/contacts?' + contactsQuery(true))
      .then(function (data) { if (seq === state.contacts.seq) renderContacts(data); })
      .catch(function (err) {
        if (handleAuthFailure(err)) return;
        el.contactsSummary.textContent = '';
        el.contactsBody.replaceChildren(row([h('td', 'empty-state', 'Gagal memuat kontak: ' + (err.message || String(err)))], 5));
      });
  }

  function row(cells, span) {
    var tr = h('tr');
    if (span) cells[0].colSpan = span;
    cells.forEach(function (c) { tr.appendChild(c); });
    return tr;
  }

  function renderContacts(data) {
    var list = data && Array.isArray(data.contacts) ? data.contacts : [];
    state.contacts.total = data ? data.total : 0;
    var from = list.length ? state.contacts.offset + 1 : 0;
    el.contactsSummary.textContent = num(state.contacts.total) + ' kontak' +
      (state.contacts.total > list.length ? ' · ' + num(from) + '–' + num(state.contacts.offset + list.length) : '');
    el.contactsPrev.disabled = state.contacts.offset === 0;
    el.contactsNext.disabled = state.contacts.offset + list.length >= state.contacts.total;
    if (!list.length) {
      el.contactsBody.replaceChildren(row([h('td', 'empty-state', 'Belum ada kontak yang cocok. Tambahkan lewat impor CSV.')], 5));
      return;
    }
    el.contactsBody.replaceChildren.apply(el.contactsBody, list.map(function (c) {
      var tags = h('td');
      (c.tags || []).forEach(function (t) { tags.appendChild(h('span', 'tag', t)); tags.appendChild(document.createTextNode(' ')); });
      var consent = h('td');
      consent.appendChild(consentTag(c.consent));
      var tr = row([h('td', 'number', c.number), h('td', null, c.name || '–'), tags, consent, h('td', 'muted', when(c.updatedAt))]);
      tr.setAttribute('data-testid', 'contact-row');
      tr.tabIndex = 0;
      if (c.id === state.contacts.selected) tr.className = 'selected';
      var open = function () { showContact(c.id); };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', function (e) { if (e.key === 'Enter') open(); });
      return tr;
    }));
  }

  function showContact(id) {
    state.contacts.selected = id;
    return api('/api/admin/contacts/' + id)
      .then(renderContact)
      .catch(function (err) {
        if (handleAuthFailure(err)) return;
        showError('Gagal membuka kontak: ' + (err.message || String(err)));
      });
  }

  function renderContact(c) {
    var box = el.contactDetail;
    box.hidden = false;
    var head = h('h3', null, c.name || c.number);
    var meta = h('p', 'muted', c.number + (c.tags && c.tags.length ? ' · ' + c.tags.join(', ') : ''));
    var now = h('p');
    now.appendChild(document.createTextNode('Promosi: '));
    now.appendChild(consentTag(c.consent));
    if (c.consentSource) now.appendChild(h('span', 'muted', ' · oleh ' + sourceLabel(c.consentSource) + ' · ' + when(c.consentAt)));

    var form = h('form', 'contact-consent-form');
    form.setAttribute('data-testid', 'contact-consent-form');
    var select = h('select');
    select.setAttribute('aria-label', 'Persetujuan baru');
    select.setAttribute('data-testid', 'contact-consent-state');
    [['opted_in', 'Setuju menerima promosi'], ['opted_out', 'Menolak promosi']].forEach(function (o) {
      var opt = h('option', null, o[1]);
      opt.value = o[0];
      select.appendChild(opt);
    });
    select.value = c.consent === 'opted_in' ? 'opted_out' : 'opted_in';
    var note = h('input');
    note.maxLength = 500;
    note.placeholder = 'Catatan (mis. setuju lewat formulir pendaftaran)';
    note.setAttribute('aria-label', 'Catatan');
    note.setAttribute('data-testid', 'contact-consent-note');
    var save = h('button', 'btn btn-primary btn-small', 'Ubah persetujuan');
    save.type = 'submit';
    var warn = h('p', 'send-hint');
    if (c.consent === 'opted_out' && c.consentSource === 'customer:phrase') {
      warn.textContent = 'Pelanggan ini menolak sendiri. Setujukan lagi hanya bila pelanggan memintanya, dan tulis caranya di catatan.';
    }
    form.appendChild(select);
    form.appendChild(note);
    form.appendChild(save);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      save.disabled = true;
      api('/api/admin/contacts/' + c.id + '/consent', { method: 'POST', body: { state: select.value, note: note.value } })
        .then(function (updated) { renderContact(updated); return loadContacts(); })
        .catch(function (err) {
          if (handleAuthFailure(err)) return;
          save.disabled = false;
          warn.className = 'send-hint bad';
          warn.textContent = 'Gagal: ' + (err.message || String(err));
        });
    });

    var log = h('ul', 'consent-log');
    log.setAttribute('data-testid', 'consent-log');
    var entries = (c.consentLog || []).slice().reverse();
    if (!entries.length) log.appendChild(h('li', 'muted', 'Belum ada perubahan persetujuan.'));
    entries.forEach(function (entry) {
      var li = h('li');
      li.appendChild(h('span', 'when', when(entry.at)));
      li.appendChild(consentTag(entry.from));
      li.appendChild(document.createTextNode('→'));
      li.appendChild(consentTag(entry.to));
      li.appendChild(h('span', 'muted', sourceLabel(entry.source)));
      if (entry.note) li.appendChild(h('span', null, '“' + entry.note + '”'));
      log.appendChild(li);
    });
    box.replaceChildren(head, meta, now, form, warn, h('h4', null, 'Riwayat persetujuan'), log);
  }

  function renderImport(result) {
    var box = el.contactsImport;
    box.hidden = false;
    var summary = h('p', null, 'Impor selesai: ' + num(result.created) + ' baru, ' + num(result.updated) + ' diperbarui, ' +
      num(result.unchanged) + ' tetap, ' + num((result.errors || []).length) + ' baris ditolak.');
    var parts = [summary];
    if (result.errors && result.errors.length) {
      var errors = h('ul');
      errors.setAttribute('data-testid', 'contacts-import-errors');
      result.errors.forEach(function (e) { errors.appendChild(h('li', 'no', 'Baris ' + e.line + ': ' + e.error)); });
      parts.push(errors);
    }
    if (result.keptOptOut && result.keptOptOut.length) {
      parts.push(h('p', 'send-hint', 'Tidak disetujukan karena pelanggan menolak sendiri:'));
      var kept = h('ul');
      result.keptOptOut.forEach(function (k) { kept.appendChild(h('li', null, 'Baris ' + k.line + ': ' + k.number)); });
      parts.push(kept);
    }
    box.replaceChildren.apply(box, parts);
  }

  function importContacts(file) {
    el.contactsImport.hidden = false;
    el.contactsImport.replaceChildren(h('p', 'muted', 'Mengimpor ' + file.name + '…'));
    file.text()
      .then(function (text) {
        return fetch('/api/admin/contacts/import', {
          method: 'POST',
          headers: { Authorization: 'Bearer ' + state.token, 'Content-Type': 'text/csv', Accept: 'application/json' },
          body: text,
          cache: 'no-store'
        });
      })
      .then(function (res) {
        return res.json().catch(function () { return null; }).then(function (body) {
          if (!res.ok) throw new ApiError(res.status, body);
          return body;
        });
      })
      .then(function (result) { renderImport(result); state.contacts.offset = 0; return loadContacts(); })
      .catch(function (err) {
        if (handleAuthFailure(err)) return;
        el.contactsImport.replaceChildren(h('p', 'no', 'Impor gagal: ' + (err.message || String(err))));
      })
      .then(function () { el.contactsFile.value = ''; });
  }

  // A CSV the server makes, fetched with the token (a plain link cannot send it) and saved as `filename`.
  function downloadCsv(path, filename, button) {
    button.disabled = true;
    fetch(path, { headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' })
      .then(function (res) {
        if (!res.ok) return res.json().catch(function () { return null; }).then(function (body) { throw new ApiError(res.status, body); });
        return res.blob();
      })
      .then(function (blob) {
        var a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = filename;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
      })
      .catch(function (err) {
        if (handleAuthFailure(err)) return;
        showError('Ekspor gagal: ' + (err.message || String(err)));
      })
      .then(function () { button.disabled = false; });
  }

  el.contactsFilter.addEventListener('submit', function (e) {
    e.preventDefault();
    state.contacts.offset = 0;
    loadContacts();
  });
  el.contactsConsent.addEventListener('change', function () { state.contacts.offset = 0; loadContacts(); });
  el.contactsPrev.addEventListener('click', function () {
    state.contacts.offset = Math.max(0, state.contacts.offset - CONTACTS_PAGE);
    loadContacts();
  });
  el.contactsNext.addEventListener('click', function () {
    state.contacts.offset += CONTACTS_PAGE;
    loadContacts();
  });
  el.contactsFile.addEventListener('change', function () {
    if (el.contactsFile.files && el.contactsFile.files[0]) importContacts(el.contactsFile.files[0]);
  });
  el.contactsExport.addEventListener('click', function () {
    downloadCsv('/api/admin/contacts/export?' + contactsQuery(false), 'kontak.csv', el.contactsExport);
  });

  // ---------- templates view ----------

  var TEMPLATE_STATUS = {
    APPROVED: ['ok', 'Disetujui'], PENDING: ['warn', 'Menunggu tinjauan'], IN_APPEAL: ['warn', 'Banding'],
    REJECTED: ['bad', 'Ditolak'], PAUSED: ['bad', 'Dijeda Meta'], DISABLED: ['bad', 'Dinonaktifkan']
  };

  function templateItem(t) {
    var li = h('li', 'template-item');
    li.setAttribute('data-testid', 'template-item');
    li.setAttribute('data-status', t.status);
    var status = TEMPLATE_STATUS[t.status] || ['bad', t.status];
    var head = h('div', 'template-head');
    head.append(h('strong', null, t.name), h('span', 'tag', t.language), h('span', 'tag', t.category));
    var badge = pill(status[0], status[1]);
    badge.setAttribute('data-testid', 'template-status');
    head.appendChild(badge);
    li.appendChild(head);
    if (t.reason) li.appendChild(h('p', 'note bad', 'Alasan Meta: ' + t.reason));
    if (t.header && t.header.type === 'text') li.appendChild(h('p', 'template-text strong', t.header.text));
    li.appendChild(h('p', 'template-text', t.body && t.body.text));
    if (t.footer) li.appendChild(h('p', 'template-text muted', t.footer));
    var needs = slotsOf(t).map(function (slot) { return slot.label; });
    li.appendChild(h('p', 'send-hint', needs.length ? 'Perlu: ' + needs.join(' · ') : 'Tidak perlu nilai.'));
    return li;
  }

  function loadTemplatesView(fresh) {
    var account = el.templatesAccount.value;
    return templatesOf(account, fresh).then(function (list) {
      if (el.templatesAccount.value !== account) return;
      var local = list.source === 'local';
      var all = list.templates || [];
      el.templatesSummary.textContent = num(all.length) + ' template · ' +
        num(all.filter(function (t) { return t.status === 'APPROVED'; }).length) + ' disetujui';
      el.templatesRefresh.hidden = local;
      el.templateForm.hidden = !local;
      var sync = el.templatesSync;
      sync.className = 'send-hint' + (list.syncError ? ' bad' : '');
      if (local) sync.textContent = 'Template nomor ini disimpan di server ini (penyedia tanpa template Meta).';
      else if (list.syncError) sync.textContent = 'Gagal membaca dari Meta: ' + list.syncError + (list.syncedAt ? ' · terakhir berhasil ' + when(list.syncedAt) : '');
      else sync.textContent = list.syncedAt ? 'Dibaca dari Meta ' + when(list.syncedAt) : 'Belum pernah dibaca dari Meta.';
      el.templatesList.replaceChildren.apply(el.templatesList, all.length ? all.map(templateItem)
        : [h('li', 'muted', local ? 'Belum ada template; tambahkan di bawah.' : 'Belum ada template di akun bisnis ini.')]);
    }, function (err) {
      if (handleAuthFailure(err)) return;
      el.templatesSync.className = 'send-hint bad';
      el.templatesSync.textContent = 'Daftar template gagal dimuat: ' + (err.message || err);
    });
  }

  // After the list changed: every view that offers templates reads it again.
  function templatesChanged() {
    templateLists = {};
    loadTemplatesView(false);
    loadSendTemplates();
    loadCampaignTemplates();
  }

  el.templatesRefresh.addEventListener('click', function () {
    var account = el.templatesAccount.value;
    el.templatesRefresh.disabled = true;
    el.templatesSync.textContent = 'Membaca dari Meta…';
    api('/api/templates/refresh' + (account ? '?account=' + encodeURIComponent(account) : ''), { method: 'POST', timeoutMs: 60000 })
      .then(templatesChanged, function (err) {
        if (handleAuthFailure(err)) return;
        el.templatesSync.className = 'send-hint bad';
        el.templatesSync.textContent = 'Gagal membaca dari Meta: ' + (err.message || err);
      })
      .then(function () { el.templatesRefresh.disabled = false; });
  });
  el.templatesAccount.addEventListener('change', function () { loadTemplatesView(false); });

  // One example input per placeholder of the body, as Meta's review asks for them.
  var tfExamples = {};
  function renderTemplateExamples() {
    var names = [];
    el.tfBody.value.replace(/\{\{([^}]*)\}\}/g, function (all, name) {
      name = name.trim();
      if (name && names.indexOf(name) < 0) names.push(name);
      return all;
    });
    if (names.join('\n') === Object.keys(tfExamples).join('\n')) return;
    var kept = tfExamples;
    tfExamples = {};
    el.tfExamples.replaceChildren.apply(el.tfExamples, [].concat.apply([], names.map(function (name, i) {
      var input = h('input');
      input.id = 'tf-example-' + i;
      input.autocomplete = 'off';
      input.setAttribute('data-testid', 'tf-example');
      input.value = kept[name] ? kept[name].value : '';
      tfExamples[name] = input;
      var label = h('label', null, 'Contoh untuk {{' + name + '}}');
      label.htmlFor = input.id;
      return [label, input];
    })));
  }
  el.tfBody.addEventListener('input', renderTemplateExamples);

  el.templateForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var names = Object.keys(tfExamples);
    var positional = names.every(function (n) { return /^\d+$/.test(n); });
    var bodyPart = { type: 'BODY', text: el.tfBody.value.trim() };
    var template = {
      name: el.tfName.value.trim(), language: el.tfLanguage.value.trim(), category: el.tfCategory.value,
      components: [bodyPart]
    };
    if (names.length && positional) {
      bodyPart.example = { body_text: [names.map(function (n) { return tfExamples[n].value.trim(); })] };
    } else if (names.length) {
      template.parameter_format = 'named';
      bodyPart.example = { body_text_named_params: names.map(function (n) { return { param_name: n, example: tfExamples[n].value.trim() }; }) };
    }
    if (!el.templatesAccountBox.hidden && el.templatesAccount.value) template.account = el.templatesAccount.value;
    el.tfSubmit.disabled = true;
    el.tfProblems.hidden = true;
    api('/api/templates', { method: 'POST', body: template })
      .then(function () {
        el.templateForm.reset();
        renderTemplateExamples();
        templatesChanged();
      }, function (err) { if (!handleAuthFailure(err)) showRefusal(el.tfProblems, err); })
      .then(function () { el.tfSubmit.disabled = false; });
  });

  // ---------- campaigns ----------

  var CAMPAIGN_STATE = { scheduled: 'Terjadwal', running: 'Berjalan', paused: 'Dijeda', cancelled: 'Dibatalkan', done: 'Selesai' };
  var ACTIVE = { scheduled: true, running: true };
  var STAGE = [
    ['sent', 'terkirim'], ['delivered', 'diterima'], ['read', 'dibaca'], ['failed', 'gagal'],
    ['queued', 'di antrean'], ['pending', 'belum dilepas'], ['skipped', 'dilewati'], ['cancelled', 'dibatalkan']
  ];
  var STAGE_LABEL = {};
  STAGE.forEach(function (s) { STAGE_LABEL[s[0]] = s[1]; });
  var CAMPAIGN_ACTIONS = {
    scheduled: [['pause', 'Jeda'], ['cancel', 'Batalkan']],
    running: [['pause', 'Jeda'], ['cancel', 'Batalkan']],
    paused: [['resume', 'Lanjutkan'], ['cancel', 'Batalkan']]
  };
  var POLL_MS = 2000;
  var REPORT_PAGE = 100;
  var camp = { list: [], timer: null, visible: false, report: null, key: null, busy: false, templates: [], template: null, csv: null, valueOf: null, columnOf: null };

  function campaignItem(c) {
    var li = h('li', 'campaign-item');
    li.setAttribute('data-testid', 'campaign-item');
    li.setAttribute('data-state', c.state);
    var head = h('div', 'template-head');
    head.append(h('strong', null, c.name), h('span', 'tag', c.template.name + ' · ' + c.template.language));
    if (state.numbers > 1) head.appendChild(h('span', 'tag account', c.account));
    var st = h('span', 'tag campaign-' + c.state, CAMPAIGN_STATE[c.state] || c.state);
    st.setAttribute('data-testid', 'campaign-state');
    head.appendChild(st);
    li.appendChild(head);

    var total = Number(c.total) || 0;
    var share = total ? Math.round(100 * (Number(c.released) || 0) / total) : 0;
    var bar = h('div', 'progress');
    bar.setAttribute('role', 'progressbar');
    bar.setAttribute('aria-label', 'Dilepas ke antrean');
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '100');
    bar.setAttribute('aria-valuenow', String(share));
    bar.setAttribute('data-testid', 'campaign-progress');
    var fill = h('div', 'progress-fill');
    fill.style.width = share + '%';
    bar.appendChild(fill);
    li.append(bar, h('p', 'send-hint', num(c.released) + ' dari ' + num(total) + ' dilepas (' + share + '%)'));

    var counts = c.counts || {};
    var line = h('p', 'campaign-counts');
    line.setAttribute('data-testid', 'campaign-counts');
    STAGE.forEach(function (s, i) {
      var n = Number(counts[s[0]]) || 0;
      if (i >= 4 && !n) return; // the four that matter always, the rest when there are some
      line.appendChild(h('span', 'stage-' + s[0], s[1] + ' ' + num(n)));
    });
    li.appendChild(line);

    var rate = c.rate || {};
    var pace = 'Kecepatan ' + num(rate.current, 2) + ' dari ' + num(rate.configured, 2) + ' pesan/detik' +
      (rate.slowdowns ? ' · diperlambat ' + num(rate.slowdowns) + '× (batas Meta)' : '');
    li.appendChild(h('p', 'send-hint', pace + ' · mulai ' + when(c.scheduleAt) + ' · jam ' + c.hours +
      (c.holidays && c.holidays.length ? ' · libur ' + c.holidays.join(', ') : '')));
    if (c.note) li.appendChild(h('p', 'note', c.note));

    var actions = h('div', 'campaign-actions');
    (CAMPAIGN_ACTIONS[c.state] || []).forEach(function (a) {
      var b = button('btn-outline btn-small', a[1], 'campaign-' + a[0], function () { campaignAction(c, a[0], b); });
      actions.appendChild(b);
    });
    actions.appendChild(button('btn-outline btn-small', 'Laporan', 'campaign-open-report', function () { openReport(c); }));
    li.appendChild(actions);
    return li;
  }

  function loadCampaigns() {
    clearTimeout(camp.timer);
    return api('/api/campaigns').then(function (data) {
      var before = {};
      camp.list.forEach(function (c) { before[c.id] = JSON.stringify(c.counts) + c.state; });
      camp.list = data && data.campaigns || [];
      el.campaignsList.replaceChildren.apply(el.campaignsList, camp.list.length ? camp.list.map(campaignItem)
        : [h('li', 'muted', 'Belum ada kampanye.')]);
      // the open report follows its campaign while it moves, as long as only its first page is shown
      var r = camp.report;
      var mine = r && camp.list.filter(function (c) { return c.id === r.id; })[0];
      if (mine && !r.paged && before[r.id] !== JSON.stringify(mine.counts) + mine.state) loadReport(false);
    }, function (err) {
      if (!handleAuthFailure(err)) showError('Kampanye gagal dimuat: ' + (err.message || err));
    }).then(pollCampaigns);
  }

  // Every 2 s while a campaign is scheduled or running and the section is on screen; otherwise not at all.
  function pollCampaigns() {
    clearTimeout(camp.timer);
    camp.timer = null;
    var active = camp.list.some(function (c) { return ACTIVE[c.state]; });
    if (active && camp.visible && !document.hidden && state.token) camp.timer = setTimeout(loadCampaigns, POLL_MS);
  }

  function campaignAction(c, action, button) {
    button.disabled = true;
    api('/api/campaigns/' + c.id + '/' + action, { method: 'POST' })
      .catch(function (err) { if (!handleAuthFailure(err)) showError('Kampanye ' + c.name + ': ' + (err.message || err)); })
      .then(loadCampaigns);
  }

  function reportRow(r) {
    var status = h('span', 'tag stage-' + r.status, STAGE_LABEL[r.status] || r.status);
    var error = [r.errorCode, r.error || r.reason].filter(function (x) { return x != null && x !== ''; }).join(' · ');
    var tr = row([h('td', 'number', r.to), h('td', null, r.name || ''), h('td', null), h('td', 'outbox-error', error)]);
    tr.children[2].appendChild(status);
    tr.setAttribute('data-testid', 'report-row');
    return tr;
  }

  function openReport(c) {
    camp.report = { id: c.id, name: c.name, rows: [], next: null, paged: false };
    el.reportTitle.textContent = 'Laporan: ' + c.name;
    el.reportBody.replaceChildren();
    el.campaignReport.hidden = false;
    loadReport(false);
    el.campaignReport.scrollIntoView({ block: 'nearest' });
  }

  function loadReport(more) {
    var r = camp.report;
    var query = '?limit=' + REPORT_PAGE + (more && r.next ? '&after=' + r.next : '');
    return api('/api/campaigns/' + r.id + '/recipients' + query).then(function (data) {
      if (camp.report !== r) return;
      var rows = data && data.recipients || [];
      r.rows = more ? r.rows.concat(rows) : rows;
      r.next = data && data.next;
      r.paged = r.paged || more;
      el.reportBody.replaceChildren.apply(el.reportBody, r.rows.map(reportRow));
      el.reportMore.hidden = r.next == null;
    }, function (err) {
      if (!handleAuthFailure(err)) showError('Laporan gagal dimuat: ' + (err.message || err));
    });
  }

  el.reportMore.addEventListener('click', function () { loadReport(true); });
  el.reportClose.addEventListener('click', function () { camp.report = null; el.campaignReport.hidden = true; });
  el.reportExport.addEventListener('click', function () {
    var r = camp.report;
    if (r) downloadCsv('/api/campaigns/' + r.id + '/recipients?format=csv', 'kampanye-' + r.id + '.csv', el.reportExport);
  });

  if (window.IntersectionObserver) {
    new IntersectionObserver(function (entries) {
      var seen = entries[entries.length - 1].isIntersecting;
      if (seen === camp.visible) return;
      camp.visible = seen;
      if (seen && state.token) loadCampaigns(); else pollCampaigns();
    }).observe($('kampanye'));
  } else {
    camp.visible = true;
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && camp.visible && state.token) loadCampaigns(); else pollCampaigns();
  });

  // ---------- new campaign ----------

  var NUMBER_COLUMNS = ['nomor', 'number', 'phone', 'no_hp'];
  var NAME_COLUMNS = ['nama', 'name'];

  // RFC 4180 cells (quotes, "" inside quotes, line breaks in a quoted cell); a spreadsheet's semicolons too.
  function parseCsv(text) {
    text = text.replace(/^\uFEFF/, '');
    var first = text.split(/\r?\n/, 1)[0];
    var sep = first.split(';').length > first.split(',').length ? ';' : ',';
    var rows = [];
    var cells = [];
    var cell = '';
    var quoted = false;
    for (var i = 0; i < text.length; i += 1) {
      var c = text.charAt(i);
      if (quoted) {
        if (c !== '"') cell += c;
        else if (text.charAt(i + 1) === '"') { cell += '"'; i += 1; } else quoted = false;
      } else if (c === '"') quoted = true;
      else if (c === sep) { cells.push(cell); cell = ''; }
      else if (c === '\n' || c === '\r') {
        if (c === '\r' && text.charAt(i + 1) === '\n') i += 1;
        cells.push(cell); rows.push(cells); cells = []; cell = '';
      } else cell += c;
    }
    if (cell !== '' || cells.length) { cells.push(cell); rows.push(cells); }
    return rows.filter(function (r) { return r.some(function (x) { return x.trim() !== ''; }); });
  }

  function campaignSource() { return el.campaignForm.querySelector('input[name="cf-source"]:checked').value; }

  // Which column gives a value, unless the admin picks another: the one named like the placeholder
  // (nama, periode, 1, 2 …), tombol1… for buttons, url / filename for a header's file.
  function defaultColumn(slot) {
    return slot.part === 'button' ? 'tombol' + (slot.key + 1) : String(slot.key).toLowerCase();
  }

  // A column <select> per value of `t`; returns, for a CSV row, the valueOf templateValues reads.
  function columnFields(box, t, header, onChange) {
    var selects = {};
    box.replaceChildren.apply(box, [].concat.apply([], slotsOf(t).map(function (slot, i) {
      var select = h('select');
      select.id = 'cf-column-' + i;
      select.setAttribute('data-testid', 'cf-column');
      select.setAttribute('data-slot', slotId(slot));
      var none = h('option', null, '— tidak ada —');
      none.value = '';
      select.appendChild(none);
      header.forEach(function (name, col) {
        var o = h('option', null, 'Kolom ' + name);
        o.value = String(col);
        select.appendChild(o);
      });
      var guess = header.indexOf(defaultColumn(slot));
      select.value = guess < 0 ? '' : String(guess);
      select.addEventListener('change', onChange);
      selects[slotId(slot)] = select;
      var label = h('label', null, slot.label + ' dari');
      label.htmlFor = select.id;
      return [label, select];
    })));
    return function (cells) {
      return function (slot) {
        var select = selects[slotId(slot)];
        return select && select.value !== '' ? cells[Number(select.value)] || '' : '';
      };
    };
  }

  function campaignTemplate() {
    var id = el.cfTemplate.value;
    return camp.templates.filter(function (t) { return templateId(t) === id; })[0] || null;
  }

  function loadCampaignTemplates() {
    return offerTemplates(el.cfAccount, el.cfTemplate, function (approved, changed) {
      camp.templates = approved;
      if (changed || !camp.template) chooseCampaignTemplate();
    });
  }

  function chooseCampaignTemplate() {
    camp.template = campaignTemplate();
    if (camp.template) camp.valueOf = valueFields(el.cfValues, camp.template, 'cf', renderCampaignDraft);
    else el.cfValues.replaceChildren();
    mapColumns();
  }

  function mapColumns() {
    var csv = camp.csv;
    camp.columnOf = csv && camp.template ? columnFields(el.cfColumns, camp.template, csv.header, renderCampaignDraft) : null;
    if (!camp.columnOf) el.cfColumns.replaceChildren();
    renderCampaignDraft();
  }

  function readCampaignCsv(file) {
    file.text().then(function (text) {
      var rows = parseCsv(text);
      var header = (rows.shift() || []).map(function (x) { return x.trim().toLowerCase(); });
      var pick = function (names) { return header.map(function (x, i) { return names.indexOf(x) >= 0 ? i : -1; }).filter(function (i) { return i >= 0; })[0]; };
      camp.csv = { file: file.name, header: header, rows: rows, number: pick(NUMBER_COLUMNS), name: pick(NAME_COLUMNS) };
      mapColumns();
    });
  }

  // The recipients of the CSV in the API's shape: each row's number, name and values.
  function csvRecipients() {
    var csv = camp.csv;
    return csv.rows.map(function (cells) {
      var r = templateValues(camp.template, camp.columnOf(cells));
      r.to = (cells[csv.number] || '').trim();
      var name = csv.name == null ? '' : (cells[csv.name] || '').trim();
      if (name) r.name = name;
      return r;
    });
  }

  function renderCampaignDraft() {
    var byTag = campaignSource() === 'tag';
    el.cfCsvBox.hidden = byTag;
    el.cfTagBox.hidden = !byTag;
    el.cfAt.disabled = el.campaignForm.querySelector('input[name="cf-when"]:checked').value !== 'at';
    var t = camp.template;
    var csv = camp.csv;
    var summary = '';
    if (csv && csv.number == null) summary = 'Tidak ada kolom nomor (nomor, number, phone atau no_hp).';
    else if (csv) summary = csv.file + ': ' + num(csv.rows.length) + ' penerima';
    el.cfCsvSummary.textContent = summary;
    el.cfCsvSummary.className = 'send-hint' + (csv && csv.number == null ? ' bad' : '');
    var valueOf = null;
    var who = '';
    if (t && byTag && camp.valueOf) {
      valueOf = function (slot) { return String(camp.valueOf(slot) || '').replace(/\{nama\}|\{name\}/g, 'Nama Kontak'); };
      who = '· contoh satu kontak';
    } else if (t && csv && csv.rows.length && camp.columnOf) {
      valueOf = camp.columnOf(csv.rows[0]);
      who = '· penerima pertama' + (csv.number != null ? ' (' + (csv.rows[0][csv.number] || '').trim() + ')' : '');
    }
    el.cfPreviewWho.textContent = who;
    el.cfPreview.replaceChildren(t ? templatePreview(t, valueOf || function () { return ''; })
      : h('span', 'muted', 'Pilih template untuk melihat pratinjaunya.'));
    el.cfSubmit.disabled = camp.busy || !t || !el.cfName.value.trim() ||
      (byTag ? !el.cfTag.value.trim() : !(csv && csv.number != null && csv.rows.length));
  }

  function campaignBody() {
    var t = camp.template;
    var body = { name: el.cfName.value.trim(), template: { name: t.name, language: t.language } };
    if (!el.cfAccountBox.hidden && el.cfAccount.value) body.account = el.cfAccount.value;
    if (campaignSource() === 'tag') {
      body.tag = el.cfTag.value.trim();
      body.values = templateValues(t, camp.valueOf);
    } else {
      body.recipients = csvRecipients();
    }
    // "2026-12-07T09:00" from the picker, read by the server in the hours' zone
    if (!el.cfAt.disabled && el.cfAt.value) body.schedule_at = el.cfAt.value.replace('T', ' ');
    if (el.cfHours.value.trim()) body.hours = el.cfHours.value.trim();
    var holidays = el.cfHolidays.value.split(/[\s,]+/).filter(Boolean);
    if (holidays.length) body.holidays = holidays;
    if (el.cfRate.value !== '') body.rate_per_second = Number(el.cfRate.value);
    return body;
  }

  function createCampaign() {
    if (camp.busy || el.cfSubmit.disabled) return;
    var body = campaignBody();
    if (!camp.key) camp.key = randomKey();
    body.idempotency_key = camp.key;
    var fromCsv = !!body.recipients;
    camp.busy = true;
    el.cfSubmit.disabled = true;
    el.cfProblems.hidden = true;
    el.cfResult.hidden = true;
    api('/api/campaigns', { method: 'POST', body: body, timeoutMs: 120000 })
      .then(function (c) {
        var extra = [];
        if (c.duplicatesDropped) extra.push(num(c.duplicatesDropped) + ' nomor ganda dibuang');
        if (c.optedOutLeftOut) extra.push(num(c.optedOutLeftOut) + ' kontak menolak promosi tidak diikutkan');
        el.cfResult.textContent = 'Kampanye “' + c.name + '” dibuat untuk ' + num(c.total) + ' penerima' +
          (extra.length ? ' (' + extra.join(', ') + ')' : '') + '.';
        el.cfResult.hidden = false;
        camp.key = null;
        return loadCampaigns();
      }, function (err) {
        if (handleAuthFailure(err)) return;
        // recipients[0] is the CSV's line 2 (line 1 holds the column names)
        showRefusal(el.cfProblems, err, fromCsv ? function (p) {
          return p.replace(/^recipients\[(\d+)\]/, function (all, i) { return 'Baris ' + (Number(i) + 2); });
        } : null);
      })
      .then(function () { camp.busy = false; renderCampaignDraft(); });
  }

  el.campaignForm.addEventListener('submit', function (e) { e.preventDefault(); createCampaign(); });
  // a changed draft is another campaign; the same one sent again (after a lost answer) is made once
  el.campaignForm.addEventListener('input', function () { camp.key = null; renderCampaignDraft(); });
  el.campaignForm.addEventListener('change', function (e) {
    if (e.target === el.cfTemplate) chooseCampaignTemplate();
    else if (e.target === el.cfAccount) loadCampaignTemplates();
    else if (e.target === el.cfFile && el.cfFile.files && el.cfFile.files[0]) readCampaignCsv(el.cfFile.files[0]);
  });
  renderCampaignDraft();

  // ---------- start ----------

  var saved = null;
  try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (e) { saved = null; }
  if (saved) {
    el.loginView.hidden = true;
    tryLogin(saved, true);
  } else {
    showLogin('');
  }
})();
