/**
 * Staff page latency with many participants and concurrent users: participant search (by NHS number, and by family
 * name + date of birth), the whole-person record page, the results to issue and the failsafes page, on PGlite and on
 * a PostgreSQL server.
 *
 *   npx tsx bench/hub-pages.ts [--participants 250000] [--users 50] [--seconds 20] [--backends pglite,postgres]
 *
 * PostgreSQL: a fresh database on the server in DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 * Prints p50/p95/p99 latency and requests per second for each page. Figures, never assertions.
 */
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { progressReporter } from '../src/cli/progress.js';
import { loadDemoOffice } from '../src/demo/synthetic-office.js';
import { buildHub } from '../src/hub/app.js';
import { createUser, startSession } from '../src/store/accounts.js';
import { freshDatabase } from '../test/support/database.js';

const { values } = parseArgs({
  options: {
    participants: { type: 'string', default: '250000' },
    users: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '20' },
    backends: { type: 'string', default: 'pglite,postgres' },
  },
});
const PARTICIPANTS = Number(values.participants);
const USERS = Number(values.users);
const SECONDS = Number(values.seconds);
const TODAY = '2026-11-23';
// The PostgreSQL server the fresh bench database is made on.
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Run {
  page: string;
  /** The requests one client sends, in turn; `headers` carries that client's session cookie. */
  requests: (session: number, headers: Record<string, string>) => autocannon.Request[];
}

async function measure(base: string, cookies: string[], run: Run) {
  const times: number[] = [];
  let bad = 0;
  let clientIndex = 0;
  const result = await autocannon({
    url: base,
    connections: cookies.length,
    duration: SECONDS,
    requests: [{ method: 'GET', path: '/' }],
    setupClient(client) {
      const index = clientIndex++ % cookies.length;
      // A request's own headers replace the client's, so each request carries the cookie itself.
      client.setRequests(run.requests(index, { cookie: cookies[index]! }));
      client.on('response', (status: number, _bytes: number, ms: number) => {
        times.push(ms);
        if (status >= 400 || (run.page.startsWith('search by NHS') && status !== 303)) bad++;
      });
    },
  });
  times.sort((a, b) => a - b);
  return {
    page: run.page,
    requests: times.length,
    perSecond: Math.round(times.length / SECONDS),
    p50: percentile(times, 50).toFixed(1),
    p95: percentile(times, 95).toFixed(1),
    p99: percentile(times, 99).toFixed(1),
    errors: bad + result.errors + result.timeouts,
  };
}

const pick = <T>(list: T[], i: number) => list[i % list.length]!;

for (const backend of values.backends.split(',')) {
  const database = await freshDatabase(backend === 'postgres' ? 'postgres' : 'pglite');
  const loadStart = Date.now();
  const readerIds = [];
  for (const name of ['reader1', 'reader2', 'reader3'])
    readerIds.push(
      (
        await createUser(database.db, {
          username: name,
          displayName: name,
          role: 'film_reader',
          password: 'bench-reader-123',
        })
      ).id,
    );
  await loadDemoOffice(database.db, {
    seed: 7,
    participants: PARTICIPANTS,
    today: TODAY,
    readerIds,
    onProgress: progressReporter(),
  });
  const loadSeconds = (Date.now() - loadStart) / 1000;
  const app = await buildHub({
    db: database.db,
    secureCookies: false,
    today: () => TODAY,
    cookieSecret: 'bench-cookie-secret-bench-cookie-secret',
    failsafeJob: false,
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });

  // 50 staff users, each with a web session and a CSRF secret/token pair from a real page load.
  const sessions: { cookie: string; csrf: string }[] = [];
  for (let i = 0; i < USERS; i++) {
    const user = await createUser(database.db, {
      username: `bench${i}`,
      displayName: `Bench User ${i}`,
      role: 'admin',
      password: 'bench-password-123',
    });
    const token = await startSession(database.db, user.id, 'web', '127.0.0.1');
    const response = await app.inject({
      method: 'GET',
      url: '/participants',
      headers: { cookie: `sh_session=${token}` },
    });
    const csrfCookie = response.cookies.find((c) => c.name === '_csrf')!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(response.body)![1]!;
    sessions.push({ cookie: `sh_session=${token}; _csrf=${csrfCookie.value}`, csrf });
  }
  const people = await database.db
    .selectFrom('participant')
    .select(['id', 'nhs_number', 'family_name', 'date_of_birth'])
    .orderBy('nhs_number')
    .limit(5000)
    .execute();
  const shuffled = people.map((p, i) => people[(i * 7919) % people.length]!);
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  let n = 0;
  const runs: Run[] = [
    {
      page: 'record page GET /participants/:id',
      requests: (_s, headers) => [
        { method: 'GET', headers, setupRequest: (r) => ({ ...r, path: `/participants/${pick(shuffled, n++).id}` }) },
      ],
    },
    {
      page: 'search by NHS number (POST, 303 to record)',
      requests: (s, headers) => [
        {
          method: 'POST',
          path: '/participants',
          headers: { ...headers, ...form },
          setupRequest: (r) => ({
            ...r,
            body: new URLSearchParams({
              _csrf: sessions[s]!.csrf,
              by: 'nhsNumber',
              nhsNumber: pick(shuffled, n++).nhs_number,
            }).toString(),
          }),
        },
      ],
    },
    {
      page: 'search by family name prefix + date of birth (POST)',
      requests: (s, headers) => [
        {
          method: 'POST',
          path: '/participants',
          headers: { ...headers, ...form },
          setupRequest: (r) => {
            const p = pick(shuffled, n++);
            const [year, month, day] = p.date_of_birth.split('-');
            return {
              ...r,
              body: new URLSearchParams({
                _csrf: sessions[s]!.csrf,
                by: 'nameAndBirthDate',
                familyName: p.family_name.slice(0, 3),
                'dateOfBirth[day]': day!,
                'dateOfBirth[month]': month!,
                'dateOfBirth[year]': year!,
              }).toString(),
            };
          },
        },
      ],
    },
    {
      page: 'results to issue GET /results',
      requests: (_s, headers) => [{ method: 'GET', path: '/results', headers }],
    },
    {
      page: 'failsafes GET /failsafes',
      requests: (_s, headers) => [{ method: 'GET', path: '/failsafes?office=DMO', headers }],
    },
  ];
  console.log(
    `\n${backend}: ${PARTICIPANTS.toLocaleString('en-GB')} participants loaded in ${loadSeconds.toFixed(1)} s; ${USERS} concurrent signed-in users, ${SECONDS} s per page`,
  );
  console.log('| backend | page | requests | req/s | p50 ms | p95 ms | p99 ms | errors |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const run of runs) {
    const r = await measure(
      base,
      sessions.map((s) => s.cookie),
      run,
    );
    console.log(
      `| ${backend} | ${r.page} | ${r.requests} | ${r.perSecond} | ${r.p50} | ${r.p95} | ${r.p99} | ${r.errors} |`,
    );
  }
  await app.close();
  await database.drop();
}
