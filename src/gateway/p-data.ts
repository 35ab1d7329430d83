/**
 * The P-DATA-TF PDUs (PS3.8 9.3.5) of one DIMSE message, framed as dcmjs-dimse 0.3.3 frames them (its
 * `_sendPDataTF`): the command set whole in one PDU, then the dataset in fragments of at most the peer's maximum PDU
 * length less the PDV header, one PDU each, the last marked last. Written into a single buffer, where dcmjs-dimse
 * builds each PDU through two 4 KiB buffers of its own (the most of a C-FIND answer's cost once its datasets are
 * encoded, and the garbage that made the gateway's slowest answers slow).
 */

/** P-DATA-TF, and dcmjs-dimse's ceiling on the PDU length it writes (4 MiB, whatever the peer accepts). */
const P_DATA_TF = 0x04;
const LIBRARY_MAX_PDU = 4 * 1024 * 1024;
/** PDV item length (4) + presentation context ID (1) + message control header (1). */
const PDV_HEADER = 6;
const PDU_HEADER = 6;

/**
 * The dataset's fragment length for a peer's maximum PDU length (0: no limit), as dcmjs-dimse computes it; undefined
 * where dcmjs-dimse's own loop would never end (a maximum of 6 bytes or less), which is left to dcmjs-dimse.
 */
export function fragmentLength(maxPduLength: number): number | undefined {
  const max = maxPduLength === 0 ? LIBRARY_MAX_PDU : Math.min(maxPduLength, LIBRARY_MAX_PDU);
  const fragment = max - PDV_HEADER;
  return Number.isInteger(fragment) && fragment > 0 ? fragment : undefined;
}

/** The message's PDUs, byte for byte as dcmjs-dimse sends them (an empty dataset sends no dataset PDU, as there). */
export function messagePdus(contextId: number, command: Buffer, dataset: Buffer | undefined, fragment: number): Buffer {
  const data = dataset ?? Buffer.alloc(0);
  const fragments = Math.ceil(data.length / fragment);
  const out = Buffer.allocUnsafe(
    PDU_HEADER + PDV_HEADER + command.length + fragments * (PDU_HEADER + PDV_HEADER) + data.length,
  );
  let at = writePdv(out, 0, contextId, command, 0, command.length, 0x01 | 0x02);
  for (let i = 0; i < fragments; i++) {
    const start = i * fragment;
    const end = Math.min(start + fragment, data.length);
    at = writePdv(out, at, contextId, data, start, end, i === fragments - 1 ? 0x02 : 0x00);
  }
  return out;
}

/** One P-DATA-TF PDU holding one PDV of value[start, end); message control header: 1 command, 2 last fragment. */
function writePdv(
  out: Buffer,
  at: number,
  contextId: number,
  value: Buffer,
  start: number,
  end: number,
  control: number,
): number {
  const length = end - start;
  out.writeUInt8(P_DATA_TF, at);
  out.writeUInt8(0, at + 1);
  out.writeUInt32BE(length + PDV_HEADER, at + 2);
  out.writeUInt32BE(length + 2, at + 6);
  out.writeUInt8(contextId, at + 10);
  out.writeUInt8(control, at + 11);
  value.copy(out, at + 12, start, end);
  return at + 12 + length;
}
