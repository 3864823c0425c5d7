// A working day of a popug company, played through the web app in a real
// browser (Debian's chromium, driven by playwright-core), against a running
// mesh. The Rust test popug/tests/web.rs starts the mesh and web-svc, runs
// this script and holds what the pages showed against the billing API and
// `popug audit`, to the cent.
//
// Environment:
//   POPUG_WEB_URL         the app, e.g. http://127.0.0.1:8080
//   POPUG_ADMIN_PASSWORD  the first admin's password
//   POPUG_SCREENSHOTS     where to save a screenshot of each page
//   POPUG_RESULT          where to write what the pages showed (JSON)
//   CHROMIUM              the browser (default /usr/bin/chromium)
//   POPUG_PHASE           `day` (default) or `operations`: a dead letter the
//                         test planted, seen and replayed on Operations
//
// Fails on any browser console error or uncaught page error.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = required("POPUG_WEB_URL");
const adminPassword = required("POPUG_ADMIN_PASSWORD");
const shots = required("POPUG_SCREENSHOTS");
const resultPath = required("POPUG_RESULT");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** `-$1,234.56` -> -123456 (cents, exact). */
function cents(text) {
  const match = /(-?)\$([\d,]+)\.(\d\d)/.exec(text);
  if (!match) throw new Error(`not money: ${JSON.stringify(text)}`);
  const value = BigInt(match[2].replaceAll(",", "")) * 100n + BigInt(match[3]);
  return Number(match[1] ? -value : value);
}

function step(message) {
  console.log(`[day] ${message}`);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

await mkdir(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const problems = [];
const result = {};
/** Every page opened, to show where a failure left each. */
const pages = [];

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  const page = await context.newPage();
  // Generous: CI machines run the whole suite beside this browser.
  page.setDefaultTimeout(60_000);
  pages.push(page);
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error on ${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error on ${page.url()}: ${error.message}`));
  page.on("dialog", (dialog) => void dialog.accept());
  return page;
}

async function shot(page, name) {
  await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page, login, password) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel("Login").fill(login);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "My tasks", level: 1 }).waitFor();
  step(`signed in as ${login}`);
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You are signed out.").waitFor();
}

/** Goes to a page by its navigation link (what a person clicks). */
async function open(page, title) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: title, exact: true }).click();
  await page.getByRole("heading", { name: title, level: 1 }).waitFor();
  await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
}

/** Polls `read` (reloading `page` between tries) until `done` holds. */
async function until(page, what, read, done, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last saw ${JSON.stringify(value)}`);
    await page.waitForTimeout(500);
    await page.reload();
  }
}

const phase = process.env.POPUG_PHASE || "day";

/** After the day: a dead letter seen on Operations and replayed from there. */
async function operations() {
  const admin = await newPage();
  await signIn(admin, "admin", adminPassword);
  await open(admin, "Operations");
  const billing = admin.getByTestId("billing-dead-letters");
  result.before = await until(admin, "billing's dead letter", () => billing.innerText(), (text) => text.startsWith("1 unresolved"));
  const card = admin.locator("section", { has: admin.getByRole("heading", { name: "billing-svc" }) });
  result.error = await card.locator(".error-text").first().innerText();
  await shot(admin, "operations-dead-letter");
  await admin.getByRole("button", { name: "Replay dead letters of billing-svc" }).click();
  result.replayed = await card.getByText(/^Replayed \d+ messages/).innerText();
  // The bytes are still no event: the replay fails again, on the same row.
  result.after = await until(
    admin,
    "the replayed message's second failure",
    () => card.locator("table tbody tr td:nth-child(4)").first().innerText(),
    (failures) => failures === "2",
  );
  await shot(admin, "operations-replayed");
  step("dead letter replayed");
}

try {
  if (phase === "operations") {
    await operations();
  } else {
    await day();
  }
} catch (error) {
  problems.push(`the ${phase} failed: ${error.stack ?? error}`);
  for (const [index, page] of pages.entries()) {
    await page
      .screenshot({ path: join(shots, `failed-${phase}-${index}.png`), fullPage: true })
      .catch(() => {});
    problems.push(`page ${index} was at ${page.url()}: screenshot failed-${phase}-${index}.png`);
  }
} finally {
  await browser.close();
}

result.problems = problems;
await writeFile(resultPath, JSON.stringify(result, null, 2));
if (problems.length) {
  for (const problem of problems) console.error(problem);
  process.exit(1);
}
step("done");

async function day() {
  // --- The admin hires a worker, a manager and an accountant.
  const admin = await newPage();
  await signIn(admin, "admin", adminPassword);
  await open(admin, "Accounts");
  for (const [login, role] of [
    ["kesha", "worker"],
    ["boss", "manager"],
    ["counter", "accountant"],
  ]) {
    const form = admin.locator("form", { has: admin.getByRole("heading", { name: "New account" }) });
    await form.getByLabel("Login").fill(login);
    await form.getByLabel("Password").fill(`${login}-password`);
    await form.getByLabel("Name").fill(login[0].toUpperCase() + login.slice(1));
    await form.getByLabel("Email").fill(`${login}@popug.example`);
    await form.getByLabel("Role", { exact: true }).selectOption({ label: role });
    await form.getByRole("button", { name: "Create account" }).click();
    await form.getByText(`Created ${login} (${role}).`).waitFor();
  }
  await admin.getByRole("cell", { name: "kesha", exact: true }).waitFor();
  await shot(admin, "accounts");
  // A bad login is refused next to its field.
  {
    const form = admin.locator("form", { has: admin.getByRole("heading", { name: "New account" }) });
    await form.getByLabel("Login").fill("No Spaces Allowed");
    await form.getByLabel("Password").fill("long-enough-password");
    await form.getByLabel("Name").fill("Bad");
    await form.getByLabel("Email").fill("bad@popug.example");
    await form.getByRole("button", { name: "Create account" }).click();
    const error = form.locator(".field-error");
    await error.waitFor();
    check(
      await form.getByLabel("Login").evaluate((input) => input.getAttribute("aria-invalid") === "true"),
      "the login field is marked invalid",
    );
    result.loginFieldError = await error.innerText();
    await shot(admin, "accounts-field-error");
  }
  step("accounts created");

  // --- Tasks are created (a bad title is refused next to its field).
  await open(admin, "My tasks");
  const taskForm = admin.locator("form", { has: admin.getByRole("heading", { name: "New task" }) });
  await taskForm.getByLabel("Title").fill("[UBERPOP-42] Old style title");
  await taskForm.getByRole("button", { name: "Create task" }).click();
  const titleError = taskForm.locator(".field-error");
  await titleError.waitFor();
  result.titleFieldError = await titleError.innerText();
  check(result.titleFieldError.includes("title"), `the title error names the field: ${result.titleFieldError}`);
  const titleErrorNextToTitle = await taskForm
    .getByLabel("Title")
    .evaluate((input) => input.nextElementSibling?.classList.contains("field-error") ?? false);
  check(titleErrorNextToTitle, "the title error is shown next to the title field");
  await shot(admin, "my-tasks-field-error");

  const created = [];
  for (const [title, jira] of [
    ["Feed the chicks", "UBERPOP-1"],
    ["Fix the nest", ""],
    ["Count the seeds", "UBERPOP-3"],
  ]) {
    // The tracker hears of the new worker by an event: until then there is
    // no worker to assign to, which the form says; try again shortly.
    for (let attempt = 0; ; attempt++) {
      await taskForm.getByLabel("Title").fill(title);
      await taskForm.getByLabel("Jira id").fill(jira);
      await taskForm.getByLabel("Description").fill(`${title}, today.`);
      await taskForm.getByRole("button", { name: "Create task" }).click();
      const outcome = await Promise.race([
        taskForm.getByText(/^Created POPUG-\d+/).waitFor().then(() => "created"),
        taskForm.locator(".form-error, .field-error").waitFor().then(() => "refused"),
      ]);
      if (outcome === "created") break;
      const refusal = await taskForm.locator(".form-error, .field-error").innerText();
      if (attempt > 60 || !/worker/i.test(refusal)) throw new Error(`task refused: ${refusal}`);
      await admin.waitForTimeout(500);
    }
    const said = await taskForm.locator(".status").innerText();
    created.push(/Created (POPUG-\d+)/.exec(said)[1]);
    await taskForm.locator(".status").evaluate((node) => (node.textContent = ""));
  }
  result.tasks = created;
  await shot(admin, "my-tasks-admin");
  step(`tasks created: ${created.join(", ")}`);
  await signOut(admin);
  await shot(admin, "sign-in");

  // --- The manager shuffles.
  const boss = admin;
  await signIn(boss, "boss", "boss-password");
  await open(boss, "All tasks");
  await boss.getByRole("cell", { name: created[0], exact: true }).waitFor();
  await boss.getByRole("button", { name: "Shuffle open tasks" }).click();
  await boss.getByText(`Reassigned ${created.length} open tasks.`).waitFor();
  await boss.getByLabel("Status").selectOption({ label: "Open" });
  await boss.getByRole("cell", { name: created[0], exact: true }).waitFor();
  await shot(boss, "all-tasks");
  check(
    (await boss.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Accounting" }).count()) === 0,
    "a manager sees no Accounting link",
  );
  step("shuffled");
  await signOut(boss);

  // --- The worker completes one task; sees no Accounting; a direct URL says not allowed.
  const kesha = boss;
  await signIn(kesha, "kesha", "kesha-password");
  const nav = kesha.getByRole("navigation", { name: "Main" });
  result.workerLinks = await nav.getByRole("link").allInnerTexts();
  check(!result.workerLinks.includes("Accounting"), `a worker sees no Accounting link: ${result.workerLinks}`);
  check(!result.workerLinks.includes("All tasks"), "a worker sees no All tasks link");
  await kesha.getByRole("button", { name: `Complete ${created[0]}` }).click();
  await kesha.getByText(`Completed ${created[0]}.`).waitFor();
  await kesha.getByRole("heading", { name: "Done" }).waitFor();
  await shot(kesha, "my-tasks-worker");
  step(`completed ${created[0]}`);

  await kesha.goto(`${base}/accounting`);
  await kesha.getByRole("heading", { name: "Not allowed", level: 1 }).waitFor();
  result.notAllowed = await kesha.locator(".not-allowed").innerText();
  await shot(kesha, "not-allowed");

  // --- My account: the fees of every assignment and the reward, each with its task.
  await kesha.goto(`${base}/tasks`);
  await open(kesha, "My account");
  const expectedEntries = created.length * 2 + 1;
  const rows = await until(
    kesha,
    `${expectedEntries} audit log entries`,
    () =>
      kesha.locator("table tbody tr").evaluateAll((trs) =>
        trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.innerText.trim())),
      ),
    (found) => found.length >= expectedEntries,
  );
  result.worker = {
    balanceCents: cents(await kesha.getByTestId("balance").innerText()),
    entries: rows.map(([time, reason, task, amount, balanceAfter]) => ({
      time,
      reason,
      task,
      amountCents: cents(amount),
      balanceAfterCents: cents(balanceAfter),
    })),
  };
  await shot(kesha, "my-account");
  await kesha.setViewportSize({ width: 390, height: 844 });
  await shot(kesha, "my-account-phone");
  await kesha.setViewportSize({ width: 1280, height: 900 });
  step(`worker balance ${result.worker.balanceCents} cents, ${rows.length} entries`);
  await signOut(kesha);

  // --- The accountant: earnings today and every balance.
  const counter = kesha;
  await signIn(counter, "counter", "counter-password");
  await open(counter, "Accounting");
  result.accountant = {
    earningsTodayCents: cents(await counter.getByTestId("earnings-today").innerText()),
    workerBalanceCents: cents(await counter.locator('[data-login="kesha"]').innerText()),
    closeDayShown: (await counter.getByRole("heading", { name: "Close a day" }).count()) > 0,
  };
  await counter.getByRole("button", { name: "Audit log of kesha" }).click();
  await counter.getByRole("heading", { name: "Account of kesha" }).waitFor();
  await shot(counter, "accounting");
  step(`accountant sees earnings ${result.accountant.earningsTodayCents} cents`);
  await signOut(counter);

  // --- The admin: analytics, accounting with the day close, operations.
  await signIn(admin, "admin", adminPassword);
  await open(admin, "Analytics");
  await admin.getByLabel("Period").selectOption({ label: "Last 7 days" });
  await admin.getByRole("button", { name: "Show" }).first().click();
  const analytics = await until(
    admin,
    "analytics to match the accountant's earnings",
    async () => ({
      earningsCents: cents(await admin.getByTestId("analytics-earnings").innerText()),
      negativePopugs: Number(await admin.getByTestId("analytics-negative").innerText()),
      expensiveRewardCents: (await admin.getByTestId("expensive-reward").count())
        ? cents(await admin.getByTestId("expensive-reward").innerText())
        : null,
    }),
    (seen) => seen.earningsCents === result.accountant.earningsTodayCents && seen.expensiveRewardCents !== null,
  );
  result.analytics = analytics;
  await shot(admin, "analytics");
  await open(admin, "Accounting");
  check((await admin.getByRole("heading", { name: "Close a day" }).count()) === 1, "an admin may close a day");
  await shot(admin, "accounting-admin");
  await open(admin, "Operations");
  await admin.getByTestId("billing-pending").waitFor();
  await shot(admin, "operations");
  await open(admin, "All tasks");
  await admin.getByRole("cell", { name: created[1], exact: true }).waitFor();
  await shot(admin, "all-tasks-admin");
  step("admin pages seen");

  // --- Quiet refresh: an access token about to expire, or refused, is
  // replaced without a sign-in, once.
  const session = () => admin.evaluate(() => JSON.parse(sessionStorage.getItem("popug.session")));
  const edit = (change) =>
    admin.evaluate((change) => {
      const stored = JSON.parse(sessionStorage.getItem("popug.session"));
      Object.assign(stored, change);
      sessionStorage.setItem("popug.session", JSON.stringify(stored));
    }, change);
  const before = await session();
  await edit({ expiresAt: Date.now() });
  await open(admin, "Accounts");
  await admin.getByRole("cell", { name: "kesha", exact: true }).waitFor();
  const expired = await session();
  check(expired.accessToken !== before.accessToken, "a token about to expire is refreshed");
  check(expired.refreshToken !== before.refreshToken, "the refresh token is spent and replaced");
  await edit({ accessToken: "not-a-token" });
  await open(admin, "Analytics");
  await admin.getByTestId("analytics-earnings").waitFor();
  const refused = await session();
  check(refused.accessToken !== "not-a-token", "a refused token is refreshed and the call retried");
  result.refreshes = 2;
  step("tokens refreshed quietly");
  await signOut(admin);

  // --- A newcomer signs up; the admin changes its role, then deactivates it.
  await admin.getByRole("link", { name: "Sign up" }).click();
  await admin.getByRole("heading", { name: "Sign up", level: 1 }).waitFor();
  await admin.getByLabel("Login").fill("chick");
  await admin.getByLabel("Password").fill("chick-password");
  await admin.getByLabel("Name").fill("Chick");
  await admin.getByLabel("Email").fill("chick@popug.example");
  await admin.getByRole("button", { name: "Sign up" }).click();
  await admin.getByRole("heading", { name: "My tasks", level: 1 }).waitFor();
  check((await admin.locator("header .who").innerText()).includes("Chick · worker"), "a newcomer is a worker");
  await admin.getByText("No open tasks.").waitFor();
  await shot(admin, "signed-up");
  await signOut(admin);
  await signIn(admin, "admin", adminPassword);
  await open(admin, "Accounts");
  await admin.getByLabel("Role of chick", { exact: true }).selectOption({ label: "manager" });
  await admin.getByRole("button", { name: "Change role of chick" }).click();
  await admin.getByText("chick is now manager.").waitFor();
  await admin.getByRole("button", { name: "Deactivate chick" }).click();
  await admin.getByText("chick is deactivated.").waitFor();
  const chickRow = admin.getByRole("row").filter({ has: admin.getByRole("cell", { name: "chick", exact: true }) });
  await chickRow.getByRole("cell", { name: "Deactivated" }).waitFor();
  step("a newcomer signed up, was promoted and deactivated");
}
