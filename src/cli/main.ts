#!/usr/bin/env node
import { runCli } from './run.js';

// The `cachekit` command: see `cachekit --help` and README, "Operating cachekit".
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  () => {
    process.exitCode = 1;
  },
);
