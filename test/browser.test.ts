// The playground and /docs in a real browser (Debian's Chromium driven by playwright-core) against the real server.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';

const CHROMIUM = '/usr/bin/chromium';
// What the page shows can lag far behind on a loaded machine: wait on it generously (and check often).
const WAIT = { timeout: 20_000, interval: 50 };
vi.setConfig({ testTimeout: 90_000 });
const hasChromium = existsSync(CHROMIUM);
const SKIP_REASON = `${CHROMIUM} is missing (apt-get install -y chromium)`;
if (!hasChromium) process.stderr.write(`[browser tests] skipped: ${SKIP_REASON}\n`);

const ARTIFACTS = join(process.cwd(), 'artifacts', 'playground');
const SECRET = 'browser-test-jwt-secret-0123456789';
// About 2 s of reply: 40 words 50 ms apart, with some Markdown in it.
const REPLY = [
  '**Importante:** ',
  ...Array.from({ length: 39 }, (_, i) => `palavra${i}${i % 10 === 9 ? '\n\n' : ' '}`),
];
const LONG_REPLY = Array.from({ length: 120 }, (_, i) => `termo${i}${i % 12 === 11 ? '\n\n' : ' '}`);

let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
let app: FastifyInstance;
let base: string;
let context: BrowserContext;
let profile: string;
let page: Page;

// What a reader sees of Markdown: the text without its markup and layout whitespace.
const normalize = (s: string) => s.replace(/\*\*/g, '').replace(/\s+/g, '');

async function history(sessionId: string, token?: string) {
  const r = await fetch(`${base}/api/v1/chat/history/${sessionId}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  expect(r.status).toBe(200);
  return (await r.json()) as {
    messages: Array<{ id: string; role: string; content: string; status: string }>;
  };
}

const sessionOf = (p: Page) =>
  p.evaluate(() =>
    (
      globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }
    ).sessionStorage.getItem('pg.session'),
  ) as Promise<string>;
const text = async (l: { textContent(): Promise<string | null> }) => (await l.textContent()) ?? '';
const lastAssistant = (p: Page) => p.locator('.msg.assistant').last();

/** Clears the pasted token (the page is anonymous again). */
async function signOut(p: Page) {
  await p.fill('#token', '');
  await p.locator('#token').dispatchEvent('change');
  await expect.poll(() => text(p.locator('#whoami')), WAIT).toBe('anônimo');
}

/** Sends a message and waits for its reply bubble (a fast reply may already be complete). */
async function send(p: Page, message: string) {
  const before = await p.locator('.msg.assistant').count();
  await p.fill('#message', message);
  await p.click('#send');
  await expect.poll(() => p.locator('.msg.assistant').count(), WAIT).toBe(before + 1);
}

async function shot(p: Page, name: string) {
  await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describe.skipIf(!hasChromium)(
  `playground and docs in Chromium${hasChromium ? '' : ` (skipped: ${SKIP_REASON})`}`,
  () => {
    beforeAll(async () => {
      mkdirSync(ARTIFACTS, { recursive: true });
      tdb = await createTestDb();
      fake = await startFakeModel({ tokens: REPLY, delayMs: 50 });
      app = await createTestApp({
        db: tdb.handle,
        redis,
        model: fakeProvider(fake),
        env: { JWT_SECRET: SECRET, CHECKPOINT_MS: '100', RATE_LIMIT_CHAT_PER_MINUTE: '1000' },
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
      profile = mkdtempSync(join(tmpdir(), 'pg-chromium-'));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
          '--disable-sync',
        ],
        viewport: { width: 1280, height: 900 },
      });
      page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`${base}/playground`);
      await page.waitForSelector('body[data-ready="true"]');
    }, 120_000);

    afterAll(async () => {
      await context?.close();
      if (profile) rmSync(profile, { recursive: true, force: true });
      await app?.close();
      await fake?.close();
      await redis?.close();
      await tdb?.drop();
    });

    it('streams a reply incrementally, renders its Markdown, and shows what history stores', async () => {
      expect(await page.locator('#agent option').count()).toBeGreaterThan(10);
      await page.selectOption('#agent', 'zumbi');
      await send(page, 'Quais contratos merecem atenção?');
      // Sample the visible text while it streams: it must grow in several steps, not arrive at once.
      const lengths = new Set<number>();
      const reply = lastAssistant(page);
      while (!(await reply.evaluate((el) => el.classList.contains('completed')))) {
        lengths.add((await text(reply.locator('.body'))).length);
        await page.waitForTimeout(40);
      }
      // At least two different partial texts were on screen before the reply was complete.
      const full = (await text(reply.locator('.body'))).length;
      expect([...lengths].filter((n) => n > 0 && n < full).length).toBeGreaterThanOrEqual(2);
      await expect.poll(() => text(reply.locator('.body strong').first()), WAIT).toBe('Importante:');
      await shot(page, '1-chat-complete');

      const messageId = (await reply.getAttribute('data-message-id'))!;
      const stored = (await history(await sessionOf(page))).messages.find((m) => m.id === messageId)!;
      expect(stored).toMatchObject({ role: 'assistant', status: 'completed' });
      expect(stored.content).toBe(REPLY.join(''));
      expect(normalize(await text(reply.locator('.body')))).toBe(normalize(stored.content));
      expect(await text(reply.locator('.meta'))).toMatch(/Zumbi/);
    });

    it('resumes a reply after a reload mid-stream, after the saved cursor, with no text twice', async () => {
      fake.setScript({ tokens: LONG_REPLY, delayMs: 40 });
      await send(page, 'Conte uma história longa');
      const reply = lastAssistant(page);
      const messageId = (await reply.getAttribute('data-message-id'))!;
      await expect.poll(async () => (await text(reply.locator('.body'))).length, WAIT).toBeGreaterThan(60);
      const resumes: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes(`/api/v1/chat/stream/${messageId}`)) resumes.push(r.url());
      });
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      const again = page.locator(`.msg[data-message-id="${messageId}"]`);
      await expect.poll(() => again.getAttribute('class'), WAIT).toMatch(/completed/);
      await shot(page, '2-chat-resumed');
      expect(resumes).toHaveLength(1);
      expect(resumes[0]).toMatch(/\?after=\d+-\d+$/);
      expect(await page.locator(`.msg[data-message-id="${messageId}"]`).count()).toBe(1);
      const stored = (await history(await sessionOf(page))).messages.find((m) => m.id === messageId)!;
      expect(stored.content).toBe(LONG_REPLY.join(''));
      expect(normalize(await text(again.locator('.body')))).toBe(normalize(stored.content));
      // The earlier turn of this session is still shown once, above it.
      expect(await page.locator('.msg.user').count()).toBe(2);
      // The investigations panel stays hidden while the chat tab is open.
      expect(await page.locator('#investigations').isVisible()).toBe(false);
    });

    it('stops a reply; the page shows exactly what was stored as stopped', async () => {
      fake.setScript({ tokens: LONG_REPLY, delayMs: 40 });
      await send(page, 'Outra história longa, por favor');
      const reply = lastAssistant(page);
      await expect.poll(async () => (await text(reply.locator('.body'))).length, WAIT).toBeGreaterThan(30);
      await page.click('#stop');
      await expect.poll(() => reply.getAttribute('class'), WAIT).toMatch(/stopped/);
      await shot(page, '3-chat-stopped');
      const messageId = (await reply.getAttribute('data-message-id'))!;
      const stored = (await history(await sessionOf(page))).messages.find((m) => m.id === messageId)!;
      expect(stored.status).toBe('stopped');
      expect(stored.content.length).toBeLessThan(LONG_REPLY.join('').length);
      expect(normalize(await text(reply.locator('.body')))).toBe(normalize(stored.content));
      expect(await page.locator('#stop').isDisabled()).toBe(true);
    });

    it('renders model output as text, never as markup (HTML is escaped before Markdown)', async () => {
      fake.setScript({
        tokens: [
          '<img src=x onerror="window.__xss=1"> ',
          '[clique](javascript:window.__xss=2) ',
          '[fonte](https://portaldatransparencia.gov.br) ',
          '`<b>código</b>` ',
          '<script>window.__xss=3</script>',
        ],
        delayMs: 5,
      });
      await send(page, 'Mostre HTML');
      const reply = lastAssistant(page);
      await expect.poll(() => reply.getAttribute('class'), WAIT).toMatch(/completed/);
      const body = reply.locator('.body');
      expect(await body.locator('img, script, b').count()).toBe(0);
      expect(await body.locator('a').count()).toBe(1);
      expect(await body.locator('a').getAttribute('href')).toBe('https://portaldatransparencia.gov.br');
      expect(await body.locator('a').getAttribute('rel')).toBe('noopener noreferrer');
      expect(await text(body.locator('code'))).toBe('<b>código</b>');
      expect(await text(body)).toContain('<img src=x onerror="window.__xss=1">');
      expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    });

    it('works with a pasted token: the turn belongs to that user and the session list comes from the server', async () => {
      fake.setScript({ tokens: REPLY, delayMs: 5 });
      const token = await signHS256(SECRET, { sub: 'browser-user' });
      await page.click('#new-session');
      await page.fill('#token', token);
      await page.locator('#token').dispatchEvent('change');
      await expect.poll(() => text(page.locator('#whoami')), WAIT).toContain('browser-user');
      await send(page, 'Sessão autenticada');
      await expect.poll(() => lastAssistant(page).getAttribute('class'), WAIT).toMatch(/completed/);
      const sessionId = await sessionOf(page);
      const owned = await fetch(`${base}/api/v1/chat/sessions`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const { sessions } = (await owned.json()) as { sessions: Array<{ id: string; user_id: string }> };
      expect(sessions).toEqual([expect.objectContaining({ id: sessionId, user_id: 'browser-user' })]);
      await expect
        .poll(() => page.locator('#sessions button').allInnerTexts(), WAIT)
        .toEqual(['Sessão autenticada']);
      // Anonymous readers no longer see it: it is the user's now.
      expect((await fetch(`${base}/api/v1/chat/history/${sessionId}`)).status).toBe(404);
      // Browsing: leave the conversation, then open it again from the list; its history comes back.
      await page.click('#new-session');
      expect(await page.locator('.msg').count()).toBe(0);
      await page.click(`#sessions button[data-session-id="${sessionId}"]`);
      await expect.poll(() => page.locator('.msg').count(), WAIT).toBe(2);
      expect(await text(page.locator('.msg.user .body'))).toBe('Sessão autenticada');
      expect(normalize(await text(lastAssistant(page).locator('.body')))).toBe(normalize(REPLY.join('')));
      await signOut(page);
    });

    it('runs an investigation on the sample data with a live progress bar and shows its findings', async () => {
      await signOut(page);
      await page.click('.tab[data-tab="investigations"]');
      await page.click('#inv-sample');
      await expect
        .poll(() => page.locator('#inv-run').getAttribute('data-status'), { timeout: 30_000 })
        .toBe('completed');
      await shot(page, '4-investigation');
      const id = (await page.locator('#inv-run').getAttribute('data-investigation-id'))!;
      const results = (await (await fetch(`${base}/api/v1/investigations/${id}/results`)).json()) as {
        findings: Array<{ title: string; type: string }>;
      };
      expect(results.findings.length).toBeGreaterThan(0);
      expect(await page.locator('#findings tbody tr').count()).toBe(results.findings.length);
      expect(await page.locator('#findings tbody tr td:nth-child(4)').allInnerTexts()).toEqual(
        results.findings.map((f) => f.title),
      );
      expect(
        await page.locator('#inv-progress').evaluate((el) => (el as unknown as { value: number }).value),
      ).toBe(1);
      // The bar was driven by the stream's progress events.
      expect(Number(await page.locator('#inv-run').getAttribute('data-progress-events'))).toBeGreaterThan(0);
      // Two charts (by type and by severity), one bar per distinct type.
      expect(await page.locator('#inv-charts svg').count()).toBe(2);
      const types = new Set(results.findings.map((f) => f.type));
      expect(await page.locator('#inv-charts figure').first().locator('rect').count()).toBe(types.size);
    });

    it('runs an investigation on an uploaded CSV and finds the contract whose value grew', async () => {
      const header =
        'id;objeto;orgao;orgao_codigo;fornecedor;cnpj_fornecedor;valor_inicial;valor_final;data_assinatura;modalidade';
      const lines = Array.from({ length: 30 }, (_, i) =>
        [
          `csv-${i}`,
          `Serviço de limpeza ${i}`,
          'Ministério Exemplo',
          '99001',
          `Fornecedor ${i % 6} Ltda`,
          `11.222.333/0001-${String(10 + (i % 6)).padStart(2, '0')}`,
          '100000,00',
          i === 7 ? '190000,00' : '100000,00',
          `2024-03-${String(1 + (i % 28)).padStart(2, '0')}`,
          'Pregão',
        ].join(';'),
      );
      const previous = await page.locator('#inv-run').getAttribute('data-investigation-id');
      await page.setInputFiles('#inv-csv', {
        name: 'contratos.csv',
        mimeType: 'text/csv',
        buffer: Buffer.from([header, ...lines].join('\n')),
      });
      await expect
        .poll(
          async () => {
            const run = page.locator('#inv-run');
            return `${await run.getAttribute('data-status')}:${await run.getAttribute('data-investigation-id')}`;
          },
          { timeout: 30_000 },
        )
        .toMatch(new RegExp(`^completed:(?!${previous}$)`));
      await shot(page, '5-investigation-csv');
      const id = (await page.locator('#inv-run').getAttribute('data-investigation-id'))!;
      const res = await fetch(`${base}/api/v1/investigations/${id}/results`);
      const results = (await res.json()) as {
        data_source: string;
        records_analyzed: number;
        findings: Array<{ type: string; contract_ids: string[] }>;
      };
      expect(res.status, JSON.stringify(results)).toBe(200);
      expect(results).toMatchObject({ data_source: 'upload', records_analyzed: 30 });
      expect(results.findings).toContainEqual(
        expect.objectContaining({ type: 'value_increase', contract_ids: ['csv-7'] }),
      );
      expect(await page.locator('#findings tbody tr').count()).toBe(results.findings.length);
    });

    it('loads /docs and finds every operation of the document there', async () => {
      const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
        paths: Record<string, Record<string, unknown>>;
      };
      const expected = Object.entries(doc.paths)
        .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
        .sort();
      expect(expected.length).toBeGreaterThan(20);
      const docs = await context.newPage();
      try {
        await docs.goto(`${base}/docs`);
        // Swagger UI renders the whole document client-side: slow on a loaded machine.
        await docs.waitForSelector('.opblock', { timeout: 60_000 });
        const shown = await docs.$$eval('.opblock', (blocks) =>
          blocks.map(
            (b) =>
              `${b.querySelector('.opblock-summary-method')?.textContent?.trim()} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`,
          ),
        );
        expect(shown.sort()).toEqual(expected);
        await docs.screenshot({ path: join(ARTIFACTS, '6-docs.png'), fullPage: false });
      } finally {
        await docs.close();
      }
    }, 90_000);
  },
);
