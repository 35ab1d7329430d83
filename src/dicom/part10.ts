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
  const dict = new dcmjs.data.DicomDict({
    FileMetaInformationVersion: { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    MediaStorageSOPClassUID: { vr: 'UI', Value: [meta.sopClassUid] },
    MediaStorageSOPInstanceUID: { vr: 'UI', Value: [meta.sopInstanceUid] },
    TransferSyntaxUID: { vr: 'UI', Value: [meta.transferSyntaxUid] },
    ImplementationClassUID: { vr: 'UI', Value: [IMPLEMENTATION_CLASS_UID] },
    ImplementationVersionName: { vr: 'SH', Value: ['SCREENINGHUB1'] },
  });
  dict.meta = dict.dict;
  dict.dict = dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}
