import { describe, expect, it } from 'vitest';
import { readHeader, sniffHeader, writeAck } from '../../../src/hl7/ack.js';
import {
  escape,
  firstSegment,
  Hl7ParseError,
  parseMessage,
  repetitions,
  segmentsNamed,
  unescape,
  value,
  writeMessage,
} from '../../../src/hl7/message.js';

const ADT = [
  'MSH|^~\\&|EPR|RX1|SCREENING-HUB|NHSBSP|20261103101500||ADT^A08^ADT_A01|MSG0001|P|2.5.1',
  'EVN|A08|20261103101500',
  'PID|1||RX1-123^^^RX1^MR~9990000018^^^NHS^NH||Testwoman^Jane^^^Mrs||19660514|F',
  'DG1|1||C50.9^Malignant neoplasm of breast, unspecified^I10||20261101|F',
].join('\r');

describe('HL7 v2 reader', () => {
  it('splits segments, fields, repetitions, components and sub-components, numbering as HL7 does', () => {
    const message = parseMessage(ADT);
    expect(message.segments.map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'DG1']);
    const msh = firstSegment(message, 'MSH');
    expect(value(msh, 1)).toBe('|');
    expect(value(msh, 2)).toBe('^~\\&');
    expect(value(msh, 9, 1)).toBe('ADT');
    expect(value(msh, 9, 2)).toBe('A08');
    expect(value(msh, 10)).toBe('MSG0001');
    const pid = firstSegment(message, 'PID');
    expect(repetitions(pid, 3)).toHaveLength(2);
    expect(value(pid, 3, 1, 1, 1)).toBe('9990000018');
    expect(value(pid, 3, 5, 1, 1)).toBe('NH');
    expect(value(pid, 5, 2)).toBe('Jane');
    expect(value(pid, 99)).toBe('');
    expect(value(firstSegment(message, 'DG1'), 3, 2)).toBe('Malignant neoplasm of breast, unspecified');
    expect(readHeader(message)).toMatchObject({
      sendingApplication: 'EPR',
      sendingFacility: 'RX1',
      messageType: 'ADT^A08',
      controlId: 'MSG0001',
      processingId: 'P',
      version: '2.5.1',
    });
  });

  it('reads sub-components and tolerates LF or CR LF between segments', () => {
    const message = parseMessage('MSH|^~\\&|A|B|||20260101||ORU^R01|1|P|2.5\r\nPID|1||x&y&z^^^NHS^NH\nOBX|1|CWE|a^b');
    expect(segmentsNamed(message, 'OBX')).toHaveLength(1);
    const pid = firstSegment(message, 'PID');
    expect(value(pid, 3, 1, 1)).toBe('x');
    expect(value(pid, 3, 1, 3)).toBe('z');
  });

  it('uses the encoding characters of MSH-1 and MSH-2, whatever they are', () => {
    const message = parseMessage('MSH#*!@%#A#B###20260101##ORU*R01#1#P#2.5\rPID#1##one!two*x%y@T@z|^~&');
    const pid = firstSegment(message, 'PID');
    expect(value(message.segments[0], 9, 2)).toBe('R01');
    expect(repetitions(pid, 3)).toHaveLength(2);
    expect(value(pid, 3, 1, 1, 1)).toBe('two');
    expect(value(pid, 3, 2, 1, 1)).toBe('x');
    expect(value(pid, 3, 2, 2, 1)).toBe('y%z|^~&');
  });

  it('decodes escape sequences after splitting, so escaped separators stay in the text', () => {
    const message = parseMessage(
      'MSH|^~\\&|A|B|||20260101||ORU^R01|1|P|2.5\rNTE|1||Left \\T\\ right\\F\\ 50\\S\\50 \\R\\ \\E\\ \\X48C3A9\\\\.br\\next \\H\\bold\\N\\ \\Z99\\',
    );
    expect(value(firstSegment(message, 'NTE'), 3)).toBe('Left & right| 50^50 ~ \\ Hé\nnext bold \\Z99\\');
  });

  it('refuses text that is not an HL7 message', () => {
    expect(() => parseMessage('')).toThrow(Hl7ParseError);
    expect(() => parseMessage('PID|1||x')).toThrow(/MSH/);
    expect(() => parseMessage('MSH')).toThrow(/MSH-1/);
    expect(() => parseMessage('MSH|^|A')).toThrow(/MSH-2/);
    expect(() => parseMessage('MSH|^^~\\|A')).toThrow(/distinct/);
    expect(() => parseMessage('MSH|^~\\&|A\rpid|1')).toThrow(/Segment 2/);
  });

  it('reads MSH-4 and MSH-10 from a start that does not parse', () => {
    expect(sniffHeader('MSH|^~\\&|EPR|RX1|HUB|NHS|2026||ORU^R01|ABC|P|2.5\rOBX|trunc')).toEqual({
      sendingApplication: 'EPR',
      sendingFacility: 'RX1',
      controlId: 'ABC',
    });
    expect(sniffHeader('garbage').controlId).toBe('');
  });
});

describe('HL7 v2 writer', () => {
  it('escapes the encoding characters and line breaks, and reads back what it wrote', () => {
    const awkward = 'a|b^c&d~e\\f\r\ng';
    expect(escape(awkward)).toBe('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\\\.br\\g');
    expect(unescape(escape(awkward))).toBe(awkward);
    const text = writeMessage([
      { name: 'MSH', fields: ['A', 'B', '', '', '20260101', '', ['ACK', 'R01', 'ACK'], '1', 'P', '2.5.1'] },
      { name: 'NTE', fields: ['1', '', awkward, ['x', ['s1', 's2'], ''], ''] },
    ]);
    expect(text).toBe(
      'MSH|^~\\&|A|B|||20260101||ACK^R01^ACK|1|P|2.5.1\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\\\.br\\g|x^s1&s2\r',
    );
    const nte = firstSegment(parseMessage(text), 'NTE');
    expect(value(nte, 3)).toBe(awkward);
    expect(value(nte, 4, 2, 2)).toBe('s2');
  });

  it('writes an ACK naming the message it answers, with ERR for AE and AR', () => {
    const header = readHeader(parseMessage(ADT));
    const now = new Date('2026-11-23T10:00:00Z');
    const aa = parseMessage(writeAck({ code: 'AA', header, text: 'Applied', now }));
    const msh = firstSegment(aa, 'MSH');
    expect(value(msh, 5)).toBe('EPR');
    expect(value(msh, 6)).toBe('RX1');
    expect(value(msh, 7)).toBe('20261123100000+0000');
    expect(value(msh, 9, 1)).toBe('ACK');
    expect(value(msh, 9, 2)).toBe('A08');
    expect(value(msh, 12)).toBe('2.5.1');
    expect(value(firstSegment(aa, 'MSA'), 1)).toBe('AA');
    expect(value(firstSegment(aa, 'MSA'), 2)).toBe('MSG0001');
    expect(firstSegment(aa, 'ERR')).toBeUndefined();

    const ae = parseMessage(
      writeAck({
        code: 'AE',
        header,
        text: 'NHS number 999 not known | here',
        error: { code: 'unknownKeyIdentifier', location: { segment: 'PID', field: 3 } },
        now,
      }),
    );
    expect(value(firstSegment(ae, 'MSA'), 3)).toBe('NHS number 999 not known | here');
    const err = firstSegment(ae, 'ERR');
    expect(value(err, 2, 1)).toBe('PID');
    expect(value(err, 2, 3)).toBe('3');
    expect(value(err, 3, 1)).toBe('204');
    expect(value(err, 3, 3)).toBe('HL70357');
    expect(value(err, 4)).toBe('E');
    expect(value(err, 8)).toBe('NHS number 999 not known | here');
  });
});
