// cachekit/langchain: being written (issue 12).
export {};
