import type { FastifyReply, FastifyRequest } from 'fastify';
import { can } from '../pathway/staff-roles.js';
import { errorList, type FieldErrors } from './forms.js';

const FLASH_COOKIE = 'sh_flash';

/** The navigation a signed-in user sees, by what their role allows. */
function navigation(request: FastifyRequest) {
  const user = request.user;
  if (!user) return [];
  const path = request.url.split('?')[0] ?? '';
  const items = [
    can(user.role, 'participant.view') && { href: '/participants', text: 'Participants' },
    can(user.role, 'participant.view') && { href: '/movers', text: 'Movers' },
    can(user.role, 'clinic.view') && { href: '/clinics', text: 'Clinics' },
    can(user.role, 'appointment.attendance') && { href: '/today', text: "Today's clinic" },
    can(user.role, 'reading.read') && { href: '/reading', text: 'Reading' },
    can(user.role, 'result.issue') && { href: '/results', text: 'Results' },
    can(user.role, 'assessment.record') && { href: '/assessment', text: 'Assessment' },
    can(user.role, 'letters.send') && { href: '/communications', text: 'Letters and GP messages' },
    can(user.role, 'failsafe.view') && { href: '/failsafes', text: 'Failsafes' },
    can(user.role, 'reports.view') && { href: '/reports', text: 'Reports' },
    can(user.role, 'conflict.resolve') && { href: '/conflicts', text: 'Data conflicts' },
    can(user.role, 'invitation.plan') && { href: '/invitations/batch', text: 'Invitation batches' },
    can(user.role, 'gateway.manage') && { href: '/support', text: 'Support' },
    can(user.role, 'gateway.manage') && { href: '/support/gateways', text: 'Gateways' },
    can(user.role, 'gateway.manage') && { href: '/support/transfers', text: 'Image transfers' },
    can(user.role, 'audit.view') && { href: '/admin/audit', text: 'Audit log' },
    { href: '/docs', text: 'API' },
  ].filter((i): i is { href: string; text: string } => Boolean(i));
  // The section is the longest link the path starts with (/support/gateways is Gateways, not Support as well).
  const section = items
    .filter((i) => path.startsWith(i.href))
    .reduce<string | undefined>((best, i) => (!best || i.href.length > best.length ? i.href : best), undefined);
  return items.map((i) => ({ ...i, current: path === i.href, active: i.href === section }));
}

/** Renders a page with what every page needs: user, navigation, CSRF token, CSP nonce, a one-off message. */
export function page(
  request: FastifyRequest,
  reply: FastifyReply,
  template: string,
  data: Record<string, unknown> & { errors?: FieldErrors },
) {
  const flash = request.cookies[FLASH_COOKIE] ? reply.unsignCookie(request.cookies[FLASH_COOKIE]).value : null;
  if (flash) reply.clearCookie(FLASH_COOKIE, { path: '/' });
  return reply.view(template, {
    ...data,
    user: request.user,
    today: request.server.today(),
    navigation: navigation(request),
    csrfToken: reply.generateCsrf(),
    cspNonce: (reply as FastifyReply & { cspNonce?: { script: string } }).cspNonce?.script,
    flash,
    errorList: data.errors ? errorList(data.errors) : [],
  });
}

/** After a change: redirect with a message shown once on the next page. */
export function redirectWithMessage(reply: FastifyReply, to: string, message: string) {
  reply.setCookie(FLASH_COOKIE, message, { path: '/', httpOnly: true, sameSite: 'lax', signed: true, maxAge: 60 });
  return reply.redirect(to, 303);
}
