/**
 * The symptomatic link's FHIR R4 endpoint (issue 5, item 5): a Trust EPR posts Condition, Procedure and Encounter
 * resources, one at a time (POST /fhir/Condition, /fhir/Procedure, /fhir/Encounter) or as a transaction or
 * collection Bundle (POST /fhir), as application/fhir+json with the bearer token of an EPR feed account (role
 * epr_feed, permission symptomatic.feed). docs/fhir-symptomatic-link.md has examples.
 *
 * Every answer is an OperationOutcome: 201 something applied, 200 nothing new (nothing for screening, a repeat, an
 * older version); 400 malformed (each issue names the place in `expression`); 422 well-formed but unusable (an NHS
 * number the hub does not know, no date, a date in the future); 401/403 no token or no permission; 413/415 too big
 * or not JSON. A request is applied whole or not at all, and every resource is logged (fhir_symptomatic_message,
 * without the resource: its SHA-256 and size).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  readSymptomaticBundle,
  readSymptomaticResource,
  statusFor,
  type Issue,
  type SymptomaticReading,
  type SymptomaticResourceType,
} from '../../fhir/symptomatic-resources.js';
import { can } from '../../pathway/staff-roles.js';
import type { Db } from '../../store/database.js';
import {
  logRefusedFhirRequest,
  receiveFhirResources,
  type FhirReading,
  type FhirReceipt,
  type FhirRequest,
  type FhirResult,
} from '../../store/symptomatic.js';
import { z } from 'zod';
import { actorOf } from '../auth.js';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
/** Largest body taken: far above a Bundle of one patient's resources. */
export const MAX_FHIR_BODY_BYTES = 1024 * 1024;

type Severity = 'fatal' | 'error' | 'warning' | 'information';
interface OutcomeIssue {
  severity: Severity;
  code: string;
  diagnostics: string;
  expression?: string[];
}

/** For the OpenAPI document only: bodies are read by src/fhir/symptomatic-resources.ts, not by a schema. */
const outcomeSchema = z.object({
  resourceType: z.literal('OperationOutcome'),
  issue: z.array(
    z.object({
      severity: z.enum(['fatal', 'error', 'warning', 'information']),
      code: z.string(),
      diagnostics: z.string(),
      expression: z.array(z.string()).optional(),
    }),
  ),
});
const coded = z.looseObject({ coding: z.array(z.looseObject({ system: z.string(), code: z.string() })) });
const nhsSubject = z.looseObject({
  identifier: z.object({ system: z.literal('https://fhir.nhs.uk/Id/nhs-number'), value: z.string() }).optional(),
  reference: z.string().optional(),
});
const resourceShape = (resourceType: SymptomaticResourceType) =>
  z
    .looseObject({
      resourceType: z.literal(resourceType),
      id: z.string().optional(),
      meta: z.looseObject({ versionId: z.string().optional(), lastUpdated: z.string().optional() }).optional(),
      subject: nhsSubject,
      ...(resourceType === 'Condition'
        ? {
            code: coded,
            clinicalStatus: coded.optional(),
            verificationStatus: coded.optional(),
            onsetDateTime: z.string().optional(),
            recordedDate: z.string().optional(),
          }
        : resourceType === 'Procedure'
          ? {
              status: z.string(),
              code: coded,
              bodySite: z.array(coded).optional(),
              performedDateTime: z.string().optional(),
            }
          : {
              status: z.string(),
              type: z.array(coded).optional(),
              reasonCode: z.array(coded).optional(),
              period: z.looseObject({ start: z.string() }),
            }),
    })
    .describe(`A FHIR R4 ${resourceType} (docs/fhir-symptomatic-link.md)`);
const documentedResponses = {
  200: outcomeSchema.describe('Nothing new: nothing for screening, a repeat, an older version, or a withdrawal'),
  201: outcomeSchema.describe('Applied'),
  400: outcomeSchema.describe('Malformed: expression names the place'),
  401: outcomeSchema.describe('No or expired bearer token'),
  403: outcomeSchema.describe('Not an EPR feed account'),
  413: outcomeSchema.describe('Over 1 MiB'),
  415: outcomeSchema.describe('Not application/fhir+json'),
  422: outcomeSchema.describe('Unusable: NHS number not on the register, no date, a future date'),
};

export function operationOutcome(issues: OutcomeIssue[]) {
  return { resourceType: 'OperationOutcome', issue: issues };
}

const errorIssues = (issues: readonly Issue[]): OutcomeIssue[] =>
  issues.map((i) => ({ severity: 'error', code: i.code, diagnostics: i.diagnostics, expression: [i.expression] }));

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** The bearer token's user must hold symptomatic.feed; the refusal is an OperationOutcome. */
async function feedOnly(request: FastifyRequest, reply: FastifyReply) {
  if (!request.user)
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="screening-hub"')
      .type(FHIR_JSON)
      .send(
        operationOutcome([
          { severity: 'error', code: 'login', diagnostics: 'Send a bearer token from POST /api/v1/tokens' },
        ]),
      );
  if (!can(request.user.role, 'symptomatic.feed'))
    return reply
      .code(403)
      .type(FHIR_JSON)
      .send(
        operationOutcome([
          {
            severity: 'error',
            code: 'forbidden',
            diagnostics: 'Only an EPR feed account (role epr_feed) may post to the symptomatic link',
          },
        ]),
      );
}

const READING_OF = (reading: Exclude<SymptomaticReading, { kind: 'invalid' }>): FhirReading =>
  reading.kind === 'event'
    ? { kind: 'event', event: reading.event }
    : reading.kind === 'ignored'
      ? { kind: 'ignored', why: reading.why }
      : { kind: 'withdrawn', status: reading.status };

function answer(reply: FastifyReply, result: FhirResult, where: (entryIndex: number | null) => string | undefined) {
  if (result.status === 422) {
    const at = where(result.entryIndex);
    return reply
      .code(422)
      .type(FHIR_JSON)
      .send(
        operationOutcome([
          { severity: 'error', code: 'not-found', diagnostics: result.text, ...(at ? { expression: [at] } : {}) },
        ]),
      );
  }
  return reply
    .code(result.status)
    .type(FHIR_JSON)
    .send(
      operationOutcome(
        result.entries.map((e) => {
          const at = where(e.entryIndex);
          return {
            severity: e.outcome === 'review' ? 'warning' : 'information',
            code: e.outcome === 'duplicate' ? 'duplicate' : e.outcome === 'review' ? 'business-rule' : 'informational',
            diagnostics: `${e.resourceKey}: ${e.text}`,
            ...(at ? { expression: [at] } : {}),
          };
        }),
      ),
    );
}

export async function registerFhirSymptomatic(app: FastifyInstance, db: Db): Promise<void> {
  await app.register(async (scope) => {
    // The body is kept as bytes (for its SHA-256) and read here, so that bad JSON gets an OperationOutcome too.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      ['application/fhir+json', 'application/json'],
      { parseAs: 'buffer', bodyLimit: MAX_FHIR_BODY_BYTES },
      (_request, body, done) => done(null, body),
    );
    // The route schemas are for the OpenAPI document: the body is checked by the reader (with FHIR paths in the
    // answer), and the answer is written as it is.
    scope.setValidatorCompiler(() => () => true);
    scope.setSerializerCompiler(() => (data) => JSON.stringify(data));

    const requestOf = (request: FastifyRequest): FhirRequest => ({
      requestId: randomUUID(),
      peer: request.ip,
      actor: actorOf(request),
    });

    scope.setErrorHandler(async (error, request, reply) => {
      const status = (error as { statusCode?: number }).statusCode ?? 500;
      const diagnostics =
        status === 413
          ? `The body is over the ${MAX_FHIR_BODY_BYTES}-byte limit: send one patient's resources at a time`
          : status === 415
            ? 'Send the resource as application/fhir+json'
            : status >= 500
              ? 'The hub could not apply the resource just now: nothing was applied; send it again'
              : (error as Error).message;
      if (status >= 500) request.log.error(error);
      const size = Number(request.headers['content-length'] ?? 0);
      // Logged for the feed account only: anyone else's refused requests would only fill the log.
      if (request.user && can(request.user.role, 'symptomatic.feed'))
        await logRefusedFhirRequest(
          db,
          requestOf(request),
          [{ sha256: sha256(''), sizeBytes: Number.isFinite(size) ? size : 0 }],
          status,
          status >= 500 ? 'error' : 'rejected',
          diagnostics,
        ).catch(() => undefined);
      return reply
        .code(status)
        .type(FHIR_JSON)
        .send(
          operationOutcome([
            {
              severity: 'error',
              code: status >= 500 ? 'exception' : status === 413 ? 'too-costly' : 'structure',
              diagnostics,
            },
          ]),
        );
    });

    /** The JSON of the body, or the 400 answer already sent (logged). */
    const parseBody = async (request: FastifyRequest, reply: FastifyReply, ctx: FhirRequest) => {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      try {
        if (raw.length === 0) throw new Error('the body is empty');
        return { raw, json: JSON.parse(raw.toString('utf8')) as unknown };
      } catch (error) {
        const diagnostics = `The body is not JSON: ${(error as Error).message}`;
        await logRefusedFhirRequest(
          db,
          ctx,
          [{ sha256: sha256(raw), sizeBytes: raw.length }],
          400,
          'rejected',
          diagnostics,
        );
        await reply
          .code(400)
          .type(FHIR_JSON)
          .send(operationOutcome([{ severity: 'error', code: 'structure', diagnostics, expression: ['$'] }]));
        return undefined;
      }
    };

    const refuse = async (
      reply: FastifyReply,
      ctx: FhirRequest,
      receipt: Partial<FhirReceipt> & Pick<FhirReceipt, 'sha256' | 'sizeBytes'>,
      issues: Issue[],
    ) => {
      const status = statusFor(issues);
      await logRefusedFhirRequest(
        db,
        ctx,
        [receipt],
        status,
        status === 400 ? 'rejected' : 'unprocessable',
        issues.map((i) => `${i.expression}: ${i.diagnostics}`).join('; '),
      );
      return reply
        .code(status)
        .type(FHIR_JSON)
        .send(operationOutcome(errorIssues(issues)));
    };

    const idempotencyKey = (request: FastifyRequest): string | undefined => {
      const header = request.headers['idempotency-key'];
      const value = (Array.isArray(header) ? header[0] : header)?.trim();
      return value ? value.slice(0, 200) : undefined;
    };

    for (const resourceType of ['Condition', 'Procedure', 'Encounter'] as SymptomaticResourceType[]) {
      scope.post(
        `/fhir/${resourceType}`,
        {
          preHandler: feedOnly,
          schema: {
            tags: ['fhir'],
            summary: `Symptomatic link: post a FHIR R4 ${resourceType} from the Trust EPR (application/fhir+json)`,
            description:
              'For EPR feed accounts (role epr_feed). Applied once per resource id and meta.versionId (or Idempotency-Key header); older versions (meta.lastUpdated) change nothing. Answers an OperationOutcome: 201 applied, 200 nothing new, 400 malformed (expression names the field), 422 unusable (NHS number not known to the hub). See docs/fhir-symptomatic-link.md.',
            security: [{ bearer: [] }],
            consumes: ['application/fhir+json'],
            body: resourceShape(resourceType),
            response: documentedResponses,
          },
        },
        async (request, reply) => {
          const ctx = requestOf(request);
          const body = await parseBody(request, reply, ctx);
          if (!body) return reply;
          const base = { resourceType, sha256: sha256(body.raw), sizeBytes: body.raw.length, entryIndex: null };
          const reading = readSymptomaticResource(body.json, app.today(), { expected: resourceType });
          if (reading.kind === 'invalid') return refuse(reply, ctx, base, reading.issues);
          const header = idempotencyKey(request);
          const resourceKey = reading.ref.id
            ? `${resourceType}/${reading.ref.id}`
            : header
              ? `Idempotency-Key:${header}`
              : undefined;
          if (!resourceKey)
            return refuse(reply, ctx, base, [
              {
                status: 400,
                code: 'required',
                expression: `${resourceType}.id`,
                diagnostics: `${resourceType}.id is missing: give the resource its EPR id (and meta.versionId), or send an Idempotency-Key header, so that a repeat is not applied twice`,
              },
            ]);
          const receipt: FhirReceipt = {
            ...base,
            resourceKey,
            versionId: reading.ref.versionId ?? '',
            lastUpdated: reading.ref.lastUpdated,
          };
          const result = await receiveFhirResources(db, ctx, [{ receipt, reading: READING_OF(reading) }]);
          return answer(reply, result, () =>
            result.status === 422 ? `${resourceType}.subject.identifier` : undefined,
          );
        },
      );
    }

    // The FHIR base: a transaction or collection Bundle (app.ts sends POST /fhir here).
    scope.post(
      '/fhir/',
      {
        preHandler: feedOnly,
        schema: {
          tags: ['fhir'],
          summary:
            'Symptomatic link: post a FHIR R4 transaction or collection Bundle of Conditions, Procedures and Encounters',
          description:
            'POST /fhir (the FHIR base). Applied whole or not at all. Each entry is applied once per resource id and meta.versionId (else its fullUrl, else the Idempotency-Key header and its position). Answers an OperationOutcome with one issue per entry (expression Bundle.entry[n]).',
          security: [{ bearer: [] }],
          consumes: ['application/fhir+json'],
          body: z
            .looseObject({
              resourceType: z.literal('Bundle'),
              type: z.enum(['transaction', 'collection']),
              entry: z.array(z.looseObject({ fullUrl: z.string().optional(), resource: z.looseObject({}) })),
            })
            .describe('A FHIR R4 Bundle of Conditions, Procedures and Encounters (and Patients they refer to)'),
          response: documentedResponses,
        },
      },
      async (request, reply) => {
        const ctx = requestOf(request);
        const body = await parseBody(request, reply, ctx);
        if (!body) return reply;
        const whole = {
          resourceType: 'Bundle',
          sha256: sha256(body.raw),
          sizeBytes: body.raw.length,
          entryIndex: null,
        };
        const bundle = readSymptomaticBundle(body.json, app.today());
        if (bundle.kind === 'invalid') return refuse(reply, ctx, whole, bundle.issues);
        const header = idempotencyKey(request);
        const entries = (body.json as { entry: { resource: unknown }[] }).entry;
        const items: { receipt: FhirReceipt; reading: FhirReading }[] = [];
        const missing: Issue[] = [];
        for (const { index, fullUrl, reading } of bundle.entries) {
          if (reading.kind === 'invalid') continue;
          const resourceKey = reading.ref.id
            ? `${reading.ref.resourceType}/${reading.ref.id}`
            : fullUrl
              ? fullUrl.slice(0, 500)
              : header
                ? `Idempotency-Key:${header}#${index}`
                : undefined;
          if (!resourceKey) {
            missing.push({
              status: 400,
              code: 'required',
              expression: `Bundle.entry[${index}].resource.id`,
              diagnostics: `Bundle.entry[${index}]: the resource has no id and the entry no fullUrl: give one (or an Idempotency-Key header) so that a repeat is not applied twice`,
            });
            continue;
          }
          const json = JSON.stringify(entries[index]?.resource);
          items.push({
            receipt: {
              entryIndex: index,
              resourceType: reading.ref.resourceType,
              resourceKey,
              versionId: reading.ref.versionId ?? '',
              lastUpdated: reading.ref.lastUpdated,
              sha256: sha256(json),
              sizeBytes: Buffer.byteLength(json),
            },
            reading: READING_OF(reading),
          });
        }
        if (missing.length) return refuse(reply, ctx, whole, missing);
        const result = await receiveFhirResources(db, ctx, items);
        return answer(reply, result, (entryIndex) => (entryIndex === null ? undefined : `Bundle.entry[${entryIndex}]`));
      },
    );
  });
}
