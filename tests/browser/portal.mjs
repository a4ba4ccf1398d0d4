// Drives Debian's Chromium (headless, through playwright-core) for Sealgate's end-to-end
// portal tests, one step at a time, over a line-based JSON protocol:
//
//   stdin:  one command per line, e.g. {"id":1,"cmd":"goto","url":"https://127.0.0.1:8443/p/x"}
//   stdout: one reply per command, {"id":1,"ok":true,...} or {"id":1,"ok":false,"error":"..."};
//           before any command, one {"ready":true,"version":"..."} line once the browser runs.
//
// Commands (every one may carry "timeout_ms", default 15000):
//   goto {url}                     navigate; {status, url}
//   click {selector}               click, wait for a navigation it started; {status, url}
//                                  (status: of the navigation's final response, or null)
//   fill {selector, value}         type into a form field
//   text {selector}                innerText of the first match; {text}
//   content                        the page's HTML; {html, url}
//   download {selector, path}      click, save the download to path; {path, filename, size}
//   eval {expr}                    evaluate in the main frame; {value}
//   eval_in_frames {expr}          evaluate in every frame (5 s each at most); {frames:
//                                  [{url, value}|{url, error}]}
//   frames                         {frames: [url, ...]}
//   request {url, method, form?, headers?}
//                                  an HTTP request with the browser's cookies (not the page's
//                                  JavaScript: no CSP applies); {status, headers, body}
//   cookies                        {cookies: [...]}, HttpOnly ones included
//   requests                       every request the browser made or began so far (all
//                                  pages, all frames; one the CSP blocked too); {requests: [{url,
//                                  method, resource_type, frame_url, navigation, failure}]}
//                                  (failure: why it failed, e.g. "csp" or net::ERR_ABORTED)
//   dialogs                        alert/confirm/prompt/beforeunload seen (all dismissed)
//   console                        console messages and uncaught page errors
//   clear                          forget the requests, dialogs and console messages so far
//   screenshot {path}              a PNG of the page, for debugging
//   quit                           close the browser and exit
//
// Nothing but protocol lines goes to stdout; diagnostics go to stderr. The browser gets a
// fresh profile directory, removed on exit, and never the network beyond what a test names.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.SEALGATE_CHROMIUM || '/usr/bin/chromium';
const DEFAULT_TIMEOUT_MS = 15000;
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const seen = { requests: [], dialogs: [], console: [] };

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function log(...parts) {
  process.stderr.write(`portal.mjs: ${parts.join(' ')}\n`);
}

/** Records every request of `context` (every page, every frame), dialog and console line. */
function watch(context) {
  const records = new WeakMap();
  context.on('requestfailed', (req) => {
    const record = records.get(req);
    if (record) {
      record.failure = req.failure() ? req.failure().errorText : 'failed';
    }
  });
  context.on('request', (req) => {
    let frameUrl = null;
    let navigation = false;
    try {
      frameUrl = req.frame().url();
      navigation = req.isNavigationRequest();
    } catch {
      // Service-worker requests have no frame.
    }
    const record = {
      url: req.url(),
      method: req.method(),
      resource_type: req.resourceType(),
      frame_url: frameUrl,
      navigation,
      failure: null,
    };
    records.set(req, record);
    seen.requests.push(record);
  });
  const watchPage = (page) => {
    page.on('dialog', (dialog) => {
      seen.dialogs.push({ type: dialog.type(), message: dialog.message(), url: page.url() });
      dialog.dismiss().catch(() => {});
    });
    page.on('console', (msg) => {
      seen.console.push({ type: msg.type(), text: msg.text(), url: msg.location().url || '' });
    });
    page.on('pageerror', (err) => {
      seen.console.push({ type: 'pageerror', text: String(err && err.message), url: page.url() });
    });
  };
  context.pages().forEach(watchPage);
  context.on('page', watchPage);
}

function need(cmd, key) {
  const value = cmd[key];
  if (typeof value !== 'string') {
    throw new Error(`${cmd.cmd}: missing string field ${key}`);
  }
  return value;
}

/** How long evaluating in one frame may take (a frame that is still loading may never answer). */
const FRAME_EVAL_MS = 5000;

async function evalInFrames(page, expr, timeout) {
  const limit = Math.min(timeout, FRAME_EVAL_MS);
  const frames = await Promise.all(
    page.frames().map(async (frame) => {
      const url = frame.url();
      try {
        const value = await withTimeout(frame.evaluate(expr), limit, 'evaluate');
        return { url, name: frame.name(), value: value === undefined ? null : value };
      } catch (err) {
        return { url, name: frame.name(), error: String(err && err.message) };
      }
    }),
  );
  return { frames };
}

function withTimeout(promise, ms, what) {
  let timer;
  const expire = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, expire]).finally(() => clearTimeout(timer));
}

/** How long a click may take to start a navigation (a form submit is asynchronous). */
const NAVIGATION_GRACE_MS = 200;

/**
 * Clicks `selector`; when that started a navigation of the main frame (a link, a form, a
 * redirect after POST), waits until the new document has loaded. Returns the HTTP status
 * of the last response of that navigation (the final one after redirects), or null.
 */
async function clickAndSettle(page, selector, timeout) {
  let started = false;
  let status = null;
  const onRequest = (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      started = true;
    }
  };
  const onResponse = (res) => {
    const req = res.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      status = res.status();
    }
  };
  let onNavigated;
  const navigated = new Promise((resolve) => {
    onNavigated = (frame) => {
      if (frame === page.mainFrame()) {
        resolve();
      }
    };
  });
  // A navigation that ends in a download (or fails) commits no document.
  const onFailed = (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      onNavigated(page.mainFrame());
    }
  };
  const onDownload = () => onNavigated(page.mainFrame());
  page.on('request', onRequest);
  page.on('response', onResponse);
  page.on('framenavigated', onNavigated);
  page.on('requestfailed', onFailed);
  page.on('download', onDownload);
  try {
    await page.click(selector);
    await new Promise((resolve) => setTimeout(resolve, NAVIGATION_GRACE_MS));
    if (started) {
      await withTimeout(navigated, timeout, 'navigation after click');
    }
    await page.waitForLoadState('load');
    return status;
  } finally {
    page.off('request', onRequest);
    page.off('response', onResponse);
    page.off('framenavigated', onNavigated);
    page.off('requestfailed', onFailed);
    page.off('download', onDownload);
  }
}

async function httpRequest(context, cmd, timeout) {
  const response = await context.request.fetch(need(cmd, 'url'), {
    method: cmd.method || 'GET',
    form: cmd.form || undefined,
    headers: cmd.headers || undefined,
    maxRedirects: 0,
    timeout,
  });
  return {
    status: response.status(),
    headers: response.headers(),
    body: await response.text(),
  };
}

/** Runs one command; returns the fields of its reply. */
async function run(context, page, cmd) {
  const timeout = Number.isInteger(cmd.timeout_ms) ? cmd.timeout_ms : DEFAULT_TIMEOUT_MS;
  page.setDefaultTimeout(timeout);
  page.setDefaultNavigationTimeout(timeout);
  switch (cmd.cmd) {
    case 'goto': {
      const response = await page.goto(need(cmd, 'url'), { waitUntil: 'load' });
      return { status: response ? response.status() : null, url: page.url() };
    }
    case 'click': {
      const status = await clickAndSettle(page, need(cmd, 'selector'), timeout);
      return { status, url: page.url() };
    }
    case 'fill':
      await page.fill(need(cmd, 'selector'), need(cmd, 'value'));
      return {};
    case 'text':
      return { text: await page.innerText(need(cmd, 'selector')) };
    case 'content':
      return { html: await page.content(), url: page.url() };
    case 'download': {
      const target = need(cmd, 'path');
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click(need(cmd, 'selector')),
      ]);
      await download.saveAs(target);
      const failure = await download.failure();
      if (failure) {
        throw new Error(`download failed: ${failure}`);
      }
      return { path: target, filename: download.suggestedFilename(), size: fs.statSync(target).size };
    }
    case 'eval': {
      const value = await withTimeout(page.evaluate(need(cmd, 'expr')), timeout, 'evaluate');
      return { value: value === undefined ? null : value };
    }
    case 'eval_in_frames':
      return evalInFrames(page, need(cmd, 'expr'), timeout);
    case 'frames':
      return { frames: page.frames().map((f) => f.url()) };
    case 'request':
      return httpRequest(context, cmd, timeout);
    case 'cookies':
      return { cookies: await context.cookies() };
    case 'requests':
      return { requests: seen.requests };
    case 'dialogs':
      return { dialogs: seen.dialogs };
    case 'console':
      return { messages: seen.console };
    case 'clear':
      seen.requests.length = 0;
      seen.dialogs.length = 0;
      seen.console.length = 0;
      return {};
    case 'screenshot':
      await page.screenshot({ path: need(cmd, 'path'), fullPage: true });
      return {};
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`);
  }
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sealgate-chromium-'));
  let context;
  let closing = null;
  const cleanup = () => {
    closing ??= (async () => {
      if (context) {
        await context.close().catch(() => {});
      }
      fs.rmSync(profile, { recursive: true, force: true });
    })();
    return closing;
  };
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      ignoreHTTPSErrors: true,
      acceptDownloads: true,
      timeout: 60000,
    });
  } catch (err) {
    reply({ ready: false, error: String(err && err.message) });
    await cleanup();
    process.exit(1);
  }
  watch(context);
  const page = context.pages()[0] || (await context.newPage());
  const version = context.browser() ? context.browser().version() : null;
  reply({ ready: true, version, profile });

  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  // Standard input closed (the test is gone): close at once, even in the middle of a step.
  lines.on('close', () => {
    cleanup().then(() => process.exit(0));
  });
  for await (const line of lines) {
    if (!line.trim()) {
      continue;
    }
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      reply({ id: null, ok: false, error: `not JSON: ${err.message}` });
      continue;
    }
    if (cmd.cmd === 'quit') {
      await cleanup();
      reply({ id: cmd.id ?? null, ok: true });
      process.exit(0);
    }
    try {
      const fields = await run(context, page, cmd);
      reply({ id: cmd.id ?? null, ok: true, ...fields });
    } catch (err) {
      log(`${cmd.cmd} failed:`, String(err && err.message));
      reply({ id: cmd.id ?? null, ok: false, error: String(err && err.message) });
    }
  }
  // Standard input closed: the test is gone.
  await cleanup();
  process.exit(0);
}

main().catch((err) => {
  log('fatal:', String(err && err.stack));
  process.exit(2);
});
