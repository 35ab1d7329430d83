import { randomBytes } from 'node:crypto';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import view from '@fastify/view';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import nunjucks from 'nunjucks';
import { join } from 'node:path';
import { isoDateInLondon } from '../pathway/dates.js';
import { nhsukFrontendDir, publicDir, viewsDir } from '../paths.js';
import { purgeExpiredSessions } from '../store/accounts.js';
import type { Db } from '../store/database.js';
import { ConflictError, NotFoundError, RuleError } from '../store/errors.js';
import { registerFhirSymptomatic } from './api/fhir-symptomatic.js';
import { registerApi } from './api/routes.js';
import { registerAuthentication } from './auth.js';
import { registerMetrics } from './metrics.js';
import { registerAuditPages } from './pages/audit.js';
import { registerConflictPages } from './pages/conflicts.js';
import { registerGatewayPages } from './pages/gateways.js';
import { registerSupportPages } from './pages/support.js';
import { registerProbePages } from './pages/probes.js';
import { registerInvitationPages } from './pages/invitations.js';
import { registerMoversPages } from './pages/movers.js';
import { registerReadingPages } from './pages/reading.js';
import { registerResultPages } from './pages/results.js';
import { registerAssessmentPages } from './pages/assessment.js';
import { registerCommunicationPages } from './pages/communications.js';
import { registerFailsafePages } from './pages/failsafes.js';
import { registerGpMessagePages } from './pages/gp-messages.js';
import { registerReportPages } from './pages/reports.js';
import { registerKc62Pages } from './pages/kc62.js';
import { registerUptakePages } from './pages/uptake.js';
import { registerKpiPages } from './pages/kpis.js';
import type { ArbitrationPolicy } from '../pathway/reading.js';
import type { MeshSettings } from '../mesh/mesh-client.js';
import { registerClinicPages } from './pages/clinics.js';
import { registerCeasingPages } from './pages/ceasing.js';
import { registerVeryHighRiskPages } from './pages/very-high-risk.js';
import { registerParticipantPages } from './pages/participants.js';
import { registerRecordPages } from './pages/record.js';
import { registerSignInPages } from './pages/sign-in.js';
import { registerSelfBookingPages } from './pages/self-booking.js';
import { registerTransferPages } from './pages/transfers.js';
import { configureTemplates } from './templates.js';

export interface HubOptions {
  db: Db;
  /** Secret for signed cookies (the CSRF secret); random per process when absent. */
  cookieSecret?: string;
  /** Mark cookies Secure: true behind HTTPS (the default outside tests and local demos). */
  secureCookies?: boolean;
  /** Today's date in England; tests pin it. */
  today?: () => string;
  logger?: FastifyServerOptions['logger'];
  /** Trust X-Forwarded-For from these proxies (Fastify's trustProxy: an address, CIDR list or hop count). */
  trustProxy?: FastifyServerOptions['trustProxy'];
  /** Where gateways reach the hub's mutual-TLS listener, shown on the Gateways page (https://host:port). */
  gatewayAddress?: string;
  /** The Image transfers page alerts when a unit's oldest image has waited longer than this (default 240: 4 hours). */
  transferWaitLimitMinutes?: number;
  /** Lets a scraper elsewhere read GET /metrics with "Authorization: Bearer <token>" (default: $METRICS_TOKEN). */
  metricsToken?: string;
  /** When an exam goes to arbitration (default 'discordant': the two reads disagree). */
  arbitration?: ArbitrationPolicy;
  /** GP results by MESH: the hub's mailbox. Without it GP messages stay queued and the failsafes page says so. */
  mesh?: MeshSettings;
  /** Run the daily failsafe job (default true outside tests that pass false). */
  failsafeJob?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    today(): string;
  }
}

/** Keeps personal data out of logs: URLs are logged without their query strings. */
const logSerializers = {
  req(request: { method: string; url: string; ip: string }) {
    return { method: request.method, path: request.url.split('?')[0], ip: request.ip };
  },
};

export async function buildHub(options: HubOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger
      ? { ...(typeof options.logger === 'object' ? options.logger : {}), serializers: logSerializers }
      : false,
    // Off unless a proxy in front is configured: otherwise anyone could write the IP the audit log records.
    trustProxy: options.trustProxy ?? false,
    // The FHIR base: POST /fhir (a Bundle) is routed, authenticated and exempt from CSRF as /fhir/ is.
    rewriteUrl: (request) => (request.url === '/fhir' ? '/fhir/' : (request.url ?? '/')),
  });
  app.decorate('today', options.today ?? (() => isoDateInLondon(new Date())));

  await app.register(helmet, {
    enableCSPNonces: true,
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'https://assets.nhs.uk'],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        upgradeInsecureRequests: options.secureCookies === false ? null : [],
      },
    },
    strictTransportSecurity: options.secureCookies !== false,
  });
  await app.register(cookie, { secret: options.cookieSecret ?? randomBytes(32).toString('hex') });
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    // Form field, or (for the header's sign-out button, which cannot hold a hidden field) the query string.
    getToken: (request) =>
      (request.body as { _csrf?: string } | undefined)?._csrf ?? (request.query as { _csrf?: string })._csrf ?? '',
    cookieOpts: { signed: true, httpOnly: true, sameSite: 'lax', path: '/', secure: options.secureCookies !== false },
  });
  await app.register(formbody);
  await app.register(fastifyStatic, { root: join(nhsukFrontendDir, 'nhsuk', 'assets'), prefix: '/assets/' });
  await app.register(fastifyStatic, {
    root: [join(nhsukFrontendDir, 'nhsuk'), publicDir],
    prefix: '/static/',
    decorateReply: false,
    allowedPath: (path) => path.endsWith('.css') || path.endsWith('.js') || path.endsWith('.map'),
  });
  await app.register(view, {
    engine: { nunjucks },
    templates: [viewsDir, nhsukFrontendDir],
    options: { autoescape: true, throwOnUndefined: false, onConfigure: configureTemplates },
  });

  // Pages: every form post carries a CSRF token (the API uses bearer tokens, not cookies, so needs none).
  app.addHook('preHandler', (request, reply, done) => {
    const isForm = request.method === 'POST' && !request.url.startsWith('/api/') && !request.url.startsWith('/fhir/');
    if (isForm) app.csrfProtection(request, reply, done);
    else done();
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.user || request.url.startsWith('/api/') || request.url.startsWith('/fhir/')) {
      reply.header('cache-control', 'no-store');
    }
    return payload;
  });
  registerAuthentication(app, options.db);

  // Expired sessions are refused when used; this also removes them from the table, hourly.
  const purge = setInterval(
    () => {
      purgeExpiredSessions(options.db).catch((error: Error) => app.log.warn(`Session purge failed: ${error.message}`));
    },
    60 * 60 * 1000,
  );
  purge.unref();
  app.addHook('onClose', async () => clearInterval(purge));

  app.setErrorHandler(async (error, request, reply) => {
    const isApi = request.url.startsWith('/api/') || request.url.startsWith('/fhir/');
    const status =
      error instanceof NotFoundError
        ? 404
        : error instanceof ConflictError
          ? 409
          : error instanceof RuleError
            ? 422
            : ((error as { statusCode?: number }).statusCode ?? 500);
    if (status >= 500) request.log.error(error);
    const code = (error as { code?: string }).code;
    const message =
      code === 'FST_CSRF_INVALID_TOKEN' || code === 'FST_CSRF_MISSING_SECRET'
        ? 'This form has expired or was sent twice. Go back, reload the page and try again.'
        : status >= 500
          ? 'Sorry, there is a problem with the service. Nothing you were changing has been half-saved: try again later.'
          : (error as Error).message;
    if (isApi) {
      return reply.code(status).send({
        error:
          error instanceof RuleError
            ? 'rule'
            : ((
                {
                  400: 'validation',
                  401: 'unauthorised',
                  403: 'forbidden',
                  404: 'not_found',
                  409: 'conflict',
                } as Record<number, string>
              )[status] ?? 'error'),
        message,
        ...(error instanceof RuleError ? { field: error.field } : {}),
      });
    }
    return reply.code(status).view('error.njk', {
      title: status === 404 ? 'Page not found' : 'There is a problem',
      message,
      user: request.user,
    });
  });
  app.setNotFoundHandler(async (request, reply) => {
    if (request.url.startsWith('/api/') || request.url.startsWith('/fhir/')) {
      return reply.code(404).send({ error: 'not_found', message: 'No such endpoint' });
    }
    return reply
      .code(404)
      .view('error.njk', { title: 'Page not found', message: 'Check the address.', user: request.user });
  });

  registerSignInPages(app, options.db, options.secureCookies !== false);
  registerParticipantPages(app, options.db);
  registerCeasingPages(app, options.db);
  registerVeryHighRiskPages(app, options.db);
  registerRecordPages(app, options.db);
  registerClinicPages(app, options.db);
  registerAuditPages(app, options.db);
  registerGatewayPages(app, options.db, options.gatewayAddress);
  registerSupportPages(app, options.db);
  registerProbePages(app, options.db);
  registerTransferPages(app, options.db, { waitLimitMinutes: options.transferWaitLimitMinutes });
  registerConflictPages(app, options.db);
  registerInvitationPages(app, options.db);
  registerMoversPages(app, options.db);
  registerReadingPages(app, options);
  registerResultPages(app, options);
  registerAssessmentPages(app, options);
  registerCommunicationPages(app, options);
  registerGpMessagePages(app, options);
  registerFailsafePages(app, options);
  registerReportPages(app);
  registerKc62Pages(app, options);
  registerUptakePages(app, options);
  registerKpiPages(app, options);
  registerSelfBookingPages(app, options.db, options.secureCookies !== false);
  await registerApi(app, options.db);
  await registerFhirSymptomatic(app, options.db);
  app.get('/health', async () => ({ status: 'ok' }));
  registerMetrics(app, options.db, { token: options.metricsToken ?? process.env.METRICS_TOKEN });
  return app;
}
