/** Staff roles and what each may do. One table, read by the pages and the API alike. */
export const ROLES = ['admin', 'mammographer', 'film_reader', 'programme_manager', 'support', 'epr_feed'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_LABELS: Record<Role, string> = {
  admin: 'Screening office admin',
  mammographer: 'Mammographer',
  film_reader: 'Film reader',
  programme_manager: 'Programme manager',
  support: 'Support team',
  epr_feed: 'Trust EPR feed (system account)',
};

export type Permission =
  | 'participant.view'
  | 'participant.edit'
  | 'clinic.view'
  | 'appointment.book'
  | 'appointment.attendance'
  | 'audit.view'
  | 'gateway.manage'
  | 'conflict.resolve'
  | 'invitation.plan'
  | 'symptomatic.feed'
  | 'reading.read'
  | 'result.issue'
  | 'assessment.record'
  | 'letters.send'
  | 'failsafe.view'
  | 'reports.view'
  | 'intervention.manage';

const GRANTS: Record<Role, readonly Permission[]> = {
  admin: [
    'participant.view',
    'participant.edit',
    'clinic.view',
    'appointment.book',
    'appointment.attendance',
    'audit.view',
    'conflict.resolve',
    'invitation.plan',
    'result.issue',
    'letters.send',
    'failsafe.view',
    'reports.view',
  ],
  mammographer: ['participant.view', 'participant.edit', 'clinic.view', 'appointment.attendance'],
  // Film readers (radiologists, advanced practitioners) read and arbitrate, and record assessment.
  film_reader: ['participant.view', 'clinic.view', 'reading.read', 'assessment.record'],
  programme_manager: [
    'participant.view',
    'clinic.view',
    'invitation.plan',
    'failsafe.view',
    'reports.view',
    'intervention.manage',
  ],
  // The support team looks after gateways and links, not people: no personal data.
  support: ['clinic.view', 'gateway.manage'],
  // A Trust EPR's interface engine posting FHIR to the symptomatic link: it tells the hub of diagnoses and
  // treatment (which suspends invitations) and can do nothing else, not even read a record back. A staff role
  // cannot post: what comes in as the EPR must be from the EPR.
  epr_feed: ['symptomatic.feed'],
};

export function can(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}
