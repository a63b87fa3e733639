/**
 * Just enough of the DNS wire format (RFC 1035) to ask for an A record and read the answer,
 * so the namespace test needs no dig or nslookup on the host. Test helper; pure.
 */
export const RCODE_NXDOMAIN = 3;

export function aQuery(name: string, id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // standard query, recursion desired
  header.writeUInt16BE(1, 4); // one question
  const labels = name
    .split(".")
    .filter(Boolean)
    .map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, "ascii")]));
  const question = Buffer.alloc(4);
  question.writeUInt16BE(1, 0); // type A
  question.writeUInt16BE(1, 2); // class IN
  return Buffer.concat([header, ...labels, Buffer.from([0]), question]);
}

export interface AAnswer {
  readonly id: number;
  readonly rcode: number;
  readonly addresses: string[];
}

export function parseAResponse(message: Buffer): AAnswer {
  if (message.length < 12) {
    throw new Error(`a DNS response has at least 12 bytes, got ${message.length}`);
  }
  const questions = message.readUInt16BE(4);
  const answers = message.readUInt16BE(6);
  let offset = 12;
  for (let i = 0; i < questions; i++) {
    offset = skipName(message, offset) + 4;
  }
  const addresses: string[] = [];
  for (let i = 0; i < answers; i++) {
    offset = skipName(message, offset);
    const type = message.readUInt16BE(offset);
    const length = message.readUInt16BE(offset + 8);
    const data = message.subarray(offset + 10, offset + 10 + length);
    if (type === 1 && length === 4) {
      addresses.push([...data].join("."));
    }
    offset += 10 + length;
  }
  return { id: message.readUInt16BE(0), rcode: message.readUInt16BE(2) & 0xf, addresses };
}

function skipName(message: Buffer, start: number): number {
  let offset = start;
  for (;;) {
    const length = message[offset];
    if (length === 0) {
      return offset + 1;
    }
    if ((length & 0xc0) === 0xc0) {
      return offset + 2; // a compression pointer ends the name
    }
    offset += 1 + length;
  }
}
