/**
 * The codes of reading, results, assessment and communications (migration 0011), with the words staff see. One
 * list each: the store's column types, the pages' radios and the reports all read them from here. Pure.
 */

/** A film reader's opinion of one exam. */
export const OPINIONS = ['normal', 'technical_recall', 'recall_assessment'] as const;
export type Opinion = (typeof OPINIONS)[number];
export const OPINION_LABELS: Record<Opinion, string> = {
  normal: 'Normal',
  technical_recall: 'Technical recall',
  recall_assessment: 'Recall for assessment',
};

/** Read 1 and 2 are the blind double reading; read 3 is arbitration. */
export type ReadNumber = 1 | 2 | 3;

export const VIEWS = ['RCC', 'RMLO', 'LCC', 'LMLO'] as const;
export type View = (typeof VIEWS)[number];

export const TECHNICAL_REASONS = ['positioning', 'exposure', 'obscured', 'blurred', 'missing'] as const;
export type TechnicalReason = (typeof TECHNICAL_REASONS)[number];
export const TECHNICAL_REASON_LABELS: Record<TechnicalReason, string> = {
  positioning: 'Positioning',
  exposure: 'Exposure',
  obscured: 'Obscured',
  blurred: 'Blurred',
  missing: 'Missing view',
};

export const LESIONS = [
  'mass_ill_defined',
  'mass_well_defined',
  'microcalcification',
  'asymmetric_density',
  'architectural_distortion',
  'lymph_node',
] as const;
export type Lesion = (typeof LESIONS)[number];
export const LESION_LABELS: Record<Lesion, string> = {
  mass_ill_defined: 'Ill-defined mass',
  mass_well_defined: 'Well-defined mass',
  microcalcification: 'Microcalcification',
  asymmetric_density: 'Asymmetric density',
  architectural_distortion: 'Architectural distortion',
  lymph_node: 'Lymph node',
};

export type BreastSide = 'left' | 'right' | 'bilateral';
export const SIDE_LABELS: Record<BreastSide, string> = { left: 'Left', right: 'Right', bilateral: 'Both' };

/** One finding of a recall for assessment: where, what, and the reader's level of concern (1 low .. 5 high). */
export interface Finding {
  side: 'left' | 'right';
  lesion: Lesion;
  location: string;
  concern: 1 | 2 | 3 | 4 | 5;
}

/** reading_opinion.details by opinion. */
export type OpinionDetails =
  Record<string, never> | { views: View[]; reason: TechnicalReason } | { findings: Finding[] };

export const EXAM_RESULTS = ['routine_recall', 'technical_recall', 'recall_assessment'] as const;
export type ExamResult = (typeof EXAM_RESULTS)[number];
export const EXAM_RESULT_LABELS: Record<ExamResult, string> = {
  routine_recall: 'Normal: routine recall',
  technical_recall: 'Technical recall',
  recall_assessment: 'Recall to assessment',
};

export const PRIOR_IMAGES = ['not_requested', 'requested', 'received', 'not_available', 'not_needed'] as const;
export type PriorImages = (typeof PRIOR_IMAGES)[number];
export const PRIOR_IMAGES_LABELS: Record<PriorImages, string> = {
  not_requested: 'Not requested',
  requested: 'Requested',
  received: 'Received',
  not_available: 'Not available',
  not_needed: 'Not needed',
};

export const ASSESSMENT_PROCEDURES = [
  'clinical_examination',
  'further_mammography',
  'ultrasound',
  'core_biopsy',
  'vacuum_biopsy',
  'open_biopsy',
] as const;
export type AssessmentProcedure = (typeof ASSESSMENT_PROCEDURES)[number];
export const ASSESSMENT_PROCEDURE_LABELS: Record<AssessmentProcedure, string> = {
  clinical_examination: 'Clinical examination',
  further_mammography: 'Further mammography',
  ultrasound: 'Ultrasound',
  core_biopsy: 'Core biopsy',
  vacuum_biopsy: 'Vacuum-assisted biopsy',
  open_biopsy: 'Open (surgical) biopsy',
};
/** Needle biopsies (KC62 counts them apart from open biopsies). */
export const NEEDLE_BIOPSIES: readonly AssessmentProcedure[] = ['core_biopsy', 'vacuum_biopsy'];

export const B_CODES = ['B1', 'B2', 'B3', 'B4', 'B5a', 'B5b', 'B5c'] as const;
export type BCode = (typeof B_CODES)[number];

export const ASSESSMENT_OUTCOMES = [
  'normal',
  'benign',
  'malignant_invasive',
  'malignant_micro_invasive',
  'malignant_non_invasive',
] as const;
export type AssessmentOutcome = (typeof ASSESSMENT_OUTCOMES)[number];
export const ASSESSMENT_OUTCOME_LABELS: Record<AssessmentOutcome, string> = {
  normal: 'Normal',
  benign: 'Benign',
  malignant_invasive: 'Malignant: invasive',
  malignant_micro_invasive: 'Malignant: micro-invasive',
  malignant_non_invasive: 'Malignant: non-invasive (in situ)',
};
export const isMalignant = (outcome: AssessmentOutcome): boolean => outcome.startsWith('malignant');

export const COMMUNICATION_KINDS = [
  'result_normal',
  'result_technical_recall',
  'result_assessment',
  'assessment_outcome',
] as const;
export type CommunicationKind = (typeof COMMUNICATION_KINDS)[number];
export const COMMUNICATION_KIND_LABELS: Record<CommunicationKind, string> = {
  result_normal: 'Normal result',
  result_technical_recall: 'Technical recall',
  result_assessment: 'Recall to assessment',
  assessment_outcome: 'Assessment outcome',
};

export type CommunicationRecipient = 'participant' | 'gp';
export type CommunicationChannel = 'letter' | 'mesh';
export const COMMUNICATION_STATUSES = ['queued', 'sent', 'delivered', 'acknowledged', 'failed'] as const;
export type CommunicationStatus = (typeof COMMUNICATION_STATUSES)[number];
export const COMMUNICATION_STATUS_LABELS: Record<CommunicationStatus, string> = {
  queued: 'Queued',
  sent: 'Sent',
  delivered: 'Delivered',
  acknowledged: 'Acknowledged',
  failed: 'Failed',
};

/** The letter (and GP message) an exam result or an assessment outcome sends. */
export const RESULT_COMMUNICATION: Record<ExamResult, CommunicationKind> = {
  routine_recall: 'result_normal',
  technical_recall: 'result_technical_recall',
  recall_assessment: 'result_assessment',
};

export type ClinicPurpose = 'screening' | 'assessment';
