import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { authenticate, endSession, SESSION_MAX_MS, startSession } from '../../store/accounts.js';
import { recordAudit, SYSTEM_ACTOR } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import { SESSION_COOKIE } from '../auth.js';
import { page, redirectWithMessage } from '../render.js';

/** Only local paths: a sign-in link must not send people to another site. */
const safeNext = (next: unknown) => (typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/');

const signInForm = z.object({
  username: z.string().trim().toLowerCase().min(1, 'Enter your username'),
  password: z.string().min(1, 'Enter your password'),
  next: z.string().optional(),
});

export function registerSignInPages(app: FastifyInstance, db: Db, secureCookies: boolean): void {
  app.get('/sign-in', async (request, reply) => {
    const next = safeNext((request.query as { next?: string }).next);
    if (request.user) return reply.redirect(next);
    return page(request, reply, 'sign-in.njk', { title: 'Sign in', values: { next } });
  });

  app.post('/sign-in', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, string>;
    const parsed = signInForm.safeParse(body);
    const values = { username: body.username ?? '', next: safeNext(body.next) };
    if (!parsed.success) {
      const errors: Record<string, string> = {};
      for (const issue of parsed.error.issues) errors[String(issue.path[0])] ??= issue.message;
      return page(request, reply.code(400), 'sign-in.njk', { title: 'Sign in', values, errors });
    }
    const user = await authenticate(db, parsed.data.username, parsed.data.password);
    if (!user) {
      await recordAudit(
        db,
        { ...SYSTEM_ACTOR, ip: request.ip, username: parsed.data.username },
        {
          action: 'sign_in.failed',
          entityType: 'session',
        },
      );
      return page(request, reply.code(401), 'sign-in.njk', {
        title: 'Sign in',
        values,
        errors: { username: 'The username or password is not right. Check them and try again.' },
      });
    }
    const token = await startSession(db, user.id, 'web', request.ip);
    await recordAudit(
      db,
      { userId: user.id, username: user.username, ip: request.ip },
      { action: 'sign_in', entityType: 'session' },
    );
    reply.setCookie(SESSION_COOKIE, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: secureCookies,
      maxAge: SESSION_MAX_MS / 1000,
    });
    return reply.redirect(values.next, 303);
  });

  app.post('/sign-out', async (request, reply) => {
    const token = request.cookies[SESSION_COOKIE];
    if (token) await endSession(db, token);
    if (request.user) {
      await recordAudit(
        db,
        { userId: request.user.id, username: request.user.username, ip: request.ip },
        { action: 'sign_out', entityType: 'session' },
      );
    }
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    request.user = null;
    return redirectWithMessage(reply, '/sign-in', 'You have signed out');
  });

  app.get('/', async (request, reply) => {
    if (!request.user) return reply.redirect('/sign-in');
    return page(request, reply, 'home.njk', { title: 'Home' });
  });
}
