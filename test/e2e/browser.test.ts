import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import type { CiIdentity } from '../../src/tokens/store.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The Settings › Tokens page in Debian's chromium, driven by playwright-core (no browser
 * download). A missing /usr/bin/chromium fails the run: these tests never skip.
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));
const ADMIN_TOKEN = 'browser-test-admin-token-0123456789';
const ARTIFACT = '/generic/hello/1.0.0/hello-1.0.0.txt';
/** A laptop screen. */
const VIEWPORT = { width: 1366, height: 768 };

/**
 * Runs a JavaScript expression in the page. Strings, not closures: this project type-checks
 * without the DOM library, and the page's globals are not Node's.
 */
function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate<T>(expression);
}
const ACTIVE_ID = 'document.activeElement?.id';
const ACTIVE_TEXT = 'document.activeElement?.textContent';
const READ_CLIPBOARD = 'navigator.clipboard.readText()';

describe('Settings › Tokens in chromium', () => {
  let gw: TestGateway;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /** Anything the page must never do: JS dialogs (alert), uncaught errors, CSP violations. */
  const incidents: string[] = [];
  const shownTokens: string[] = [];

  const chromiumMissing = !existsSync(CHROMIUM);

  beforeAll(async () => {
    if (chromiumMissing) return; // every test fails in beforeEach, by name
    mkdirSync(SCREENSHOTS, { recursive: true });
    gw = await startTestGateway({
      TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      TOLLGATE_CACHE_TTL_MS: '60000', // revocation must not wait for the TTL
      TOLLGATE_ACTIVITY_FLUSH_MS: '50',
      TOLLGATE_LAST_USED_FLUSH_MS: '200',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  beforeEach(() => {
    if (chromiumMissing) throw new Error('chromium not found: apt-get install chromium');
  });

  afterEach(async () => {
    while (contexts.length > 0) await contexts.pop()!.close();
  });

  afterAll(async () => {
    await browser?.close();
    if (gw) {
      // No token shown in the page ever reached a log line.
      for (const token of shownTokens) expect(gw.logs()).not.toContain(token);
      expect(gw.logs()).not.toContain(ADMIN_TOKEN);
      await gw.close();
    }
  });

  async function open(
    options: { clipboard?: ('clipboard-read' | 'clipboard-write')[]; initScript?: string } = {},
  ): Promise<Page> {
    const context = await browser.newContext({ viewport: VIEWPORT, locale: 'en-GB', timezoneId: 'UTC' });
    contexts.push(context);
    if (options.clipboard) await context.grantPermissions(options.clipboard, { origin: gw.adminUrl });
    if (options.initScript) await context.addInitScript({ content: options.initScript });
    const page = await context.newPage();
    page.on('dialog', (dialog) => {
      incidents.push(`JS dialog: ${dialog.type()} ${dialog.message()}`);
      void dialog.dismiss();
    });
    page.on('pageerror', (err) => incidents.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text()))
        incidents.push(`CSP: ${msg.text()}`);
    });
    return page;
  }

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${gw.adminUrl}/settings`);
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('tab', { name: 'Tokens' }).waitFor();
    await page
      .locator('#tokens-body tr')
      .first()
      .waitFor({ state: 'attached' })
      .catch(() => {});
  }

  const row = (page: Page, name: string) =>
    page.locator('#tokens-body tr').filter({ has: page.locator('td.name', { hasText: name }) });

  async function download(token: string): Promise<number> {
    const res = await fetch(`${gw.url}${ARTIFACT}`, { headers: { authorization: bearer(token) } });
    await res.arrayBuffer();
    return res.status;
  }

  /** Create → reveal, returning the token the page shows. */
  async function createInPage(page: Page, name: string): Promise<string> {
    await page.getByRole('button', { name: 'Create new token' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create new token' });
    await dialog.waitFor();
    await page.getByLabel('Name').fill(name);
    await page.getByRole('button', { name: 'Create token' }).click();
    const value = page.getByLabel(/^Token /);
    await value.waitFor();
    const token = await value.inputValue();
    shownTokens.push(token);
    return token;
  }

  it('signs in, creates a Production token that never expires, shows it once, Done only after Copy, revokes it', async () => {
    // Some history, so the table shows each kind of row.
    await gw.createToken({ name: 'laptop-alice', type: 'development', expires: '30d' });
    await gw.createToken({ name: 'ci-feature-branches', type: 'development', expires: '90d' });
    const old = await gw.createToken({ name: 'legacy-deploy', type: 'production' });
    await gw.store.revoke(old.record.id, 'admin');
    await gw.createToken({
      name: 'short-lived',
      type: 'production',
      expires: new Date(Date.now() + 1500).toISOString(),
    });
    await new Promise((r) => setTimeout(r, 1600)); // short-lived is now expired

    const page = await open({ clipboard: ['clipboard-read', 'clipboard-write'] });
    await page.goto(`${gw.adminUrl}/settings`);
    await page.getByLabel('Admin token').waitFor();
    await page.screenshot({ path: `${SCREENSHOTS}sign-in.png` });
    await signIn(page);
    await expect.poll(() => page.locator('#tokens-body tr').count()).toBe(4);
    await expect.poll(() => row(page, 'legacy-deploy').locator('.badge-revoked').textContent()).toBe('Revoked');
    expect(await row(page, 'short-lived').locator('.badge-expired').textContent()).toBe('Expired');
    expect(await row(page, 'legacy-deploy').getAttribute('class')).toContain('inactive');
    expect(await row(page, 'laptop-alice').locator('td').nth(4).textContent()).toMatch(/30 days left/);

    // Create: the dialog opens with focus on Name; Production and Never are the defaults.
    await page.getByRole('button', { name: 'Create new token' }).click();
    const createDialog = page.getByRole('dialog', { name: 'Create new token' });
    await createDialog.waitFor();
    expect(await inPage(page, ACTIVE_ID)).toBe('c-name');
    expect(await page.getByLabel('Production').isChecked()).toBe(true);
    expect(await page.getByLabel('Expiry', { exact: true }).inputValue()).toBe('never');
    expect(await createDialog.textContent()).toContain(
      'For local environments and CI on branches other than main, so their activity raises no alerts.',
    );
    await page.getByLabel('Name').fill('ci-main-release');
    await page.screenshot({ path: `${SCREENSHOTS}create-dialog.png` });
    await page.getByRole('button', { name: 'Create token' }).click();

    // Shown once, with a warning; Done disabled until copied; Esc does not lose it.
    const value = page.getByLabel(/^Token /);
    await value.waitFor();
    const token = await value.inputValue();
    shownTokens.push(token);
    expect(token).toMatch(/^tgp_[0-9A-Za-z]+$/);
    const reveal = page.getByRole('dialog', { name: 'Copy your new token' });
    expect(await reveal.textContent()).toMatch(/cannot be shown again.*secret manager/s);
    const done = page.getByRole('button', { name: 'Done' });
    expect(await done.isDisabled()).toBe(true);
    await page.keyboard.press('Escape');
    expect(await reveal.isVisible()).toBe(true);
    expect(await page.locator('#copy-status').textContent()).toMatch(/Copy the token before closing/);
    await page.screenshot({ path: `${SCREENSHOTS}token-reveal.png` });

    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await expect.poll(() => done.isEnabled()).toBe(true);
    expect(await page.locator('#copy-status').textContent()).toMatch(/Copied to the clipboard/);
    const copied = await inPage<string>(page, READ_CLIPBOARD);
    expect(copied).toBe(token);

    // The copied token downloads through the proxy port.
    expect(await download(copied)).toBe(200);

    await done.click();
    await reveal.waitFor({ state: 'hidden' });
    expect(await inPage(page, ACTIVE_TEXT)).toBe('Create new token');
    expect(await page.content()).not.toContain(token);
    const created = row(page, 'ci-main-release');
    await created.waitFor();
    const cells = await created.locator('td').allTextContents();
    expect(cells.slice(0, 2)).toEqual(['ci-main-release', 'Production']);
    expect(cells[3]).toBe('admin');
    expect(cells[4]).toBe('Never');
    expect(cells[6]).toBe('Active');

    // Reloading never shows the token again (and the session survives the reload).
    // Last used: the gateway writes it every TOLLGATE_LAST_USED_FLUSH_MS, and the page reads it
    // when it loads, so reload until the download's time is there (a busy machine can be late).
    await expect
      .poll(
        async () => {
          await page.reload();
          await created.waitFor();
          return created.locator('td').nth(5).textContent();
        },
        { timeout: 10_000, interval: 250 },
      )
      .not.toBe('Never');
    expect(await page.content()).not.toContain(token);
    expect(await page.locator('dialog[open]').count()).toBe(0);
    await page.screenshot({ path: `${SCREENSHOTS}tokens-tab.png` });

    // Revoke with a confirmation; downloads are refused within a second.
    await page.getByRole('button', { name: 'Revoke ci-main-release' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke token?' });
    await confirm.waitFor();
    expect(await confirm.locator('#revoke-name').textContent()).toBe('ci-main-release');
    expect(await inPage(page, ACTIVE_TEXT)).toBe('Cancel');
    await page.screenshot({ path: `${SCREENSHOTS}revoke-confirm.png` });
    const revoked = page.waitForResponse((r) => r.url().endsWith('/revoke') && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Revoke token' }).click();
    expect((await revoked).status()).toBe(200);
    const revokedAt = Date.now();
    await expect.poll(() => download(token), { timeout: 1000, interval: 20 }).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    await expect.poll(() => created.locator('.badge-revoked').textContent()).toBe('Revoked');
    expect(await created.locator('td').nth(6).textContent()).toMatch(/Revoked.*by admin/);
    expect(await page.getByRole('button', { name: 'Revoke ci-main-release' }).count()).toBe(0);

    // Activity: the Production download shows, filterable by token.
    await page.getByRole('tab', { name: 'Activity' }).click();
    const activityRow = page.locator('#activity-body tr').filter({ hasText: 'ci-main-release' });
    await expect
      .poll(
        async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          return activityRow.count();
        },
        { timeout: 5000 },
      )
      .toBeGreaterThan(0);
    expect(await activityRow.first().locator('td').allTextContents()).toEqual([
      expect.any(String),
      'default',
      'generic',
      'hello',
      '1.0.0',
      'ci-main-release',
      '—',
      'No',
    ]);
    const filters = page.getByRole('form', { name: 'Filter activity' });
    await filters.getByLabel('Token').selectOption('ci-main-release');
    await filters.getByLabel('Project').fill('nobody');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('#activity-empty').isVisible()).toBe(true);
    await filters.getByLabel('Project').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => activityRow.count()).toBeGreaterThan(0);
    await page.screenshot({ path: `${SCREENSHOTS}activity-tab.png` });

    // Audit: who created and revoked what, when.
    await page.getByRole('tab', { name: 'Audit log' }).click();
    const audit = page.locator('#audit-body tr').filter({ hasText: 'ci-main-release' });
    await expect.poll(() => audit.count()).toBe(2);
    expect(await audit.nth(0).locator('td').allTextContents()).toEqual([
      expect.any(String),
      'Revoked',
      'ci-main-release',
      'Production',
      'admin',
    ]);
    expect(await audit.nth(1).locator('td').allTextContents()).toEqual([
      expect.any(String),
      'Created',
      'ci-main-release',
      'Production',
      'admin',
    ]);
    await page.screenshot({ path: `${SCREENSHOTS}audit-log.png` });

    expect(incidents).toEqual([]);
  });

  it('restricts a token in the Create dialog, rotates it (the new token shown once, Copy before Done), and shows a leaked one as such', async () => {
    const page = await open({ clipboard: ['clipboard-read', 'clipboard-write'] });
    await signIn(page);
    await page.getByRole('button', { name: 'Create new token' }).click();
    await page.getByRole('dialog', { name: 'Create new token' }).waitFor();
    await page.getByLabel('Name').fill('restricted-ci');
    await page.getByText('Restrict this token').click();
    // The routes are the gateway's own (this one has one route, "/").
    await page.getByRole('checkbox', { name: '/' }).check();
    await page.getByLabel('Packages').fill('hello, @acme/*');
    await page.getByLabel('Networks').fill('10.0.0.0/33');
    await page.getByLabel('Rate (requests a minute)').fill('100');
    await page.screenshot({ path: `${SCREENSHOTS}create-restricted.png` });
    await page.getByRole('button', { name: 'Create token' }).click();
    // A bad network comes back naming the field, which is marked and focused.
    await expect
      .poll(() => page.locator('#create-error').textContent())
      .toMatch(/networks: "10.0.0.0\/33" is not an IP address or CIDR/);
    expect(await page.getByLabel('Networks').getAttribute('aria-invalid')).toBe('true');
    expect(await inPage(page, ACTIVE_ID)).toBe('c-networks');
    await page.getByLabel('Networks').fill('127.0.0.1 ::1');
    await page.getByRole('button', { name: 'Create token' }).click();
    const value = page.getByLabel(/^Token /);
    await value.waitFor();
    const first = await value.inputValue();
    shownTokens.push(first);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await download(first)).toBe(200);

    const restricted = row(page, 'restricted-ci');
    await expect
      .poll(() => restricted.locator('td').nth(7).locator('li').allTextContents())
      .toEqual(['Routes: /', 'Packages: hello, @acme/*', 'Networks: 127.0.0.1, ::1', '100 requests/min']);

    // Rotate: choose the overlap, then the new token is shown once, as on create.
    await page.getByRole('button', { name: 'Rotate restricted-ci' }).click();
    const confirm = page.getByRole('dialog', { name: 'Rotate token?' });
    await confirm.waitFor();
    expect(await page.getByLabel('Overlap').inputValue()).toBe('24h');
    await page.getByLabel('Overlap').selectOption('1h');
    await page.screenshot({ path: `${SCREENSHOTS}rotate-confirm.png` });
    await page.getByRole('button', { name: 'Rotate token' }).click();
    const reveal = page.getByRole('dialog', { name: 'Copy your new token' });
    await reveal.waitFor();
    const second = await value.inputValue();
    shownTokens.push(second);
    expect(second).toMatch(/^tgp_/);
    expect(second).not.toBe(first);
    expect(await page.locator('#reveal-note').textContent()).toMatch(/previous token keeps working until/);
    const done = page.getByRole('button', { name: 'Done' });
    expect(await done.isDisabled()).toBe(true);
    await page.keyboard.press('Escape');
    expect(await reveal.isVisible()).toBe(true);
    await page.screenshot({ path: `${SCREENSHOTS}rotate-reveal.png` });
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await expect.poll(() => done.isEnabled()).toBe(true);
    expect(await inPage<string>(page, READ_CLIPBOARD)).toBe(second);
    await done.click();
    await reveal.waitFor({ state: 'hidden' });
    expect(await page.content()).not.toContain(second);

    // Both generations work during the overlap; the table shows the old one rotated, with its end.
    expect(await download(second)).toBe(200);
    expect(await download(first)).toBe(200);
    const generations = row(page, 'restricted-ci');
    await expect.poll(() => generations.count()).toBe(2);
    const rotatedRow = generations.filter({ has: page.locator('.badge-rotated') });
    expect(await rotatedRow.locator('td').nth(6).textContent()).toMatch(/^Rotatedends at /);
    expect(await rotatedRow.getByRole('button', { name: 'Rotate restricted-ci' }).count()).toBe(0);
    expect(await rotatedRow.getByRole('button', { name: 'Revoke restricted-ci' }).count()).toBe(1);
    expect(
      await generations
        .filter({ has: page.locator('.badge-active') })
        .locator('td')
        .nth(7)
        .locator('li')
        .count(),
    ).toBe(4);
    await page.screenshot({ path: `${SCREENSHOTS}tokens-rotated.png` });

    // A token reported leaked (a scanner through the admin API) shows as revoked as leaked.
    const leaked = await gw.createToken({ name: 'leaked-in-a-commit', type: 'production' });
    const report = await fetch(`${gw.adminUrl}/api/v1/tokens/revoke-leaked`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        source: 'gitleaks',
        tokens: [{ token: leaked.token, url: 'https://git.example/acme/app/commit/abc' }],
      }),
    });
    expect(await report.json()).toMatchObject({ results: [{ label: 'true_positive' }] });
    await page.reload();
    const leakedRow = row(page, 'leaked-in-a-commit');
    await expect.poll(() => leakedRow.locator('td').nth(6).textContent()).toMatch(/^Revokedleaked, found by gitleaks/);

    // The audit log: the rotation, and the leak with where it was found.
    await page.getByRole('tab', { name: 'Audit log' }).click();
    const rotation = page.locator('#audit-body tr').filter({ hasText: 'restricted-ci' }).filter({ hasText: 'Rotated' });
    await expect.poll(() => rotation.count()).toBe(1);
    expect(await rotation.locator('td').nth(1).textContent()).toMatch(/^Rotatedreplaces tok_\w+, which works until /);
    const leak = page
      .locator('#audit-body tr')
      .filter({ hasText: 'leaked-in-a-commit' })
      .filter({ hasText: 'Revoked' });
    expect(await leak.locator('td').nth(1).textContent()).toBe(
      'Revokedleaked, found by gitleaks at https://git.example/acme/app/commit/abc',
    );
    await page.screenshot({ path: `${SCREENSHOTS}audit-rotation-leak.png` });
    expect(incidents).toEqual([]);
  });

  it.each([
    [
      'the Clipboard API refuses',
      "Object.defineProperty(navigator.clipboard, 'writeText', { value: () => Promise.reject(new DOMException('Write permission denied.', 'NotAllowedError')) });",
    ],
    [
      'there is no Clipboard API (not a secure context)',
      "Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined });",
    ],
  ])('falls back to selecting and copying the text when %s', async (_what, initScript) => {
    const page = await open({ clipboard: ['clipboard-read'], initScript });
    await signIn(page);
    const name = `fallback-${shownTokens.length}`;
    const token = await createInPage(page, name);
    const done = page.getByRole('button', { name: 'Done' });
    expect(await done.isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await expect.poll(() => done.isEnabled()).toBe(true);
    // The token is the selection, and it really is on the clipboard: read it from a page with the
    // real Clipboard API (same browser clipboard).
    expect(
      await inPage(
        page,
        `(() => {
      const input = document.getElementById('reveal-value');
      return input.value.slice(input.selectionStart, input.selectionEnd);
    })()`,
      ),
    ).toBe(token);
    const reader = await browser.newContext();
    contexts.push(reader);
    await reader.grantPermissions(['clipboard-read'], { origin: gw.adminUrl });
    const readerPage = await reader.newPage();
    await readerPage.goto(`${gw.adminUrl}/healthz`);
    await readerPage.bringToFront();
    expect(await inPage(readerPage, READ_CLIPBOARD)).toBe(token);
    await page.bringToFront();
    await done.click();
    expect(await page.content()).not.toContain(token);
    expect(incidents).toEqual([]);
  });

  it('fix-xss-token-name: renders an HTML token name as text, injecting no element and firing no dialog', async () => {
    const names = ['<img src=x onerror=alert(1)>', '"><script>alert(2)</script>', '<svg onload=alert(3)>'];
    for (const name of names) await gw.createToken({ name, type: 'production' });
    const page = await open();
    await signIn(page);
    for (const name of names) await expect.poll(() => row(page, name).count()).toBe(1);
    expect(await page.locator('#tokens-body td.name').allTextContents()).toEqual(expect.arrayContaining(names));
    expect(await page.locator('img, svg, #tokens-body script').count()).toBe(0);
    // Also where the name is shown elsewhere: the revoke confirmation, the token filter, the audit log.
    await page.getByRole('button', { name: `Revoke ${names[0]}` }).click();
    expect(await page.locator('#revoke-name').textContent()).toBe(names[0]);
    expect(await page.locator('#revoke-name *').count()).toBe(0);
    await page.keyboard.press('Escape');
    await page.getByRole('tab', { name: 'Activity' }).click();
    expect(await page.locator('#f-token option').allTextContents()).toEqual(expect.arrayContaining(names));
    await page.getByRole('tab', { name: 'Audit log' }).click();
    await expect
      .poll(() => page.locator('#audit-body td.name').allTextContents())
      .toEqual(expect.arrayContaining(names));
    expect(await page.locator('img, svg').count()).toBe(0);
    await page.waitForTimeout(200); // an onerror/onload would have fired by now
    expect(incidents).toEqual([]);
  });

  it('works from the keyboard: tabs with arrow keys, focus kept in the dialog, Esc closes, focus returns', async () => {
    const page = await open();
    await signIn(page);
    await page.getByRole('tab', { name: 'Tokens' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Activity' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('#panel-activity').isVisible()).toBe(true);
    expect(new URL(page.url()).hash).toBe('#activity');
    await page.keyboard.press('ArrowLeft');
    expect(await page.locator('#panel-tokens').isVisible()).toBe(true);

    await page.getByRole('button', { name: 'Create new token' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'Create new token' }).waitFor();
    for (let i = 0; i < 15; i++) {
      await page.keyboard.press(i % 4 === 3 ? 'Shift+Tab' : 'Tab');
      expect(await inPage(page, "Boolean(document.activeElement?.closest('#create-dialog'))")).toBe(true);
    }
    await page.keyboard.press('Escape');
    await page.getByRole('dialog', { name: 'Create new token' }).waitFor({ state: 'hidden' });
    expect(await inPage(page, ACTIVE_TEXT)).toBe('Create new token');

    // A blank name is refused in the form, with the message announced.
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Create token' }).click();
    expect(await page.locator('#create-error').textContent()).toBe('A name is required.');
    expect(await page.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
    // A taken name comes back from the API as a clear message.
    await gw.createToken({ name: 'taken-name', type: 'development' });
    await page.getByLabel('Name').fill('taken-name');
    await page.getByLabel('Development').check();
    await page.getByLabel('Expiry', { exact: true }).selectOption('date');
    expect(await page.getByLabel('Expiry date').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Create token' }).click();
    await expect.poll(() => page.locator('#create-error').textContent()).toMatch(/already exists/);
    // So does a name in another case, and a name shaped like a token id, with the field marked.
    await page.getByLabel('Name').fill('TAKEN-NAME');
    await page.getByRole('button', { name: 'Create token' }).click();
    await expect
      .poll(() => page.locator('#create-error').textContent())
      .toMatch(/already exists \(names are compared ignoring case\)/);
    await page.getByLabel('Name').fill('tok_0123456789abcdef');
    await page.getByRole('button', { name: 'Create token' }).click();
    await expect.poll(() => page.locator('#create-error').textContent()).toMatch(/must not start with "tok_"/);
    expect(await page.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
    expect(await inPage(page, 'document.activeElement?.id')).toBe('c-name');
    expect(incidents).toEqual([]);
  });

  it("keeps CI-issued tokens apart: counted per provider, listed with their job on request; Activity shows and filters by the job's repository", async () => {
    // Tokens as the exchange issues them (its endpoint is another module's): through the store, with a CI identity.
    const issue = async (ci: CiIdentity): Promise<string> => {
      const token = generateToken('production');
      shownTokens.push(token);
      await gw.store.insert({
        id: generateTokenId(),
        name: `ci:${ci.provider}:${ci.repository}#${ci.runId}`,
        type: 'production',
        hash: hashToken(token),
        createdAt: Date.now(),
        createdBy: `ci:${ci.provider}`,
        expiresAt: Date.now() + 3_600_000,
        ci,
      });
      return token;
    };
    const github = (repository: string, runId: string): CiIdentity => ({
      provider: 'github',
      subject: `repo:${repository}:ref:refs/heads/main`,
      project: repository.split('/')[1],
      repository,
      ref: 'refs/heads/main',
      sha: 'c0ffee'.repeat(6) + 'c0ff',
      workflow: 'release',
      runId,
      actor: 'alice',
    });
    const payments = await issue(github('acme/payments', '4242'));
    const web = await issue(github('acme/web', '17'));
    await issue(github('acme/web', '18'));
    await issue({
      provider: 'gitlab',
      subject: 'project_path:acme/infra',
      repository: 'acme/infra',
      ref: 'refs/heads/feature',
      runId: '905',
    });
    expect(await download(payments)).toBe(200);
    expect(await download(web)).toBe(200);

    const page = await open();
    await signIn(page);
    // By default: the tokens admins made, and a count of the CI-issued ones per provider.
    await expect
      .poll(() => page.locator('#tokens-ci-counts').textContent())
      .toBe('Live tokens issued to CI jobs: github 3, gitlab 1.');
    expect(await page.locator('#tokens-body td.name').allTextContents()).not.toContainEqual(
      expect.stringMatching(/^ci:/),
    );
    expect(await page.getByLabel('CI provider').isDisabled()).toBe(true);

    // The filter: CI-issued tokens, each with its job (provider, repository, ref, run) instead of a creator.
    await page.getByLabel('Show').selectOption('ci');
    await expect.poll(() => page.locator('#tokens-body tr').count()).toBe(4);
    const paymentsRow = row(page, 'ci:github:acme/payments#4242');
    expect(await paymentsRow.locator('td').nth(3).textContent()).toBe(
      'github · acme/paymentsrefs/heads/main · run 4242',
    );
    expect(await page.locator('#tokens-body td.name').allTextContents()).not.toContain('ci-main-release');
    await page.getByLabel('CI provider').selectOption('gitlab');
    await expect
      .poll(() => page.locator('#tokens-body td.name').allTextContents())
      .toEqual(['ci:gitlab:acme/infra#905']);
    expect(await row(page, 'ci:gitlab:acme/infra#905').locator('td').nth(3).textContent()).toBe(
      'gitlab · acme/infrarefs/heads/feature · run 905',
    );
    expect(await row(page, 'ci:gitlab:acme/infra#905').locator('td').nth(4).locator('.sub').textContent()).toMatch(
      /^ends in (59|60) minutes$/,
    );
    await page.screenshot({ path: `${SCREENSHOTS}tokens-ci.png` });
    await page.getByLabel('Show').selectOption('admin');
    await expect
      .poll(() => page.locator('#tokens-body td.name').allTextContents())
      .not.toContain('ci:gitlab:acme/infra#905');

    // Activity: each event's CI job, and a filter by its repository (server-side).
    await page.getByRole('tab', { name: 'Activity' }).click();
    const ciRows = page.locator('#activity-body tr').filter({ hasText: 'ci:github:' });
    await expect
      .poll(
        async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          return ciRows.count();
        },
        { timeout: 5000 },
      )
      .toBe(2);
    const paymentsEvent = page.locator('#activity-body tr').filter({ hasText: 'ci:github:acme/payments#4242' });
    expect(await paymentsEvent.locator('td').allTextContents()).toEqual([
      expect.any(String),
      'payments',
      'generic',
      'hello',
      '1.0.0',
      'ci:github:acme/payments#4242',
      'github · acme/paymentsrefs/heads/main · run 4242',
      'No',
    ]);
    const filters = page.getByRole('form', { name: 'Filter activity' });
    await filters.getByLabel('Repository').fill('acme/web');
    const filtered = page.waitForResponse(
      (r) => r.url().includes('/api/v1/activity?') && r.url().includes('repository=acme%2Fweb'),
    );
    await page.getByRole('button', { name: 'Apply filters' }).click();
    expect((await filtered).status()).toBe(200);
    await expect
      .poll(() => page.locator('#activity-body tr td:nth-child(6)').allTextContents())
      .toEqual(['ci:github:acme/web#17']);
    await page.screenshot({ path: `${SCREENSHOTS}activity-ci.png` });
    await filters.getByLabel('Repository').fill('acme');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('#activity-empty').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(() => ciRows.count()).toBe(2);

    // Audit log: what people did; the issuance to each CI job only when asked for, with the job.
    await page.getByRole('tab', { name: 'Audit log' }).click();
    await expect.poll(() => page.locator('#audit-status').textContent()).toMatch(/newest first/);
    expect(await page.locator('#audit-body td.name').allTextContents()).not.toContainEqual(
      expect.stringMatching(/^ci:/),
    );
    await page.getByLabel('Include tokens issued to CI jobs').check();
    const issued = page.locator('#audit-body tr').filter({ hasText: 'ci:github:acme/payments#4242' });
    await expect.poll(() => issued.count()).toBe(1);
    expect((await issued.locator('td').allTextContents()).slice(1)).toEqual([
      'Created',
      'ci:github:acme/payments#4242',
      'Production',
      'github · acme/paymentsrefs/heads/main · run 4242',
    ]);
    expect(incidents).toEqual([]);
  });

  it('refuses a wrong admin token, and signing out ends the session', async () => {
    const page = await open();
    await page.goto(`${gw.adminUrl}/settings`);
    await page.getByLabel('Admin token').fill('not-the-admin-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#sign-in-error').textContent()).toBe('That is not the admin token.');
    await signIn(page);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'tollgate_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
    expect(session!.expires * 1000 - Date.now()).toBeLessThanOrEqual(8 * 3600 * 1000);
    expect(await inPage(page, 'document.cookie')).toBe(''); // HttpOnly: invisible to scripts
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    const replay = await fetch(`${gw.adminUrl}/api/v1/tokens`, {
      headers: { cookie: `tollgate_session=${session!.value}` },
    });
    expect(replay.status).toBe(401);
    expect(incidents).toEqual([]);
  });
});
