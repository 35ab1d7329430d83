import dcmjsDimse from 'dcmjs-dimse';
import { matcher, responseFor, returnKeyShape, sequenceItemsKept, type DicomItem } from '../dicom/worklist-matching.js';

const { Dataset } = dcmjsDimse;

/**
 * Query shapes (transfer syntax and return keys) whose encoded responses are kept for one worklist: a modality asks
 * with the same keys every time, so a few are plenty, and a peer varying its keys cannot make the gateway keep more.
 */
const MAX_SHAPES_PER_WORKLIST = 8;

/**
 * A response dataset already encoded in its transfer syntax. dcmjs-dimse sends what getDenaturalizedDataset gives,
 * so these bytes go out as they are; the elements stay readable (logging, toString).
 */
export class EncodedDataset extends Dataset {
  constructor(
    elements: DicomItem,
    transferSyntaxUid: string,
    private readonly bytes: Buffer,
  ) {
    super(elements, transferSyntaxUid);
  }

  /** The bytes dcmjs-dimse would have encoded, with the write options it uses (none) and without a name map. */
  override getDenaturalizedDataset(): Buffer {
    return this.bytes;
  }
}

/**
 * A DIMSE command set encoded once, however many messages carry it: the pending responses to one C-FIND request
 * all have the same command (Message ID Being Responded To, Status Pending, a dataset present). Changing an element
 * makes it encode again.
 */
export class SharedCommandDataset extends Dataset {
  private bytes: Buffer | undefined;

  override setElement(tag: string, value: string): void {
    if (this.getElement(tag) !== value) this.bytes = undefined;
    super.setElement(tag, value);
  }

  override getDenaturalizedCommandDataset(writeOptions?: Record<string, unknown>): Buffer {
    if (writeOptions !== undefined) return super.getDenaturalizedCommandDataset(writeOptions);
    return (this.bytes ??= super.getDenaturalizedCommandDataset());
  }
}

function withCharacterSet(response: DicomItem, entry: DicomItem): DicomItem {
  return entry.SpecificCharacterSet === undefined || 'SpecificCharacterSet' in response
    ? response
    : { SpecificCharacterSet: entry.SpecificCharacterSet, ...response };
}

interface Encoded {
  elements: DicomItem;
  bytes: Buffer;
}

/**
 * The datasets of the pending C-FIND responses to worklist queries, each entry's response encoded once per worklist
 * (the array the gateway builds per snapshot: a new array is a new worklist), per transfer syntax and per set of
 * return keys, rather than once per query: encoding with dcmjs is most of the cost of answering (about 0.3 ms a
 * response). The bytes are dcmjs-dimse's own encoding of the same response, so what the modality receives does not
 * change. An entry whose response leaves out some of its sequence items (they did not match) is answered as before,
 * without the cache, as is anything past the shapes kept. Entries are taken as unchanging while their array is.
 */
export class WorklistResponses {
  private readonly byWorklist = new WeakMap<readonly DicomItem[], Map<string, Map<DicomItem, Encoded>>>();

  /** One dataset per matching entry, in the worklist's order, in the given transfer syntax. */
  answer(query: DicomItem, worklist: readonly DicomItem[], transferSyntaxUid: string): dcmjsDimse.Dataset[] {
    const cached = this.cacheFor(worklist, `${transferSyntaxUid} ${returnKeyShape(query)}`);
    const [matches, whole] = [matcher(query), sequenceItemsKept(query)];
    const datasets: dcmjsDimse.Dataset[] = [];
    for (const entry of worklist) {
      if (!matches(entry)) continue;
      const cacheable = cached !== undefined && whole(entry);
      const hit = cacheable ? cached.get(entry) : undefined;
      if (hit) {
        datasets.push(new EncodedDataset(hit.elements, transferSyntaxUid, hit.bytes));
        continue;
      }
      // PS3.4 C.4.1.1.3: Specific Character Set is returned whenever the answer may hold non-ASCII text (UTF-8
      // names), asked for or not.
      const elements = withCharacterSet(responseFor(query, entry), entry);
      let bytes: Buffer | undefined;
      if (cacheable) {
        try {
          // As dcmjs-dimse encodes a response: its default write options ({}), no name map (worklist-scp.ts).
          bytes = new Dataset(elements, transferSyntaxUid).getDenaturalizedDataset({});
          cached.set(entry, { elements, bytes });
        } catch {
          // Left for dcmjs-dimse to fail on when it sends, as it would have without the cache.
        }
      }
      datasets.push(
        bytes ? new EncodedDataset(elements, transferSyntaxUid, bytes) : new Dataset(elements, transferSyntaxUid),
      );
    }
    return datasets;
  }

  private cacheFor(worklist: readonly DicomItem[], shape: string): Map<DicomItem, Encoded> | undefined {
    let shapes = this.byWorklist.get(worklist);
    if (!shapes) {
      shapes = new Map<string, Map<DicomItem, Encoded>>();
      this.byWorklist.set(worklist, shapes);
    }
    let cached = shapes.get(shape);
    if (!cached && shapes.size < MAX_SHAPES_PER_WORKLIST) {
      cached = new Map<DicomItem, Encoded>();
      shapes.set(shape, cached);
    }
    return cached;
  }
}
