import dcmjsDimse from 'dcmjs-dimse';
import { expect } from 'vitest';
import {
  STORAGE_COMMITMENT_SOP_CLASS,
  STORAGE_COMMITMENT_SOP_INSTANCE,
  type SopReference,
} from '../../src/gateway/storage-commitment.js';

const { Client, Dataset } = dcmjsDimse;
const { NActionRequest } = dcmjsDimse.requests;
const { NEventReportResponse } = dcmjsDimse.responses;
const { Status } = dcmjsDimse.constants;
const GATEWAY_AE = 'SHGATEWAY';
const MAMMO = 'MAMMO1';

/** An N-EVENT-REPORT as the modality got it. */
export interface Report {
  eventType: number;
  transactionUid: string;
  committed: string[];
  failed: { sop: string; reason: number }[];
  /** How it came: on the modality's own association, or on one the gateway opened (with the roles it proposed). */
  via: 'own association' | 'new association';
  roles?: { scu: boolean; scp: boolean };
  calling?: string;
  called?: string;
}

export function readReport(request: dcmjsDimse.requests.NEventReportRequest, via: Report['via']): Report {
  const ds = request.getDataset()?.getElements() ?? {};
  const items = (v: unknown) => (Array.isArray(v) ? v : v ? [v] : []) as Record<string, unknown>[];
  expect(request.getAffectedSopClassUid()).toBe(STORAGE_COMMITMENT_SOP_CLASS);
  expect(request.getAffectedSopInstanceUid()).toBe(STORAGE_COMMITMENT_SOP_INSTANCE);
  return {
    eventType: request.getEventTypeId(),
    transactionUid: ds.TransactionUID as string,
    committed: items(ds.ReferencedSOPSequence).map((i) => i.ReferencedSOPInstanceUID as string),
    failed: items(ds.FailedSOPSequence).map((i) => ({
      sop: i.ReferencedSOPInstanceUID as string,
      reason: i.FailureReason as number,
    })),
    via,
  };
}

/**
 * The mammography machine as Storage Commitment SCU (dcmjs-dimse's Client): sends the N-ACTION-RQ and keeps the
 * association open for `lingerMs` after the answer, taking any N-EVENT-REPORT that comes on it.
 */
export async function requestCommitment(
  port: number,
  transactionUid: string | undefined,
  references: SopReference[],
  options: {
    lingerMs?: number;
    callingAe?: string;
    actionTypeId?: number;
    sopInstanceUid?: string;
    dataset?: Record<string, unknown>;
    /** False: a modality that takes no reports on its own associations (never answers them). */
    answerReports?: boolean;
  } = {},
): Promise<{ status: number | undefined; errorComment: string | undefined; reports: Report[]; rejected: boolean }> {
  const client = new Client();
  const request = new NActionRequest(
    STORAGE_COMMITMENT_SOP_CLASS,
    options.sopInstanceUid ?? STORAGE_COMMITMENT_SOP_INSTANCE,
    options.actionTypeId ?? 1,
  );
  request.setDataset(
    new Dataset(
      options.dataset ?? {
        ...(transactionUid ? { TransactionUID: transactionUid } : {}),
        ReferencedSOPSequence: references.map((r) => ({
          ReferencedSOPClassUID: r.sopClassUid,
          ReferencedSOPInstanceUID: r.sopInstanceUid,
        })),
      },
    ),
  );
  const result = {
    status: undefined as number | undefined,
    errorComment: undefined as string | undefined,
    reports: [] as Report[],
    rejected: false,
  };
  request.on('response', (response: dcmjsDimse.responses.NActionResponse) => {
    result.status = response.getStatus();
    result.errorComment = response.getErrorComment();
  });
  client.on(
    'nEventReportRequest',
    (
      report: dcmjsDimse.requests.NEventReportRequest,
      callback: (response: dcmjsDimse.responses.NEventReportResponse) => void,
    ) => {
      result.reports.push(readReport(report, 'own association'));
      if (options.answerReports === false) return;
      const response = NEventReportResponse.fromRequest(report);
      response.setStatus(Status.Success);
      callback(response);
    },
  );
  client.addRequest(request);
  await new Promise<void>((resolve, reject) => {
    client.on('closed', () => resolve());
    client.on('networkError', (error: Error) => reject(error));
    client.on('associationRejected', () => (result.rejected = true));
    client.send('127.0.0.1', port, options.callingAe ?? MAMMO, GATEWAY_AE, {
      associationLingerTimeout: options.lingerMs ?? 0,
    });
  });
  return result;
}
