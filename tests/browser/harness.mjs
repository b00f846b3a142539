// Shared helpers for the browser tests: free ports, a fake OpenRouter, the server binary, Chromium.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WA_BIN = process.env.WA_BIN || path.join(REPO_ROOT, 'target', 'release', 'wa-ai-bridge');
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.join(REPO_ROOT, 'target', 'browser-screenshots');
/** When set, tests run against an already running server (e.g. a mock) instead of starting WA_BIN. */
export const EXTERNAL_BASE_URL = process.env.WA_BASE_URL ? process.env.WA_BASE_URL.replace(/\/+$/, '') : null;
export const ADMIN_TOKEN = process.env.WA_ADMIN_TOKEN || 'browser-test-token';
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });

const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(130));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** True when something accepts connections on 127.0.0.1:port. */
export function portInUse(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
    sock.setTimeout(1000, () => { sock.destroy(); resolve(false); });
  });
}

/**
 * A fake OpenRouter chat-completions endpoint. The reply is deterministic:
 * "Jawaban uji: " + the last user message with "\n" replaced by " | ".
 * It answers after delayMs, longer than the server's delay before "typing…" (0.5 s),
 * so the typing event really goes out.
 */
export async function startFakeOpenRouter({ delayMs = Number(process.env.FAKE_LLM_DELAY_MS ?? 2000) } = {}) {
  const requests = [];
  const transcriptions = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.method === 'POST' && req.url.endsWith('/audio/transcriptions')) {
        transcriptions.push({ at: Date.now(), bytes: body.length });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ text: 'rekaman uji', usage: { seconds: 2 } }));
        return;
      }
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"not found"}}');
        return;
      }
      let parsed = null;
      try { parsed = JSON.parse(body); } catch { /* counted anyway */ }
      requests.push({ at: Date.now(), body: parsed, headers: req.headers });
      const messages = parsed && Array.isArray(parsed.messages) ? parsed.messages : [];
      const lastUser = [...messages].reverse().find((m) => m && m.role === 'user');
      // A turn with photos comes as content parts: their words, and how many images were seen.
      const parts = lastUser && Array.isArray(lastUser.content) ? lastUser.content : null;
      const text = parts
        ? parts.filter((p) => p && p.type === 'text').map((p) => p.text).join('\n')
        : (lastUser && typeof lastUser.content === 'string' ? lastUser.content : '');
      const images = parts ? parts.filter((p) => p && p.type === 'image_url').length : 0;
      const content = 'Jawaban uji: ' + text.replace(/\n/g, ' | ') + (images ? ` [+${images} gambar]` : '');
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          id: 'fake-' + requests.length,
          object: 'chat.completion',
          created: 0,
          model: 'fake/model',
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        }));
      }, delayMs);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}/api/v1/chat/completions`,
    requests,
    transcriptions,
    get count() { return requests.length; },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

const FAKE_PHONE_NUMBER_ID = '100000000000001';
const FAKE_BUSINESS_ACCOUNT_ID = '200000000000002';

/**
 * A fake WhatsApp Cloud API (Graph) `/messages` endpoint. Read receipts and typing indicators are always
 * accepted; a text is refused with HTTP 400 and Graph error `refuseCode` while that is set (a permanent
 * refusal for the outbox), and accepted with a fresh wamid otherwise. `texts` holds every text body it
 * accepted, in order, `refused` counts refusals. With `templates` (Graph's template objects) it is also the
 * business account: it lists them at `GET /v23.0/{waba}/message_templates` and accepts template sends,
 * kept whole in `templateSends`. Its `env` points the server at it (with the access token and phone number id).
 */
export async function startFakeGraph({ refuseCode = null, templates = null } = {}) {
  const texts = [];
  const templateSends = [];
  let refused = 0;
  let refusing = refuseCode;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let parsed = null;
      try { parsed = JSON.parse(body); } catch { /* answered below */ }
      const answer = (status, json) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(json)); };
      if (templates && req.method === 'GET' && req.url.startsWith(`/v23.0/${FAKE_BUSINESS_ACCOUNT_ID}/message_templates`)) {
        answer(200, { data: templates });
      } else if (req.method !== 'POST' || !req.url.endsWith('/messages') || !parsed) {
        answer(404, { error: { code: 100, message: 'unsupported request' } });
      } else if (parsed.type === 'template') {
        templateSends.push(parsed);
        answer(200, { messaging_product: 'whatsapp', contacts: [{ wa_id: parsed.to }], messages: [{ id: `wamid.fake.t${templateSends.length}` }] });
      } else if (parsed.type !== 'text') {
        answer(200, { success: true });
      } else if (refusing != null) {
        refused += 1;
        answer(400, { error: { code: refusing, message: `Graph error ${refusing}`, type: 'OAuthException' } });
      } else {
        texts.push(parsed.text?.body);
        answer(200, { messaging_product: 'whatsapp', contacts: [{ wa_id: parsed.to }], messages: [{ id: `wamid.fake.${texts.length}` }] });
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    texts,
    templateSends,
    get refused() { return refused; },
    env: {
      WHATSAPP_GRAPH_BASE: `http://127.0.0.1:${port}`,
      META_ACCESS_TOKEN: 'fake-graph-token',
      META_PHONE_NUMBER_ID: FAKE_PHONE_NUMBER_ID,
      ...(templates ? { META_BUSINESS_ACCOUNT_ID: FAKE_BUSINESS_ACCOUNT_ID } : {}),
    },
    refuse(code) { refusing = code; },
    accept() { refusing = null; },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

/** POSTs a WhatsApp text webhook, signed with appSecret as Meta does (X-Hub-Signature-256). */
export async function sendWhatsAppText(baseUrl, appSecret, { from, id, text }) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550001111', phone_number_id: FAKE_PHONE_NUMBER_ID },
      contacts: [{ profile: { name: 'Uji' }, wa_id: from }],
      messages: [{ from, id, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
    } }] }],
  });
  const signature = 'sha256=' + createHmac('sha256', appSecret).update(body).digest('hex');
  return fetch(baseUrl + '/webhook/whatsapp', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
    body,
  });
}

/**
 * Polls GET /api/whatsapp/status until the knowledge index is loaded, so the first question is answered from
 * the documents. (GET /ready stays 503 until WhatsApp is configured, which a browser test never does.)
 * Fails early if the process exits.
 */
export async function waitReady(baseUrl, { timeoutMs = 120_000, proc = null, logFile = null } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) {
      throw new Error(`server exited with code ${proc.exitCode} before it was ready${logFile ? ` (log: ${logFile})` : ''}`);
    }
    try {
      const res = await fetch(baseUrl + '/api/whatsapp/status', { signal: AbortSignal.timeout(3000) });
      const body = await res.text().catch(() => '');
      if (res.status === 200 && JSON.parse(body).knowledgeBase?.loaded === true) return;
      last = `HTTP ${res.status} ${body.slice(0, 400)}`;
    } catch (err) {
      last = err.cause?.code || err.message;
    }
    await sleep(300);
  }
  throw new Error(`${baseUrl} did not load its knowledge index within ${timeoutMs / 1000}s (last: ${last})${logFile ? `; log: ${logFile}` : ''}`);
}

function baseEnv() {
  // Only what a process needs to run; nothing stray (META_*, WHATSAPP_*, OPENROUTER_*, DATABASE_URL, ...).
  const env = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'RUST_LOG', 'RUST_BACKTRACE']) {
    if (process.env[key] !== undefined) env[key] = process.env[key];
  }
  return env;
}

/**
 * Starts the wa-ai-bridge binary with a fresh DATA_DIR and a fake OpenRouter,
 * or, when WA_BASE_URL is set, just points at that server.
 * Returns { baseUrl, fake, dataDir, logFile, external, stop() }.
 */
export async function startServer({ name = 'server', env: extraEnv = {}, withFakeLlm = true } = {}) {
  if (EXTERNAL_BASE_URL) {
    // someone else started it: it only has to answer
    await until(async () => (await fetch(EXTERNAL_BASE_URL + '/api/chat/config')).ok,
      { timeoutMs: 10_000, what: `${EXTERNAL_BASE_URL}/api/chat/config` });
    return { baseUrl: EXTERNAL_BASE_URL, fake: null, external: true, logFile: null, stop: async () => {} };
  }
  if (!fs.existsSync(WA_BIN)) {
    throw new Error(`server binary not found at ${WA_BIN}: build it (cargo build --release) or set WA_BIN / WA_BASE_URL`);
  }
  const fake = withFakeLlm ? await startFakeOpenRouter() : null;
  const port = await freePort();
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wa-browser-data-'));
  const env = {
    ...baseEnv(),
    PORT: String(port),
    DATA_DIR: dataDir,
    KNOWLEDGE_DIR: path.join(REPO_ROOT, 'knowledge'),
    PROMPTS_DIR: path.join(REPO_ROOT, 'prompts'),
    MESSAGE_BUFFER_SECONDS: '1',
    ADMIN_API_TOKEN: ADMIN_TOKEN,
    ...(fake ? { OPENROUTER_API_KEY: 'test-key', OPENROUTER_URL: fake.url } : {}),
    ...extraEnv,
  };
  const logFile = path.join(SCREENSHOT_DIR, `${name}.log`);
  const proc = spawnLogged(WA_BIN, [], { cwd: dataDir, env }, logFile);
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopProcess(proc);
    if (fake) await fake.close();
    await fsp.rm(dataDir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    await waitReady(baseUrl, { timeoutMs: 120_000, proc, logFile });
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl, fake, dataDir, logFile, external: false, proc, stop };
}

/** Spawns a process whose stdout and stderr go to logFile; it is killed when the test process exits. */
export function spawnLogged(bin, args, options, logFile) {
  const log = fs.openSync(logFile, 'w');
  const proc = spawn(bin, args, { ...options, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  proc.on('error', (err) => fs.appendFileSync(logFile, `\n[harness] spawn failed: ${err.message}\n`));
  return proc;
}

/** SIGTERM, then SIGKILL after graceMs. */
export async function stopProcess(proc, graceMs = 15_000) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
  await exited;
  clearTimeout(timer);
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync',
      // A microphone that plays a tone, granted without a prompt: the web chat's voice button records it.
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    ],
  });
}

/**
 * A page that fails the test on page errors and records any request leaving baseUrl
 * (the pages must not load anything external).
 */
export async function newPage(browser, baseUrl, { width = 1280, height = 860, mobile = false } = {}) {
  const context = await browser.newContext({
    viewport: { width, height },
    deviceScaleFactor: 1,
    isMobile: mobile,
    hasTouch: mobile,
    locale: 'id-ID',
    timezoneId: 'Asia/Jakarta',
  });
  const page = await context.newPage();
  const problems = [];
  const origin = new URL(baseUrl).origin;
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error' && !/ERR_|net::|EventSource|Failed to load resource/.test(msg.text())) problems.push(`console error: ${msg.text()}`); });
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.push(`external request: ${u}`);
  });
  return { context, page, problems };
}

export async function screenshot(page, name) {
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/** Logs in to the admin page that `page` shows, and waits for the status cards. */
export async function signInAdmin(page) {
  await page.getByTestId('token-input').fill(ADMIN_TOKEN);
  await page.getByTestId('login-button').click();
  await until(async () => (await page.getByTestId('status-cards').innerText()).includes('Basis pengetahuan'), { what: 'dashboard' });
}

/** Polls fn until it returns a truthy value. */
export async function until(fn, { timeoutMs = 30_000, intervalMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) { lastErr = err; }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
}

/** Records, inside the page, every moment the typing indicator becomes visible. */
export async function recordTyping(page) {
  await page.addInitScript(() => {
    window.__typingSeen = 0;
    const check = () => {
      const el = document.querySelector('[data-testid="typing-indicator"]');
      if (el && !el.hidden && el.offsetParent !== null) window.__typingSeen += 1;
    };
    const start = () => {
      new MutationObserver(check).observe(document.documentElement, { subtree: true, attributes: true, childList: true, attributeFilter: ['hidden', 'class', 'style'] });
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
  });
}
