// cachekit/keyv: being written (issue 12).
export {};
