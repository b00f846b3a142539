// The admin page shows what the documents do not answer: the eval.jsonl recall of the live index with its
// misses, and the unanswered questions grouped by wording, which "Selesai" dismisses.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ADMIN_TOKEN, launchBrowser, newPage, screenshot, signInAdmin, startServer, until } from './harness.mjs';

const DOCUMENT = '# Panduan Klinik\n\n## Biaya\n\nBiaya konsultasi dokter umum adalah Rp 75.000 per kunjungan.\n';
const EVAL = [
  { question: 'brp biaya konsultasi dokter umum?', expected: 'Rp 75.000' },
  { question: 'ada parkir mobil?', expected: 'parkir mobil' },
].map((line) => JSON.stringify(line)).join('\n') + '\nnot json\n';
const PARKING = ['ada parkir motor gak?', 'Parkir motor ada kak?'];

let server;
let browser;
let knowledgeDir;

/** Asks `text` in a web chat of its own and waits for the bot's answer. */
async function ask(phone, text) {
  const started = await fetch(server.baseUrl + '/api/chat/conversations', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ phone }),
  });
  assert.equal(started.status, 201);
  const auth = { authorization: 'Bearer ' + (await started.json()).secret };
  const sent = await fetch(server.baseUrl + '/api/chat/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ text, clientId: randomUUID() }),
  });
  assert.equal(sent.status, 202);
  await until(async () => {
    const history = await (await fetch(`${server.baseUrl}/api/chat/history`, { headers: auth })).json();
    return history.messages.some((m) => m.from === 'bot');
  }, { timeoutMs: 30_000, what: `the answer to ${text}` });
}

async function unanswered() {
  const res = await fetch(server.baseUrl + '/api/admin/unanswered', { headers: { authorization: 'Bearer ' + ADMIN_TOKEN } });
  assert.equal(res.status, 200);
  return res.json();
}

before(async () => {
  knowledgeDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wa-browser-knowledge-'));
  await fsp.writeFile(path.join(knowledgeDir, 'klinik.md'), DOCUMENT);
  await fsp.writeFile(path.join(knowledgeDir, 'eval.jsonl'), EVAL);
  server = await startServer({ name: 'quality-server', env: { KNOWLEDGE_DIR: knowledgeDir } });
  browser = await launchBrowser();
  await ask('6285712340071', PARKING[0]);
  await ask('6285712340072', PARKING[1]);
  await until(async () => (await unanswered()).questions === 2, { what: 'two unanswered questions recorded' });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (knowledgeDir) await fsp.rm(knowledgeDir, { recursive: true, force: true });
});

test('admin: eval recall with its misses, unanswered questions grouped and dismissed', { timeout: 120_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await page.goto(server.baseUrl + '/admin');
  await signInAdmin(page);

  const evalBox = page.getByTestId('eval-box');
  await evalBox.waitFor({ state: 'visible' });
  assert.match(await evalBox.getByTestId('eval-recall').innerText(), /2 pertanyaan · ketemu di 4 teratas 50%/);
  const misses = evalBox.getByTestId('eval-miss');
  assert.equal(await misses.count(), 1);
  assert.match(await misses.first().innerText(), /ada parkir mobil\?.*parkir mobil/);
  assert.match(await evalBox.innerText(), /baris 3: /, 'the line that is not JSON is named');

  const groups = page.getByTestId('unanswered-list').getByTestId('unanswered-group');
  await until(async () => (await groups.count()) === 1, { what: 'one group of unanswered questions' });
  const group = groups.first();
  const text = await group.innerText();
  assert.match(text, /2×/, 'both wordings counted in one group');
  assert.ok(PARKING.some((q) => text.includes(q)), text);
  assert.match(text, /tak ada yang cocok/);
  assert.ok(!(await page.locator('body').innerText()).includes('6285712340071'), 'the full number appears nowhere');
  await page.locator('#tak-terjawab').scrollIntoViewIfNeeded();
  await screenshot(page, 'admin-unanswered');

  await group.getByRole('button', { name: 'Selesai' }).click();
  await until(async () => (await groups.count()) === 0, { what: 'the dismissed group gone' });
  assert.match(await page.getByTestId('unanswered-list').innerText(), /Belum ada pertanyaan tak terjawab/);
  assert.equal((await unanswered()).questions, 0, 'dismissed on the server too');

  assert.deepEqual(problems, []);
  await context.close();
});
