import { StringDecoder } from 'node:string_decoder';

// Turns a stream of chunks into complete lines (a line may arrive split across chunks).
// Bytes go through one StringDecoder, so a UTF-8 character split across two chunks is
// joined instead of turning into two replacement characters.
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer | string) => void {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  return (chunk) => {
    rest += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      onLine(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  };
}
