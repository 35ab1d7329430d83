import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { APPOINTMENT_STATUSES } from '../../pathway/appointment-status.js';
import { itemProblems, SOURCE_LABELS, type Source } from '../../pathway/record-items.js';
import { authenticate, SESSION_MAX_MS, startSession } from '../../store/accounts.js';
import { recordAudit, type Actor } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import { RuleError } from '../../store/errors.js';
import {
  bookAppointment,
  findAppointments,
  changeAppointmentStatus,
  listClinics,
  loadClinic,
  rescheduleAppointment,
} from '../../store/clinics.js';
import { loadParticipantRecord } from '../../store/participant-record.js';
import {
  correctDemographics,
  DEMOGRAPHIC_FIELDS,
  searchParticipants,
  type SearchQuery,
} from '../../store/participants.js';
import { addItem } from '../../store/record-items.js';
import { actorOf, apiNeeds } from '../auth.js';
import { isoDateField, nhsNumberField } from '../forms.js';
import { fhirAppointment, fhirPatient, NHS_NUMBER_SYSTEM, searchsetBundle } from './fhir-resources.js';

const SOURCES = Object.keys(SOURCE_LABELS) as [Source, ...Source[]];
const bearer = [{ bearer: [] }];
const idParam = z.object({ id: z.uuid() });
const errorBody = z.object({ error: z.string(), message: z.string(), field: z.string().optional() });

const participantSearch = z
  .object({
    nhsNumber: nhsNumberField.optional(),
    familyName: z.string().trim().min(1).optional(),
    givenName: z.string().trim().min(1).optional(),
    dateOfBirth: isoDateField('the date of birth').optional(),
    postcode: z.string().trim().min(5).max(8).optional(),
  })
  .refine((q) => q.nhsNumber || q.postcode || (q.familyName && q.dateOfBirth), {
    message: 'Search by nhsNumber, by postcode, or by familyName and dateOfBirth',
  });

const itemBody = z.object({
  kind: z.string(),
  side: z.enum(['left', 'right', 'bilateral']).nullable().default(null),
  value: z.string().trim().max(200).nullable().default(null),
  details: z.string().trim().max(2000).default(''),
  temporaryUntil: isoDateField('the end date').nullable().default(null),
  source: z.enum(SOURCES),
  sourceDate: isoDateField('the source date'),
});

const demographicsShape = Object.fromEntries(
  Object.keys(DEMOGRAPHIC_FIELDS).map((f) => [f, z.string().trim().max(200).nullable().optional()]),
) as Record<keyof typeof DEMOGRAPHIC_FIELDS, z.ZodOptional<z.ZodNullable<z.ZodString>>>;

/** The JSON API (/api/v1) and FHIR R4 reads (/fhir), with OpenAPI at /docs. Bearer tokens from POST /api/v1/tokens. */
export async function registerApi(app: FastifyInstance, db: Db): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Screening Hub API',
        version: '1',
        description:
          'Participants, clinics and appointments of the NHS Breast Screening Programme hub. Get a bearer token from POST /api/v1/tokens with a staff username and password. FHIR R4 Patient and Appointment reads are under /fhir.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(async (api) => {
    api.setValidatorCompiler(validatorCompiler);
    api.setSerializerCompiler(serializerCompiler);
    const r = api.withTypeProvider<ZodTypeProvider>();

    r.post(
      '/api/v1/tokens',
      {
        schema: {
          tags: ['auth'],
          summary: 'Exchange a staff username and password for a bearer token (valid 12 hours, 30 minutes idle)',
          body: z.object({ username: z.string().min(1), password: z.string().min(1) }),
          response: { 201: z.object({ token: z.string(), expiresAt: z.string() }), 401: errorBody },
        },
      },
      async (request, reply) => {
        const user = await authenticate(db, request.body.username, request.body.password);
        if (!user)
          return reply.code(401).send({ error: 'unauthorised', message: 'The username or password is not right' });
        const token = await startSession(db, user.id, 'api', request.ip);
        await recordAudit(
          db,
          { userId: user.id, username: user.username, ip: request.ip },
          { action: 'api_token', entityType: 'session' },
        );
        return reply.code(201).send({ token, expiresAt: new Date(Date.now() + SESSION_MAX_MS).toISOString() });
      },
    );

    r.get(
      '/api/v1/participants',
      {
        preHandler: apiNeeds('participant.view'),
        schema: {
          tags: ['participants'],
          summary: 'Find participants',
          security: bearer,
          querystring: participantSearch,
        },
      },
      async (request) => {
        const q = request.query;
        const query: SearchQuery = q.nhsNumber
          ? { by: 'nhsNumber', nhsNumber: q.nhsNumber }
          : q.postcode
            ? { by: 'postcode', postcode: q.postcode }
            : {
                by: 'nameAndBirthDate',
                familyName: q.familyName!,
                dateOfBirth: q.dateOfBirth!,
                ...(q.givenName ? { givenName: q.givenName } : {}),
              };
        const { rows, more } = await searchParticipants(db, query, actorOf(request));
        return { participants: rows, more };
      },
    );

    r.get(
      '/api/v1/participants/:id',
      {
        preHandler: apiNeeds('participant.view'),
        schema: {
          tags: ['participants'],
          summary: 'The whole-person record, with provenance and history',
          security: bearer,
          params: idParam,
        },
      },
      async (request) => loadParticipantRecord(db, { id: request.params.id }, actorOf(request)),
    );

    r.patch(
      '/api/v1/participants/:id',
      {
        preHandler: apiNeeds('participant.edit'),
        schema: {
          tags: ['participants'],
          summary: 'Correct demographic fields; 409 if the record changed since `version`',
          security: bearer,
          params: idParam,
          body: z.object({
            version: z.number().int().positive(),
            source: z.enum(SOURCES),
            sourceDate: isoDateField('the source date'),
            reason: z.string().max(500).nullable().default(null),
            changes: z.object(demographicsShape).strict(),
          }),
        },
      },
      async (request) => {
        const { version, source, sourceDate, reason, changes } = request.body;
        if (sourceDate > app.today()) throw new RuleError('sourceDate', 'The source date must be today or in the past');
        const changed = await correctDemographics(
          db,
          { participantId: request.params.id, expectedVersion: version, source, sourceDate, reason, changes },
          actorOf(request),
        );
        return { changed };
      },
    );

    r.post(
      '/api/v1/participants/:id/items',
      {
        preHandler: apiNeeds('participant.edit'),
        schema: {
          tags: ['participants'],
          summary: 'Add clinical history, an access need or a communication preference',
          security: bearer,
          params: idParam,
          body: itemBody,
        },
      },
      async (request, reply) => {
        const problem = itemProblems(request.body, app.today())[0];
        if (problem) throw new RuleError(problem.field, problem.message);
        const id = await addItem(db, request.params.id, request.body, actorOf(request));
        return reply.code(201).send({ id });
      },
    );

    r.get(
      '/api/v1/clinics',
      {
        preHandler: apiNeeds('clinic.view'),
        schema: {
          tags: ['clinics'],
          summary: 'Clinics between two dates',
          security: bearer,
          querystring: z.object({
            from: isoDateField('from'),
            to: isoDateField('to'),
            siteId: z.string().optional(),
            locationId: z.string().optional(),
          }),
        },
      },
      async (request) => ({ clinics: await listClinics(db, request.query) }),
    );

    r.get(
      '/api/v1/clinics/:id',
      {
        preHandler: apiNeeds('clinic.view'),
        schema: {
          tags: ['clinics'],
          summary: 'A clinic with its slots and appointments',
          security: bearer,
          params: idParam,
        },
      },
      async (request) => loadClinic(db, request.params.id, actorOf(request)),
    );

    r.post(
      '/api/v1/appointments',
      {
        preHandler: apiNeeds('appointment.book'),
        schema: {
          tags: ['appointments'],
          summary: 'Book an appointment (the first free slot when slotIndex is absent)',
          security: bearer,
          body: z.object({
            participantId: z.uuid(),
            clinicId: z.uuid(),
            slotIndex: z.number().int().min(0).optional(),
          }),
        },
      },
      async (request, reply) => {
        const id = await bookAppointment(db, request.body, actorOf(request), app.today());
        return reply.code(201).send({ id });
      },
    );

    r.post(
      '/api/v1/appointments/:id/status',
      {
        preHandler: apiNeeds('appointment.attendance'),
        schema: {
          tags: ['appointments'],
          summary: 'Record attendance or cancel; 409 if the appointment changed since `version`',
          security: bearer,
          params: idParam,
          body: z.object({
            version: z.number().int().positive(),
            status: z.enum(APPOINTMENT_STATUSES),
            reason: z.string().max(500).nullable().default(null),
          }),
        },
      },
      async (request) => {
        const { version, status, reason } = request.body;
        await changeAppointmentStatus(
          db,
          { appointmentId: request.params.id, expectedVersion: version, to: status, reason, via: 'api' },
          actorOf(request),
          app.today(),
        );
        return { status };
      },
    );

    r.post(
      '/api/v1/appointments/:id/reschedule',
      {
        preHandler: apiNeeds('appointment.book'),
        schema: {
          tags: ['appointments'],
          summary: 'Move an appointment to another clinic or time',
          security: bearer,
          params: idParam,
          body: z.object({
            version: z.number().int().positive(),
            clinicId: z.uuid(),
            slotIndex: z.number().int().min(0).optional(),
          }),
        },
      },
      async (request, reply) => {
        const { version, clinicId, slotIndex } = request.body;
        const id = await rescheduleAppointment(
          db,
          {
            appointmentId: request.params.id,
            expectedVersion: version,
            clinicId,
            ...(slotIndex === undefined ? {} : { slotIndex }),
          },
          actorOf(request),
          app.today(),
        );
        return reply.code(201).send({ id });
      },
    );

    // FHIR R4 reads.
    const fhirJson = 'application/fhir+json; charset=utf-8';
    /** Participants for a FHIR Patient read; each one returned is audited as a view of her record. */
    const viewPatients = async (where: { id: string } | { nhsNumber: string }, actor: Actor) => {
      const rows = await db
        .selectFrom('participant as p')
        .leftJoin('gp_practice as g', 'g.ods_code', 'p.gp_practice_code')
        .selectAll('p')
        .select('g.name as gp_practice_name')
        .$if('id' in where, (q) => q.where('p.id', '=', (where as { id: string }).id))
        .$if('nhsNumber' in where, (q) => q.where('p.nhs_number', '=', (where as { nhsNumber: string }).nhsNumber))
        .execute();
      for (const p of rows) {
        await recordAudit(db, actor, {
          action: 'participant.view',
          entityType: 'participant',
          entityId: p.id,
          participantId: p.id,
          detail: { via: 'fhir' },
        });
      }
      return rows;
    };

    r.get(
      '/fhir/Patient/:id',
      {
        preHandler: apiNeeds('participant.view'),
        schema: { tags: ['fhir'], summary: 'FHIR R4 Patient', security: bearer, params: idParam },
      },
      async (request, reply) => {
        const [p] = await viewPatients({ id: request.params.id }, actorOf(request));
        if (!p) return reply.code(404).type(fhirJson).send(operationOutcome('not-found', 'No such Patient'));
        return reply.type(fhirJson).send(fhirPatient(p));
      },
    );

    r.get(
      '/fhir/Patient',
      {
        preHandler: apiNeeds('participant.view'),
        schema: {
          tags: ['fhir'],
          summary: `FHIR R4 Patient search by identifier=${NHS_NUMBER_SYSTEM}|<NHS number>`,
          security: bearer,
          querystring: z.object({
            identifier: z
              .string()
              .regex(
                /^https:\/\/fhir\.nhs\.uk\/Id\/nhs-number\|\d{10}$/,
                `identifier must be ${NHS_NUMBER_SYSTEM}|<10 digits>`,
              ),
          }),
        },
      },
      async (request, reply) => {
        const nhsNumber = request.query.identifier.split('|')[1]!;
        const rows = await viewPatients({ nhsNumber }, actorOf(request));
        return reply.type(fhirJson).send(searchsetBundle(rows.map(fhirPatient)));
      },
    );

    r.get(
      '/fhir/Appointment/:id',
      {
        preHandler: apiNeeds('clinic.view'),
        schema: { tags: ['fhir'], summary: 'FHIR R4 Appointment', security: bearer, params: idParam },
      },
      async (request, reply) => {
        const [a] = await findAppointments(db, { id: request.params.id });
        if (!a) return reply.code(404).type(fhirJson).send(operationOutcome('not-found', 'No such Appointment'));
        return reply.type(fhirJson).send(fhirAppointment(a));
      },
    );

    r.get(
      '/fhir/Appointment',
      {
        preHandler: apiNeeds('participant.view'),
        schema: {
          tags: ['fhir'],
          summary: 'FHIR R4 Appointment search by patient=Patient/<id>',
          security: bearer,
          querystring: z.object({
            patient: z.string().regex(/^(Patient\/)?[0-9a-f-]{36}$/, 'patient must be Patient/<id>'),
          }),
        },
      },
      async (request, reply) => {
        const participantId = request.query.patient.replace(/^Patient\//, '');
        const rows = await findAppointments(db, { participantId });
        if (rows.length === 0) return reply.type(fhirJson).send(searchsetBundle([]));
        await recordAudit(db, actorOf(request), {
          action: 'appointment.list',
          entityType: 'participant',
          entityId: participantId,
          participantId,
          detail: { via: 'fhir', results: rows.length },
        });
        return reply.type(fhirJson).send(searchsetBundle(rows.map(fhirAppointment)));
      },
    );
  });
}

function operationOutcome(code: string, diagnostics: string) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
}
