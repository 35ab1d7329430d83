import type { Socket } from 'node:net';
import dcmjsDimse from 'dcmjs-dimse';
import { findWorklist, type DicomItem } from '../dicom/worklist-matching.js';

const { Dataset, Server, Scp } = dcmjsDimse;
const { CEchoResponse, CFindResponse } = dcmjsDimse.responses;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason, TransferSyntax, SopClass } =
  dcmjsDimse.constants;

export interface WorklistScpOptions {
  port: number;
  /** The gateway's own AE title: associations called to another title are refused. */
  aeTitle: string;
  /** Modalities allowed to ask (calling AE titles); anyone else is refused with a log line. */
  allowedCallingAeTitles: readonly string[];
  /** The unit's worklist as the gateway holds it now (its local copy: answers with the hub unreachable too). */
  worklist: () => readonly DicomItem[];
  log: (level: 'info' | 'warn' | 'error', message: string, detail?: Record<string, unknown>) => void;
}

export interface WorklistScp {
  close(): void;
}

const UNCOMPRESSED = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian];
const SERVICES = [SopClass.Verification, SopClass.ModalityWorklistInformationModelFind];

/**
 * The gateway's DICOM services for the mammography machine, so far: Verification (C-ECHO) and Modality Worklist
 * Information Model – FIND (C-FIND SCP). Conformance: docs/dicom-conformance-gateway.md.
 */
export function startWorklistScp(options: WorklistScpOptions): WorklistScp {
  // dcmjs-dimse logs every PDU at info; the gateway logs what staff and support need through options.log.
  dcmjsDimse.log.setLevel('warn');
  const allowed = new Set(options.allowedCallingAeTitles.map((t) => t.trim()));

  class GatewayScp extends Scp {
    private calling = '';
    /** The transfer syntax accepted for the worklist: responses are built in it, so nothing is transcoded. */
    private worklistSyntax: string = TransferSyntax.ImplicitVRLittleEndian;

    constructor(socket: Socket, opts: Record<string, unknown>) {
      super(socket, opts);
      // A C-FIND answer is many small PDUs: without this, Nagle's algorithm and the modality's delayed ACKs hold
      // each answer back by about 40 ms (bench/gateway-worklist.ts: p50 48.9 ms before, see the README after).
      socket.setNoDelay(true);
      // dcmjs-dimse 0.3.3 defaults datasetNameMap to {}, and a truthy map makes it copy dcmjs's whole name map for
      // every dataset it writes: 3 ms a response, 600 ms for a 200-appointment worklist. Without one it writes the
      // same bytes at a fraction of the cost (bench/gateway-worklist.ts).
      (this as unknown as { datasetNameMap: unknown }).datasetNameMap = undefined;
    }

    override associationRequested(association: dcmjsDimse.association.Association): void {
      this.calling = association.getCallingAeTitle().trim();
      const called = association.getCalledAeTitle().trim();
      if (!allowed.has(this.calling)) {
        options.log('warn', `Association refused: calling AE title "${this.calling}" is not configured`, { called });
        this.sendAssociationReject(
          RejectResult.Permanent,
          RejectSource.ServiceUser,
          RejectReason.CallingAeNotRecognized,
        );
        return;
      }
      if (called !== options.aeTitle) {
        options.log(
          'warn',
          `Association refused: called AE title "${called}" is not this gateway (${options.aeTitle})`,
          {
            calling: this.calling,
          },
        );
        this.sendAssociationReject(
          RejectResult.Permanent,
          RejectSource.ServiceUser,
          RejectReason.CalledAeNotRecognized,
        );
        return;
      }
      for (const c of association.getPresentationContexts()) {
        const context = association.getPresentationContext(c.id);
        if (!SERVICES.includes(context.getAbstractSyntaxUid())) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const syntax = UNCOMPRESSED.find((ts) => context.getTransferSyntaxUids().includes(ts));
        if (!syntax) {
          context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
          continue;
        }
        context.setResult(PresentationContextResult.Accept, syntax);
        if (context.getAbstractSyntaxUid() === SopClass.ModalityWorklistInformationModelFind)
          this.worklistSyntax = syntax;
      }
      this.sendAssociationAccept();
    }

    override cEchoRequest(
      request: dcmjsDimse.requests.CEchoRequest,
      callback: (response: dcmjsDimse.responses.CEchoResponse) => void,
    ): void {
      const response = CEchoResponse.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    }

    override cFindRequest(
      request: dcmjsDimse.requests.CFindRequest,
      callback: (responses: dcmjsDimse.responses.CFindResponse[]) => void,
    ): void {
      const started = performance.now();
      try {
        if (request.getAffectedSopClassUid() !== SopClass.ModalityWorklistInformationModelFind) {
          const refused = CFindResponse.fromRequest(request);
          refused.setStatus(Status.SopClassNotSupported);
          callback([refused]);
          return;
        }
        const query = (request.getDataset()?.getElements() ?? {}) as DicomItem;
        const answers = findWorklist(query, options.worklist());
        const responses = answers.map((answer) => {
          const pending = CFindResponse.fromRequest(request);
          pending.setDataset(new Dataset(answer, this.worklistSyntax));
          pending.setStatus(Status.Pending);
          return pending;
        });
        const done = CFindResponse.fromRequest(request);
        done.setStatus(Status.Success);
        options.log('info', `Worklist query from ${this.calling}: ${answers.length} match(es)`, {
          ms: Math.round((performance.now() - started) * 10) / 10,
        });
        callback([...responses, done]);
      } catch (error) {
        options.log('error', `Worklist query from ${this.calling} failed: ${(error as Error).message}`);
        const failed = CFindResponse.fromRequest(request);
        failed.setStatus(Status.ProcessingFailure);
        callback([failed]);
      }
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }
  }

  const server = new Server(GatewayScp);
  server.on('networkError', (error: Error) => options.log('warn', `DICOM network error: ${error.message}`));
  server.listen(options.port);
  return { close: () => server.close() };
}
