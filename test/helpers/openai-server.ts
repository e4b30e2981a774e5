// The OpenAI wire-format server is test infrastructure; the examples borrow it to run offline.
export { startOpenAIWireServer, type WireEndpoint, type WireServer, type WireServerOptions } from './openai-wire-server.js';
