import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildHub, type HubOptions } from '../../src/hub/app.js';
import type { Db } from '../../src/store/database.js';
import { PASSWORD, TODAY } from './fixtures.js';

/** A hub for tests: today pinned, no daily failsafe job unless asked (it would write rows as the hub starts). */
export async function testHub(db: Db, options: Partial<HubOptions> = {}): Promise<FastifyInstance> {
  return buildHub({
    db,
    secureCookies: false,
    today: () => TODAY,
    cookieSecret: 'test-cookie-secret-test-cookie-secret',
    failsafeJob: false,
    ...options,
  });
}

/** A browser-like client over inject: keeps cookies, finds the CSRF token in the last page, follows nothing. */
export class PageClient {
  private cookies = new Map<string, string>();
  csrf = '';
  constructor(private readonly app: FastifyInstance) {}

  private remember(response: LightMyRequestResponse) {
    for (const c of response.cookies) {
      if (c.value === '' || (c.expires && c.expires.getTime() < Date.now())) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    const token = /name="_csrf" value="([^"]+)"/.exec(response.body)?.[1];
    if (token) this.csrf = token;
    return response;
  }

  private cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(url: string) {
    return this.remember(await this.app.inject({ method: 'GET', url, headers: { cookie: this.cookieHeader() } }));
  }

  async post(url: string, form: Record<string, string>, options: { csrf?: boolean } = {}) {
    const body = new URLSearchParams({ ...(options.csrf === false ? {} : { _csrf: this.csrf }), ...form }).toString();
    return this.remember(
      await this.app.inject({
        method: 'POST',
        url,
        payload: body,
        headers: { cookie: this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      }),
    );
  }

  async signIn(username: string, password = PASSWORD) {
    await this.get('/sign-in');
    return this.post('/sign-in', { username, password, next: '/' });
  }
}

export async function apiToken(app: FastifyInstance, username: string): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/api/v1/tokens',
    payload: { username, password: PASSWORD },
  });
  if (response.statusCode !== 201) throw new Error(`token: ${response.statusCode} ${response.body}`);
  return response.json<{ token: string }>().token;
}
