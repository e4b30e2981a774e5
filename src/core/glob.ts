/**
 * Redis glob matching (`stringmatchlen` in Redis's util.c), byte for byte, so
 * the memory backend clears exactly what `SCAN MATCH` would on Dragonfly/Redis.
 * Redis matches UTF-8 bytes, not characters: `?` consumes one byte and ranges
 * compare byte values, so we match on the UTF-8 encoding too.
 */
const encoder = new TextEncoder();

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;
// Stands for C's NUL terminator: reads past the end of the pattern see it.
const END = -1;
// Redis gives up on patterns nested deeper than this (CVE-2022-36021).
const MAX_NESTING = 1000;

// Redis compares range bounds as C `char`, which is signed on x86-64: there a
// byte >= 0x80 sorts below every ASCII byte, so `[a-é]` does not match `b`.
// (An ARM build of the server, where `char` is unsigned, would differ.)
function signed(byte: number): number {
  return (byte << 24) >> 24;
}

export type GlobMatcher = (subject: string) => boolean;

export function compileGlob(pattern: string): GlobMatcher {
  const p = encoder.encode(pattern);
  return (subject) => match(p, 0, encoder.encode(subject), 0, { skipLonger: false }, 0);
}

function at(bytes: Uint8Array, i: number): number {
  return i < bytes.length ? (bytes[i] as number) : END;
}

function match(p: Uint8Array, pi: number, s: Uint8Array, si: number, state: { skipLonger: boolean }, nesting: number): boolean {
  if (nesting > MAX_NESTING) return false;
  let pLen = p.length - pi;
  let sLen = s.length - si;
  while (pLen > 0 && sLen > 0) {
    const c = at(p, pi);
    if (c === STAR) {
      while (pLen > 0 && at(p, pi + 1) === STAR) {
        pi++;
        pLen--;
      }
      if (pLen === 1) return true;
      while (sLen > 0) {
        if (match(p, pi + 1, s, si, state, nesting + 1)) return true;
        if (state.skipLonger) return false;
        si++;
        sLen--;
      }
      // No match for the rest of the pattern from anywhere in the rest of the string:
      // longer matches for earlier stars cannot help either.
      state.skipLonger = true;
      return false;
    } else if (c === QUESTION) {
      si++;
      sLen--;
    } else if (c === OPEN) {
      pi++;
      pLen--;
      const negate = at(p, pi) === CARET;
      if (negate) {
        pi++;
        pLen--;
      }
      let matched = false;
      const sc = at(s, si);
      for (;;) {
        const pc = at(p, pi);
        if (pc === BACKSLASH && pLen >= 2) {
          pi++;
          pLen--;
          if (at(p, pi) === sc) matched = true;
        } else if (pc === CLOSE) {
          break;
        } else if (pLen === 0) {
          pi--;
          pLen++;
          break;
        } else if (pLen >= 3 && at(p, pi + 1) === DASH) {
          let start = signed(pc);
          let end = signed(at(p, pi + 2));
          const c = signed(sc);
          if (start > end) [start, end] = [end, start];
          pi += 2;
          pLen -= 2;
          if (c >= start && c <= end) matched = true;
        } else if (pc === sc) {
          matched = true;
        }
        pi++;
        pLen--;
      }
      if (negate) matched = !matched;
      if (!matched) return false;
      si++;
      sLen--;
    } else {
      if (c === BACKSLASH && pLen >= 2) {
        pi++;
        pLen--;
      }
      if (at(p, pi) !== at(s, si)) return false;
      si++;
      sLen--;
    }
    pi++;
    pLen--;
    if (sLen === 0) {
      while (at(p, pi) === STAR) {
        pi++;
        pLen--;
      }
      break;
    }
  }
  return pLen === 0 && sLen === 0;
}
