import type { AppointmentStatus } from '../../pathway/appointment-status.js';

/** FHIR R4 shapes for what the hub holds, following the NHS England (UK Core) identifier systems. */
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
export const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const ACCESSION_SYSTEM = 'https://screening-hub.example.nhs.uk/Id/accession-number';

export interface PatientSource {
  id: string;
  nhs_number: string;
  given_name: string;
  family_name: string;
  date_of_birth: string;
  date_of_death: string | null;
  sex: string;
  address_line1: string;
  address_line2: string | null;
  town: string | null;
  postcode: string;
  phone: string | null;
  email: string | null;
  gp_practice_code: string | null;
  gp_practice_name?: string | null;
  version: number;
  updated_at: Date;
}

export function fhirPatient(p: PatientSource) {
  const telecom = [
    ...(p.phone ? [{ system: 'phone', value: p.phone }] : []),
    ...(p.email ? [{ system: 'email', value: p.email }] : []),
  ];
  return {
    resourceType: 'Patient',
    id: p.id,
    meta: { versionId: String(p.version), lastUpdated: p.updated_at.toISOString() },
    identifier: [{ system: NHS_NUMBER_SYSTEM, value: p.nhs_number }],
    name: [{ use: 'official', family: p.family_name, given: [p.given_name] }],
    gender: p.sex === 'female' || p.sex === 'male' || p.sex === 'other' ? p.sex : 'unknown',
    birthDate: p.date_of_birth,
    ...(p.date_of_death ? { deceasedDateTime: p.date_of_death } : { deceasedBoolean: false }),
    address: [
      {
        use: 'home',
        line: [p.address_line1, p.address_line2].filter((l): l is string => Boolean(l)),
        ...(p.town ? { city: p.town } : {}),
        postalCode: p.postcode,
      },
    ],
    ...(telecom.length ? { telecom } : {}),
    ...(p.gp_practice_code
      ? {
          generalPractitioner: [
            {
              identifier: { system: ODS_SYSTEM, value: p.gp_practice_code },
              ...(p.gp_practice_name ? { display: p.gp_practice_name } : {}),
            },
          ],
        }
      : {}),
  };
}

const FHIR_APPOINTMENT_STATUS: Record<AppointmentStatus, string> = {
  scheduled: 'booked',
  checked_in: 'checked-in',
  in_progress: 'arrived',
  paused: 'arrived',
  cancelled: 'cancelled',
  did_not_attend: 'noshow',
  screened: 'fulfilled',
  partially_screened: 'fulfilled',
  attended_not_screened: 'fulfilled',
};

export interface AppointmentSource {
  id: string;
  status: AppointmentStatus;
  status_reason: string | null;
  accession_number: string;
  participant_id: string;
  clinic_date: string;
  start: string;
  minutes: number;
  location_name: string;
  site_name: string;
}

/** '2026-11-23' + '09:10' as an instant in England (GMT or BST on that day). */
export function londonInstant(date: string, time: string): string {
  const guess = new Date(`${date}T${time}:00Z`);
  const inLondon = new Date(guess.toLocaleString('en-US', { timeZone: 'Europe/London' }));
  const inUtc = new Date(guess.toLocaleString('en-US', { timeZone: 'UTC' }));
  return new Date(guess.getTime() - (inLondon.getTime() - inUtc.getTime())).toISOString();
}

export function fhirAppointment(a: AppointmentSource) {
  const start = londonInstant(a.clinic_date, a.start);
  return {
    resourceType: 'Appointment',
    id: a.id,
    identifier: [{ system: ACCESSION_SYSTEM, value: a.accession_number }],
    status: FHIR_APPOINTMENT_STATUS[a.status],
    ...(a.status_reason ? { cancelationReason: { text: a.status_reason } } : {}),
    serviceType: [{ text: 'Breast screening mammography' }],
    start,
    end: new Date(new Date(start).getTime() + a.minutes * 60_000).toISOString(),
    minutesDuration: a.minutes,
    participant: [
      { actor: { reference: `Patient/${a.participant_id}` }, status: 'accepted' },
      { actor: { display: `${a.site_name}, ${a.location_name}` }, status: 'accepted' },
    ],
    extension: [
      { url: 'https://screening-hub.example.nhs.uk/StructureDefinition/appointment-status', valueCode: a.status },
    ],
  };
}

export function searchsetBundle(resources: object[]) {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: resources.length,
    entry: resources.map((resource) => ({ resource, search: { mode: 'match' } })),
  };
}
