// The part of dcmjs that Screening Hub uses (dcmjs ships no type declarations).
declare module 'dcmjs' {
  class DicomDict {
    constructor(meta: Record<string, unknown>);
    meta: Record<string, unknown>;
    dict: Record<string, unknown>;
    write(options?: Record<string, unknown>): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomDict: typeof DicomDict;
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: { untilTag?: string; ignoreErrors?: boolean }): DicomDict;
      };
      DicomMetaDictionary: {
        naturalizeDataset(dict: Record<string, unknown>): Record<string, unknown>;
        denaturalizeDataset(dataset: Record<string, unknown>): Record<string, unknown>;
      };
    };
  };
  export default dcmjs;
}
