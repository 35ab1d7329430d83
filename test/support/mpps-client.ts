import dcmjsDimse from 'dcmjs-dimse';
import { MPPS_SOP_CLASS } from '../../src/dicom/performed-procedure-step.js';

const { Client, Dataset } = dcmjsDimse;
const { NCreateRequest, NSetRequest } = dcmjsDimse.requests;

/** What the modality (here dcmjs-dimse's Client) got back for one MPPS request. */
export interface MppsAnswer {
  status: number | undefined;
  sopInstanceUid: string | undefined;
  errorComment: string | undefined;
}

export type MppsMessage =
  | { op: 'create'; sopInstanceUid: string | undefined; dataset: Record<string, unknown> }
  | { op: 'set'; sopInstanceUid: string; dataset: Record<string, unknown> };

/** Sends MPPS N-CREATE and N-SET requests on one association, as a mammography machine does, and collects answers. */
export async function sendMpps(port: number, messages: MppsMessage[], callingAe = 'MAMMO1'): Promise<MppsAnswer[]> {
  const client = new Client();
  const answers: MppsAnswer[] = messages.map(() => ({
    status: undefined,
    sopInstanceUid: undefined,
    errorComment: undefined,
  }));
  messages.forEach((message, i) => {
    const request =
      message.op === 'create'
        ? new NCreateRequest(MPPS_SOP_CLASS, message.sopInstanceUid ?? '')
        : new NSetRequest(MPPS_SOP_CLASS, message.sopInstanceUid);
    // N-CREATE without an Affected SOP Instance UID asks the SCP to make one (PS3.7 10.1.5).
    if (message.op === 'create' && !message.sopInstanceUid)
      delete request.getCommandDataset().getElements().AffectedSOPInstanceUID;
    request.setDataset(new Dataset(message.dataset));
    request.on('response', (response: dcmjsDimse.responses.NCreateResponse) => {
      answers[i] = {
        status: response.getStatus(),
        sopInstanceUid: response.getAffectedSopInstanceUid(),
        errorComment: response.getErrorComment(),
      };
    });
    client.addRequest(request);
  });
  await new Promise<void>((resolve, reject) => {
    client.on('closed', () => resolve());
    client.on('networkError', (error: Error) => reject(error));
    client.on('associationRejected', () => reject(new Error('association rejected')));
    client.send('127.0.0.1', port, callingAe, 'SHGATEWAY', { associationLingerTimeout: 0 });
  });
  return answers;
}
