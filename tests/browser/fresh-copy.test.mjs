// A fresh copy of the repository, the release binary, an EMPTY environment: the web chat answers from the documents.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  EXTERNAL_BASE_URL, REPO_ROOT, SCREENSHOT_DIR, WA_BIN, launchBrowser, newPage, portInUse, screenshot,
  spawnLogged, stopProcess, until, waitReady,
} from './harness.mjs';

const PORT = 3000; // the default, since the environment is empty
const BASE = `http://127.0.0.1:${PORT}`;
const QUESTION = 'berapa biaya konsultasi dokter umum?';

let copyDir;
let proc;
let browser;

async function copyTrackedFiles(dest) {
  const out = execFileSync('git', ['-C', REPO_ROOT, 'ls-files', '-z'], { maxBuffer: 64 * 1024 * 1024 });
  const files = out.toString('utf8').split('\0').filter(Boolean);
  let copied = 0;
  for (const rel of files) {
    const from = path.join(REPO_ROOT, rel);
    let st;
    try { st = await fsp.lstat(from); } catch { continue; } // deleted in the working tree
    if (!st.isFile() && !st.isSymbolicLink()) continue;
    const to = path.join(dest, rel);
    await fsp.mkdir(path.dirname(to), { recursive: true });
    await fsp.cp(from, to, { verbatimSymlinks: true });
    copied += 1;
  }
  return copied;
}

before(async () => {
  if (EXTERNAL_BASE_URL) return;
  assert.ok(fs.existsSync(WA_BIN), `server binary not found at ${WA_BIN}: run cargo build --release or set WA_BIN`);
  assert.equal(await portInUse(PORT), false,
    `127.0.0.1:${PORT} is already in use; this test starts the binary with an empty environment, so it must get the default port ${PORT}. Stop whatever listens there and run again.`);
  copyDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wa-fresh-copy-'));
  const n = await copyTrackedFiles(copyDir);
  assert.ok(n > 0, 'git ls-files listed no files');
  assert.ok(fs.existsSync(path.join(copyDir, 'knowledge')), 'knowledge/ copied');
  const logFile = path.join(SCREENSHOT_DIR, 'fresh-copy-server.log');
  proc = spawnLogged(WA_BIN, [], { cwd: copyDir, env: {} }, logFile);
  await waitReady(BASE, { timeoutMs: 120_000, proc, logFile });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopProcess(proc);
  if (copyDir) await fsp.rm(copyDir, { recursive: true, force: true }).catch(() => {});
});

test('fresh copy, empty environment: the chat answers from the documents with sources', { timeout: 300_000, skip: EXTERNAL_BASE_URL ? 'WA_BASE_URL is set: this test starts the binary itself' : false }, async () => {
  const { page, context, problems } = await newPage(browser, BASE, { width: 1000, height: 860 });
  await page.goto(BASE + '/');
  await until(async () => (await page.locator('#bot-status').textContent()) === 'online', { what: 'event stream connected' });

  const notice = page.getByTestId('mode-notice');
  assert.ok(await notice.isVisible(), 'no API key: the "Mode tanpa AI" notice is shown');
  assert.match(await notice.innerText(), /Mode tanpa AI: jawaban diambil langsung dari dokumen\./);

  const input = page.getByTestId('message-input');
  await input.fill(QUESTION);
  await input.press('Enter');
  await until(async () => (await page.locator('[data-testid="bubble-customer"][data-status="sent"]').count()) === 1, { what: 'message sent (202)' });

  const bot = page.getByTestId('bubble-bot').first();
  await bot.waitFor({ state: 'visible', timeout: 60_000 });
  const text = (await bot.innerText()).replace(/^Bot:\s*/, '').trim();
  assert.ok(text.startsWith('Berikut informasi dari dokumen kami'), `offline answer: ${text.slice(0, 200)}`);
  const sources = page.getByTestId('sources').last();
  await sources.waitFor({ state: 'visible', timeout: 15_000 });
  assert.ok((await sources.getByTestId('source-item').count()) >= 1, 'at least one source');
  await screenshot(page, 'fresh-copy-offline-answer');
  assert.deepEqual(problems, []);
  await context.close();
});
