// The part of dcmjs the tests use to read DCMTK's responses (dcmjs ships no type declarations).
declare module 'dcmjs' {
  interface DicomDict {
    dict: Record<string, unknown>;
    meta: Record<string, unknown>;
  }
  const dcmjs: {
    data: {
      DicomMessage: { readFile(buffer: ArrayBuffer): DicomDict };
      DicomMetaDictionary: { naturalizeDataset(dict: Record<string, unknown>): Record<string, unknown> };
    };
  };
  export default dcmjs;
}
