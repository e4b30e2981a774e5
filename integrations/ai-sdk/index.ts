// cachekit/ai-sdk: being written (issue 12).
export {};
