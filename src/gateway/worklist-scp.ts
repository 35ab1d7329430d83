import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import dcmjsDimse from 'dcmjs-dimse';
import { MPPS_SOP_CLASS } from '../dicom/performed-procedure-step.js';
import type { DicomItem } from '../dicom/worklist-matching.js';
import {
  discardingStream,
  ImageRefused,
  type ImageStore,
  type IncomingImage,
  type ReceivedImage,
} from './image-store.js';
import { fragmentLength, messagePdus } from './p-data.js';
import { closeConnection, guardIncomingPdus, PDU_LIMITS } from './pdu-guard.js';
import {
  createProcedureStep,
  MPPS_STATUS,
  setProcedureStep,
  type ProcedureStepService,
} from './procedure-step-service.js';
import type { ProcedureStepEvent, ProcedureStepStore } from './procedure-steps.js';
import { STORAGE_COMMITMENT_SOP_CLASS, type CommitmentLink, type StorageCommitment } from './storage-commitment.js';
import { SharedCommandDataset, WorklistResponses } from './worklist-responses.js';

const { Dataset, Server, Scp } = dcmjsDimse;
const { CEchoResponse, CFindResponse, CStoreResponse } = dcmjsDimse.responses;
const {
  Status,
  PresentationContextResult,
  RejectResult,
  RejectSource,
  RejectReason,
  TransferSyntax,
  SopClass,
  StorageClass,
} = dcmjsDimse.constants;
const { NActionResponse, NCreateResponse, NSetResponse } = dcmjsDimse.responses;

export interface WorklistScpOptions {
  port: number;
  /** The gateway's own AE title: associations called to another title are refused. */
  aeTitle: string;
  /** Modalities allowed to ask (calling AE titles); anyone else is refused with a log line. */
  allowedCallingAeTitles: readonly string[];
  /**
   * The unit's worklist as the gateway holds it now (its local copy: answers with the hub unreachable too). Give the
   * same array for as long as the worklist is unchanged and a new one when it changes, never changing items in place:
   * each item's response is encoded once per array (worklist-responses.ts).
   */
  worklist: () => readonly DicomItem[];
  log: (level: 'info' | 'warn' | 'error', message: string, detail?: Record<string, unknown>) => void;
  /** Where images from the modality go (C-STORE SCP); without it, storage is not offered. */
  images?: ImageStore;
  onImage?: (image: ReceivedImage) => void;
  /** Where Modality Performed Procedure Steps are kept (MPPS SCP); without it, MPPS is not offered. */
  procedureSteps?: ProcedureStepStore;
  /** Told of each step started, completed or discontinued, once durable and before the modality is answered. */
  onProcedureStep?: (event: ProcedureStepEvent) => void;
  /** Storage Commitment Push Model (N-ACTION SCP, N-EVENT-REPORT); without it, Storage Commitment is not offered. */
  commitment?: StorageCommitment;
}

export interface WorklistScp {
  close(): void;
}

const UNCOMPRESSED = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian];
const SERVICES = [SopClass.Verification, SopClass.ModalityWorklistInformationModelFind];
/** Mammography images the gateway takes (PS3.4 B.5): digital mammography (both kinds) and breast tomosynthesis. */
export const MAMMOGRAPHY_STORAGE = [
  StorageClass.DigitalMammographyXRayImageStorageForPresentation,
  StorageClass.DigitalMammographyXRayImageStorageForProcessing,
  StorageClass.BreastTomosynthesisImageStorage,
];
/** Stored as sent: uncompressed, or the lossless compressions modalities use (JPEG-LS, JPEG lossless, JPEG 2000). */
const STORAGE_SYNTAXES = [
  ...UNCOMPRESSED,
  '1.2.840.10008.1.2.4.80',
  '1.2.840.10008.1.2.4.70',
  '1.2.840.10008.1.2.4.57',
  '1.2.840.10008.1.2.4.90',
];
/** What the gateway's scp uses of dcmjs-dimse's Network beyond its typings. */
interface NetworkInternals {
  socket: Socket;
  datasetWriteOptions: Record<string, unknown>;
  datasetNameMap: Record<string, unknown> | undefined;
  statistics: dcmjsDimse.Statistics;
  _sendPDataTF(command: dcmjsDimse.responses.Response, contextId: number, maxPduLength: number): void;
}
/**
 * dcmjs-dimse's own writer of a DIMSE message's P-DATA-TF PDUs. C-FIND responses are framed by p-data.ts instead,
 * byte for byte the same, in the version whose framing it copies; anything else is left to this.
 */
const librarySendPDataTF = (Scp.prototype as unknown as Partial<NetworkInternals>)._sendPDataTF;
const FRAMES_C_FIND = dcmjsDimse.version === '0.3.3' && typeof librarySendPDataTF === 'function';
const OUT_OF_RESOURCES = 0xa700;
/** The smallest maximum PDU length a peer may ask the gateway to send within (PS3.8 sets no minimum). */
export const MIN_PEER_PDU_LENGTH = 1024;
const CANNOT_UNDERSTAND = 0xc000;
const SOP_CLASS_NOT_SUPPORTED = 0x0122;

/**
 * The gateway's DICOM services for the mammography machine, so far: Verification (C-ECHO), Modality Worklist
 * Information Model – FIND (C-FIND SCP), mammography storage (C-STORE SCP), Modality Performed Procedure Step
 * (N-CREATE, N-SET SCP) and Storage Commitment Push Model (N-ACTION SCP, N-EVENT-REPORT: storage-commitment.ts). What a peer sends is checked against PDU_LIMITS before dcmjs-dimse reads it.
 * Conformance: docs/dicom-conformance-gateway.md.
 */
export function startWorklistScp(options: WorklistScpOptions): WorklistScp {
  // dcmjs-dimse logs every PDU at info; the gateway logs what staff and support need through options.log.
  dcmjsDimse.log.setLevel('warn');
  const allowed = new Set(options.allowedCallingAeTitles.map((t) => t.trim()));
  const images = options.images;
  const procedureSteps: ProcedureStepService | undefined = options.procedureSteps && {
    store: options.procedureSteps,
    onProcedureStep: options.onProcedureStep,
    log: options.log,
  };
  const commitment = options.commitment;
  const services = [
    ...SERVICES,
    ...(images ? MAMMOGRAPHY_STORAGE : []),
    ...(procedureSteps ? [MPPS_SOP_CLASS] : []),
    ...(commitment ? [STORAGE_COMMITMENT_SOP_CLASS] : []),
  ];
  const worklistResponses = new WorklistResponses();

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
      // dcmjs-dimse times out an association that never gets going only from a client's 'connect' event, which a
      // server's socket never has: set the start so a connection that sends no PDU is closed after its timeout.
      (this as unknown as { connectedTime: number }).connectedTime = Date.now();
      const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
      guardIncomingPdus(socket, PDU_LIMITS, (violation) => {
        options.log('warn', `Connection from ${this.calling || peer} aborted: ${violation.reason}`);
        this.dropArrivingImage();
      });
      // After any network error (reset, timeout, an unreadable PDU) the connection is closed, not left half open.
      this.on('networkError', () => {
        this.dropArrivingImage();
        closeConnection(socket);
      });
      // A connection that ends mid-image (cut, killed modality) leaves nothing behind in incoming/.
      this.on('close', () => {
        this.dropArrivingImage();
        this.commitmentLink?.closed();
      });
    }

    /** While the association is open with Storage Commitment accepted: reports for the modality may go on it. */
    private commitmentLink: CommitmentLink | undefined;

    private dropArrivingImage(): void {
      this.arriving?.discard();
      this.arriving = undefined;
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
      // A requestor with no limit (0) would get "no limit" back from dcmjs-dimse: advertise the gateway's own.
      if (association.getMaxPduLength() === 0) association.setMaxPduLength(dcmjsDimse.Implementation.getMaxPduLength());
      // A tiny maximum PDU length (1–6 bytes leave no room for a PDV) sends dcmjs-dimse's fragmenting loop round
      // for ever, hanging the whole gateway: no real modality asks for less than a few kilobytes.
      if (association.getMaxPduLength() < MIN_PEER_PDU_LENGTH) {
        options.log(
          'warn',
          `Association refused: ${this.calling} can only receive PDUs of ${association.getMaxPduLength()} bytes (the gateway needs ${MIN_PEER_PDU_LENGTH})`,
        );
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.NoReasonGiven);
        return;
      }
      for (const c of association.getPresentationContexts()) {
        const context = association.getPresentationContext(c.id);
        const abstract = context.getAbstractSyntaxUid();
        if (!services.includes(abstract)) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const acceptable = MAMMOGRAPHY_STORAGE.includes(abstract) ? STORAGE_SYNTAXES : UNCOMPRESSED;
        const syntax = context.getTransferSyntaxUids().find((ts) => acceptable.includes(ts));
        if (!syntax) {
          context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
          continue;
        }
        context.setResult(PresentationContextResult.Accept, syntax);
        if (context.getAbstractSyntaxUid() === SopClass.ModalityWorklistInformationModelFind)
          this.worklistSyntax = syntax;
      }
      this.sendAssociationAccept();
      const commits = association
        .getPresentationContexts()
        .some(
          ({ context }) =>
            context.getAbstractSyntaxUid() === STORAGE_COMMITMENT_SOP_CLASS &&
            context.getResult() === PresentationContextResult.Accept,
        );
      // The N-EVENT-REPORT-RQ goes as a request of the gateway's own (dcmjs-dimse's Network.sendRequests).
      if (commitment && commits) this.commitmentLink = commitment.attach(this.calling, (r) => this.sendRequests(r));
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
        const answers = worklistResponses.answer(query, options.worklist(), this.worklistSyntax);
        // Every pending response carries the same command: encoded once, not once a response.
        const template = CFindResponse.fromRequest(request);
        // PS3.7 9.3.2.2: the response names the request's SOP class (dcmjs-dimse's fromRequest says Study Root).
        template.setAffectedSopClassUid(SopClass.ModalityWorklistInformationModelFind);
        template.setStatus(Status.Pending);
        const command = new SharedCommandDataset(template.getCommandDataset().getElements());
        const responses = answers.map((answer) => {
          const pending = CFindResponse.fromRequest(request);
          pending.setCommandDataset(command);
          pending.setDataset(answer);
          return pending;
        });
        const done = CFindResponse.fromRequest(request);
        done.setAffectedSopClassUid(SopClass.ModalityWorklistInformationModelFind);
        done.setStatus(Status.Success);
        // Each response is a socket write of its own (two where dcmjs-dimse frames it), and with Nagle's algorithm off
        // (above) each would be a system call and a TCP segment: corked, the whole answer is handed over in one.
        const socket = (this as unknown as { socket: Socket }).socket;
        socket.cork();
        try {
          callback([...responses, done]);
        } finally {
          socket.uncork();
        }
        options.log('info', `Worklist query from ${this.calling}: ${answers.length} match(es)`, {
          ms: Math.round((performance.now() - started) * 10) / 10,
        });
      } catch (error) {
        options.log('error', `Worklist query from ${this.calling} failed: ${(error as Error).message}`);
        const failed = CFindResponse.fromRequest(request);
        failed.setStatus(Status.ProcessingFailure);
        callback([failed]);
      }
    }

    /**
     * dcmjs-dimse sends each DIMSE message through here (see librarySendPDataTF). A C-FIND response's PDUs are
     * written as one buffer (p-data.ts); while dcmjs-dimse logs at info or below, or for a maximum PDU length its
     * own loop cannot fragment by, it writes them itself, as for every other message.
     */
    _sendPDataTF(command: dcmjsDimse.responses.Response, contextId: number, maxPduLength: number): void {
      const self = this as unknown as NetworkInternals;
      const fragment = fragmentLength(maxPduLength);
      if (
        !FRAMES_C_FIND ||
        !(command instanceof CFindResponse) ||
        fragment === undefined ||
        dcmjsDimse.log.getLevel() <= dcmjsDimse.log.levels.INFO
      ) {
        librarySendPDataTF!.call(this, command, contextId, maxPduLength);
        return;
      }
      const send = (pdus: Buffer) => {
        self.socket.write(pdus);
        self.statistics.addBytesSent(pdus.length);
      };
      const commandSet = command.getCommandDataset().getDenaturalizedCommandDataset();
      let dataset: Buffer | undefined;
      try {
        dataset = command.getDataset()?.getDenaturalizedDataset(self.datasetWriteOptions, self.datasetNameMap);
      } catch (error) {
        // dcmjs-dimse has sent the command by the time the dataset fails to encode.
        send(messagePdus(contextId, commandSet, undefined, fragment));
        throw error;
      }
      send(messagePdus(contextId, commandSet, dataset, fragment));
    }

    /** The image arriving now (one at a time per association), or why it is being refused. */
    private arriving: IncomingImage | undefined;
    private refusal: { status: number; reason: string } | undefined;
    private received: ReceivedImage | undefined;

    override createStoreWritableStream(
      context: dcmjsDimse.association.PresentationContext,
      request: dcmjsDimse.requests.CStoreRequest,
    ): Writable {
      this.arriving = undefined;
      this.refusal = undefined;
      this.received = undefined;
      if (!images) return discardingStream();
      const abstract = (context as dcmjsDimse.association.PresentationContext | undefined)?.getAbstractSyntaxUid();
      if (
        context?.getResult() !== PresentationContextResult.Accept ||
        !MAMMOGRAPHY_STORAGE.includes(abstract ?? '') ||
        request.getAffectedSopClassUid() !== abstract
      ) {
        this.refusal = {
          status: SOP_CLASS_NOT_SUPPORTED,
          reason: `SOP class ${request.getAffectedSopClassUid()} not accepted on presentation context ${context?.getPresentationContextId()}`,
        };
        return discardingStream();
      }
      if (!images.hasRoom()) {
        this.refusal = {
          status: OUT_OF_RESOURCES,
          reason: `only ${images.freeBytes()} bytes free, below the ${images.minFreeBytes} kept free`,
        };
        return discardingStream();
      }
      try {
        const image = images.begin(
          request.getAffectedSopClassUid(),
          request.getAffectedSopInstanceUid(),
          context.getAcceptedTransferSyntaxUid() ?? TransferSyntax.ImplicitVRLittleEndian,
        );
        this.arriving = image;
        const socket = (this as unknown as { socket: Socket }).socket;
        return new Writable({
          write(chunk: Buffer, _encoding, done) {
            if (image.write(chunk)) return done();
            // The disk is behind the network: stop reading from the modality until the file catches up, rather
            // than hold the rest of a 1.8 GB image in memory.
            socket.pause();
            image.stream.once('drain', () => {
              socket.resume();
              done();
            });
          },
        });
      } catch (error) {
        this.refusal = { status: CANNOT_UNDERSTAND, reason: (error as Error).message };
        return discardingStream();
      }
    }

    override createDatasetFromStoreWritableStream(
      writable: Writable,
      _context: dcmjsDimse.association.PresentationContext,
      callback: (dataset: dcmjsDimse.Dataset) => void,
    ): void {
      const image = this.arriving;
      if (!image) {
        callback(new Dataset({}));
        return;
      }
      // The library has called end(): wait until every chunk has passed through to the file before filing it,
      // or a large image would be acknowledged with its last PDVs missing.
      const flushed = writable.writableFinished
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            writable.once('finish', resolve);
            writable.once('error', reject);
          });
      flushed
        .then(() => image.finish())
        .then((received) => (this.received = received))
        .catch((error: Error & { code?: string }) => {
          image.discard();
          this.refusal = {
            status:
              error instanceof ImageRefused
                ? error.status
                : error.code === 'ENOSPC'
                  ? OUT_OF_RESOURCES
                  : CANNOT_UNDERSTAND,
            reason: error.message,
          };
        })
        .finally(() => callback(new Dataset({})));
    }

    override cStoreRequest(
      request: dcmjsDimse.requests.CStoreRequest,
      callback: (response: dcmjsDimse.responses.CStoreResponse) => void,
    ): void {
      const response = CStoreResponse.fromRequest(request);
      const uid = request.getAffectedSopInstanceUid();
      if (this.received) {
        response.setStatus(Status.Success);
        options.log(
          'info',
          `Image ${uid} from ${this.calling} stored (${this.received.bytes} bytes, accession ${this.received.accessionNumber || 'none'})`,
        );
        try {
          options.onImage?.(this.received);
        } catch (error) {
          options.log('error', `Image ${uid}: listener failed: ${(error as Error).message}`);
        }
      } else {
        const refusal = this.refusal ?? { status: CANNOT_UNDERSTAND, reason: 'the image could not be stored' };
        response.setStatus(refusal.status);
        options.log(
          'warn',
          `Image ${uid} from ${this.calling} refused: ${refusal.reason}; the modality keeps its copy`,
        );
      }
      this.arriving = undefined;
      this.received = undefined;
      this.refusal = undefined;
      callback(response);
    }

    override nCreateRequest(
      request: dcmjsDimse.requests.NCreateRequest,
      callback: (response: dcmjsDimse.responses.NCreateResponse) => void,
    ): void {
      if (procedureSteps) return callback(createProcedureStep(procedureSteps, request, this.calling));
      const refused = NCreateResponse.fromRequest(request);
      refused.setStatus(MPPS_STATUS.sopClassNotSupported);
      callback(refused);
    }

    override nSetRequest(
      request: dcmjsDimse.requests.NSetRequest,
      callback: (response: dcmjsDimse.responses.NSetResponse) => void,
    ): void {
      if (procedureSteps) return callback(setProcedureStep(procedureSteps, request, this.calling));
      const refused = NSetResponse.fromRequest(request);
      refused.setStatus(MPPS_STATUS.sopClassNotSupported);
      callback(refused);
    }

    override nActionRequest(
      request: dcmjsDimse.requests.NActionRequest,
      callback: (response: dcmjsDimse.responses.NActionResponse) => void,
    ): void {
      if (commitment) return callback(commitment.action(request, this.calling));
      const refused = NActionResponse.fromRequest(request);
      refused.setStatus(Status.SopClassNotSupported);
      callback(refused);
    }

    /** The modality gave up (A-ABORT): drop any half-received image and close the connection. */
    override abort(): void {
      options.log('warn', `Association aborted by ${this.calling || 'the modality'}`);
      this.commitmentLink?.closed();
      this.dropArrivingImage();
      (this as unknown as { socket: Socket }).socket.destroy();
    }

    override associationReleaseRequested(): void {
      // Nothing more is sent on an association being released: a report not answered yet goes another way.
      this.commitmentLink?.closed();
      this.sendAssociationReleaseResponse();
    }
  }

  const server = new Server(GatewayScp);
  server.on('networkError', (error: Error) => options.log('warn', `DICOM network error: ${error.message}`));
  server.listen(options.port);
  return { close: () => server.close() };
}
