import dcmjs from 'dcmjs';

/** The implementation identity written into the files the gateway makes (a 2.25 UUID-derived UID). */
const IMPLEMENTATION_CLASS_UID = '2.25.160285186498498473470934542312348473601';

export interface FileMeta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
}

/**
 * A DICOM Part 10 file: the 128-byte preamble, 'DICM', the file meta information and then the dataset (given as
 * dcmjs naturalized attributes). With no dataset it is the header alone, for a dataset that is streamed after it.
 */
export function part10File(meta: FileMeta, dataset: Record<string, unknown> = {}): Buffer {
  // The file meta group (PS3.10 7.1), keyed by tag as dcmjs writes it.
  const dict = new dcmjs.data.DicomDict({
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: [meta.sopClassUid] },
    '00020003': { vr: 'UI', Value: [meta.sopInstanceUid] },
    '00020010': { vr: 'UI', Value: [meta.transferSyntaxUid] },
    '00020012': { vr: 'UI', Value: [IMPLEMENTATION_CLASS_UID] },
    '00020013': { vr: 'SH', Value: ['SCREENINGHUB1'] },
  });
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}
