#!/usr/bin/env node
import { runCli } from './run.js';

// The `cachekit` command: see `cachekit --help` and README, "Operating cachekit".

// `cachekit keys | head`: the reader went away, which ends the listing, not with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  () => {
    process.exitCode = 1;
  },
);
