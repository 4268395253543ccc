// Output of labs that run at once (nflab run --jobs N), printed as if they ran one after another:
// the earliest unfinished lab writes through to the stream; every later lab writes into a buffer
// that is printed, whole, when all labs before it are done.

/** The part of a terminal stream the reporters use. */
export interface TextSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface OrderedOutput {
  /** Where lab `index` (0-based, in the order the labs are printed) writes. */
  sink(index: number): TextSink;
  /** Lab `index` has written everything it will write. */
  done(index: number): void;
  /** Everything still buffered, in lab order (labs that never finished: not run, or an error that
   * ended the run). */
  flush(): void;
}

export function orderedOutput(stream: TextSink, count: number): OrderedOutput {
  const buffers: string[][] = Array.from({ length: count }, () => []);
  const finished = new Array<boolean>(count).fill(false);
  let current = 0; // the lab that writes straight through
  const advance = () => {
    while (current < count && finished[current]) {
      current++;
      if (current < count) {
        for (const text of buffers[current]!) stream.write(text);
        buffers[current] = [];
      }
    }
  };
  return {
    sink: (index) => ({
      isTTY: stream.isTTY,
      write(text: string) {
        if (index === current) stream.write(text);
        else buffers[index]!.push(text);
        return true;
      },
    }),
    done(index) {
      finished[index] = true;
      advance();
    },
    flush() {
      for (; current < count; current++) {
        for (const text of buffers[current]!) stream.write(text);
        buffers[current] = [];
      }
    },
  };
}
