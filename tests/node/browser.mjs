// The GraphiQL playground in headless Chromium (Debian's, through playwright-core) with every
// host but the server's blocked: DNS answers "not found" for every name (--host-resolver-rules)
// and any request to another origin is recorded and aborted. Opens <base>/graphql (a navigation,
// so Accept: text/html), runs the Register tab, reads accessToken from the result pane, puts
// {"Authorization": "Bearer <token>"} in the Headers editor and runs the Me tab and the Heartbeat
// subscription tab. GraphiQL is driven through its DOM: the tab buttons, the run button and the
// CodeMirror instances of its editors. Prints what each tab returned and everything that went
// wrong on the page (requests to other hosts, console errors, CSP violations, uncaught errors).
// Exit 0 whenever the browser ran, `fatal` saying what stopped the run early (the Rust test
// judges the report).
// Usage: node browser.mjs http://127.0.0.1:<port> /usr/bin/chromium
import { args, need, report } from './tools.mjs';

const { chromium } = need('playwright-core');
const [base, executablePath] = args('node browser.mjs <base url> <chromium>');
const origin = new URL(base).origin;

const problems = { foreignRequests: [], consoleErrors: [], cspViolations: [], pageErrors: [] };
const ownRequests = [];
const webSockets = [];
const steps = {};
let fatal = null;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [`--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`],
  timeout: 60000,
});
try {
  const context = await browser.newContext();
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) {
      ownRequests.push(`${route.request().method()} ${url.slice(origin.length)}`);
      return route.continue();
    }
    problems.foreignRequests.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') problems.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => problems.pageErrors.push(String(error)));
  page.on('websocket', (socket) => {
    webSockets.push(socket.url());
    if (new URL(socket.url()).host !== new URL(origin).host) problems.foreignRequests.push(socket.url());
  });
  await page.exposeFunction('reportCspViolation', (violation) => problems.cspViolations.push(violation));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      window.reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`),
    );
  });

  const response = await page.goto(`${base}/graphql`, { waitUntil: 'load', timeout: 30000 });
  steps.page = { status: response.status(), contentType: response.headers()['content-type'] ?? null };
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 30000 });

  /** Makes the tab whose title is `name` the current one. */
  const openTab = async (name) => {
    await page.locator(`button.graphiql-tab-button[title="${name}"]`).click();
    await page.waitForFunction(
      (name) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue().includes(` ${name} `),
      name,
      { timeout: 10000 },
    );
    // GraphiQL takes the operation's name from the editor after a debounce; a run sooner would
    // send the previous tab's name.
    await page.waitForTimeout(1000);
  };
  const responseText = () =>
    page.evaluate(() => document.querySelector('.graphiql-response .result-window .CodeMirror')?.CodeMirror.getValue() ?? '');
  /** Runs the current tab and waits for a result pane that holds JSON with `expected` in it. */
  const run = async (expected, timeout = 15000) => {
    const before = await responseText();
    await page.locator('.graphiql-execute-button').click();
    const deadline = Date.now() + timeout;
    let text = before;
    while (Date.now() < deadline) {
      text = await responseText();
      if (text !== before && text.includes(expected)) {
        try {
          return JSON.parse(text);
        } catch {
          // Not all of it yet.
        }
      }
      await page.waitForTimeout(100);
    }
    return { timedOut: `no result with ${expected} in ${timeout} ms`, resultPane: text };
  };
  /** Types the headers into the Headers editor of the current tab. */
  const setHeaders = async (headers) => {
    const button = page.locator('.graphiql-editor-tools button[data-name="headers"]');
    if (!(await button.getAttribute('class')).split(' ').includes('active')) await button.click();
    await page.evaluate((text) => {
      const shown = document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
      shown.CodeMirror.setValue(text);
    }, JSON.stringify(headers, null, 2));
  };

  await openTab('Register');
  steps.register = await run('"register"');
  const token = steps.register?.data?.register?.accessToken;
  if (token) {
    await openTab('Me');
    await setHeaders({ Authorization: `Bearer ${token}` });
    steps.me = await run('"me"');
    await openTab('Heartbeat');
    await setHeaders({ Authorization: `Bearer ${token}` });
    steps.heartbeat = await run('"heartbeat"', 20000);
  }
} catch (error) {
  // Reported with everything seen so far (a page that never loads shows why here).
  fatal = String(error).slice(0, 2000);
} finally {
  await browser.close();
}
report({ fatal, steps, problems, ownRequests, webSockets });
