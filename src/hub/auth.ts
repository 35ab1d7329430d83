import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { can, type Permission } from '../pathway/staff-roles.js';
import { sessionUser, type StaffUser } from '../store/accounts.js';
import type { Actor } from '../store/audit.js';
import type { Db } from '../store/database.js';

export const SESSION_COOKIE = 'sh_session';

declare module 'fastify' {
  interface FastifyRequest {
    user: StaffUser | null;
  }
}

export function actorOf(request: FastifyRequest): Actor {
  return { userId: request.user?.id ?? null, username: request.user?.username ?? 'anonymous', ip: request.ip };
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
}

/** Finds who is asking: a web session cookie for pages, a bearer token for /api and /fhir. */
export function registerAuthentication(app: FastifyInstance, db: Db): void {
  app.decorateRequest('user', null);
  app.addHook('onRequest', async (request) => {
    const isApi = request.url.startsWith('/api/') || request.url.startsWith('/fhir/');
    const token = isApi ? bearerToken(request) : request.cookies[SESSION_COOKIE];
    request.user = token ? ((await sessionUser(db, token, isApi ? 'api' : 'web')) ?? null) : null;
  });
}

/** A page guard: sign in first (coming back here afterwards), and only with the permission. */
export function pageNeeds(permission: Permission) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.user) {
      const next = request.method === 'GET' ? request.url : '/';
      return reply.redirect(`/sign-in?next=${encodeURIComponent(next)}`);
    }
    if (!can(request.user.role, permission)) {
      return reply.code(403).view('error.njk', {
        title: 'You do not have access to this page',
        message: 'Your role does not allow this. Ask a screening office administrator if you need access.',
      });
    }
  };
}

/** An API guard: 401 without a valid bearer token, 403 without the permission. */
export function apiNeeds(permission: Permission) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.user) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="screening-hub"')
        .send({ error: 'unauthorised', message: 'Send a bearer token from POST /api/v1/tokens' });
    }
    if (!can(request.user.role, permission)) {
      return reply.code(403).send({ error: 'forbidden', message: `Your role cannot ${permission}` });
    }
  };
}
